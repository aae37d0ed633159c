"""The Textual terminal UI (arrives with its own issue); it will use only paasd.client."""
