"""The Textual terminal UI (`paasctl tui`, `paasd-tui`); it uses only paasd.client.

See docs/tui.md. `tui.app.PaasdApp` is the app; `tui.model` is its pure model
of the daemon's state, fed by the watch stream (`tui.feed`).
"""
