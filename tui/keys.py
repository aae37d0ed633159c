"""Key bindings: defaults, and the small config file that rebinds them.

`~/.config/paasd/tui.toml` (or `$PAASD_TUI_CONFIG`):

    [keys]
    quit = "q"
    logs = "L"
    scale = "s,S"      # several keys, comma-separated, as Textual takes them

Every binding in the app has one of these ids; Textual's keymap applies them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

DEFAULT_KEYS: dict[str, str] = {
    "quit": "q",
    "help": "question_mark",
    "filter": "slash",
    "jump": "colon",
    "open": "enter",
    "back": "escape",
    "logs": "l",
    "yaml": "v",
    "edit": "e",
    "config": "c",
    "scale": "s",
    "traffic": "t",
    "rollback": "r",
    "delete": "d",
    "build": "b",
    "pause": "p",
    "refresh": "ctrl+r",
    "events": "E",
    "requests": "R",
}

DESCRIPTIONS: dict[str, str] = {
    "quit": "quit (also ctrl+c)",
    "help": "this help",
    "filter": "filter the table by name",
    "jump": "jump to a service or revision by name (as k9s)",
    "open": "drill down: service → revisions → instances and events",
    "back": "back",
    "logs": "stream logs of the selection (service, revision or instance)",
    "yaml": "show the service's Knative YAML",
    "edit": "edit the service's spec as YAML (applied through the daemon)",
    "config": "edit paasd.toml (validated by the daemon, applied by a reload)",
    "scale": "set scale bounds (min-scale/max-scale)",
    "traffic": "traffic split and tags",
    "rollback": "roll back to the previous ready revision",
    "delete": "delete the service",
    "build": "build a source directory into a new revision",
    "pause": "logs: pause/follow",
    "refresh": "re-list everything",
    "events": "eventing: brokers, triggers, deliveries, dead letters",
    "requests": "requests of the selection, live (Enter: the record and its trace)",
}


def config_path() -> Path:
    explicit = os.environ.get("PAASD_TUI_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "paasd" / "tui.toml"


class KeysError(ValueError):
    pass


def load_keys(path: Path | None = None) -> dict[str, str]:
    """The defaults overridden by the file's [keys]; a missing file is the defaults."""
    path = path or config_path()
    keys = dict(DEFAULT_KEYS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return keys
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KeysError(f"{path}: {exc}") from None
    table = data.get("keys", {})
    if not isinstance(table, dict):
        raise KeysError(f"{path}: [keys] must be a table")
    for action, value in table.items():
        if action not in DEFAULT_KEYS:
            known = ", ".join(sorted(DEFAULT_KEYS))
            raise KeysError(f"{path}: [keys] {action}: unknown action (one of {known})")
        if not isinstance(value, str) or not value.strip():
            raise KeysError(f'{path}: [keys] {action}: use a key name, e.g. {action} = "x"')
        keys[action] = value.strip()
    return keys
