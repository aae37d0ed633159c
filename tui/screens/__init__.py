"""The TUI's screens: overview → service → revision, logs, editors and dialogs."""
