"""The Textual terminal UI (`paasctl tui`, `paasd-tui`); it uses only paasd.client.

See docs/tui.md. `tui.app.PaasdApp` is the app; `tui.model` is its pure model
of the daemon's state, fed by the watch stream (`tui.feed`). The app builds
its screens with what they show; they post `tui.messages` up to it and never
import `tui.app`.
"""
