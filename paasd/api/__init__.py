"""The control API: HTTP + JSON on a Unix socket, versioned under /v1."""
