"""Command-line entry points: `paasd` (the daemon) and `paasctl` (the client)."""
