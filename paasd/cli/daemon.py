"""`paasd`: run the daemon, or check a config file."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tomllib
from pathlib import Path

from .. import __version__
from ..config import Config, load_config, parse_config
from ..errors import ConfigError, PaasdError
from ..runtime import schemas
from ..runtime.catalog import BUILTIN
from ..systemd import logsetup

RUNTIMES = schemas(BUILTIN)

DEFAULT_CONFIG = "/etc/paasd/paasd.toml"
EX_CONFIG = 78  # sysexits.h; paasd.service: RestartPreventExitStatus=78 (no restart loop)


def find_config(explicit: str | None) -> tuple[Config, str]:
    """The config to run with, and a line saying where it came from."""
    if explicit:
        return load_config(explicit, RUNTIMES), f"config {explicit}"
    env = os.environ.get("PAASD_CONFIG")
    if env:
        return load_config(env, RUNTIMES), f"config {env} (from PAASD_CONFIG)"
    if Path(DEFAULT_CONFIG).exists():
        return load_config(DEFAULT_CONFIG, RUNTIMES), f"config {DEFAULT_CONFIG}"
    return parse_config("", "<text>", runtimes=RUNTIMES), (
        f"no config file found (looked at --config, $PAASD_CONFIG and {DEFAULT_CONFIG}); "
        "running on built-in defaults")


def service_directories(config: Config) -> tuple[Config, list[str]]:
    """Under systemd, put the socket and the state where the unit's directories are.

    `RuntimeDirectory=paasd` and `StateDirectory=paasd` make systemd create
    /run/paasd and /var/lib/paasd owned by the service's user and export them
    as $RUNTIME_DIRECTORY and $STATE_DIRECTORY. They become the defaults for
    `[daemon] socket` and `state_dir`; a value set in the file still wins.
    """
    in_file: dict[str, object] = {}
    if config.path:
        try:
            section = tomllib.loads(Path(config.path).read_text()).get("daemon", {})
            in_file = section if isinstance(section, dict) else {}
        except (OSError, tomllib.TOMLDecodeError):
            pass  # it was just parsed; a race with an editor changes nothing here
    changes: dict[str, str] = {}
    runtime_dir = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime_dir and "socket" not in in_file:
        changes["socket"] = f"{runtime_dir}/paasd.sock"
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state_dir and "state_dir" not in in_file:
        changes["state_dir"] = state_dir
    notes = [f"[daemon] {key} = {value} (from systemd's "
             f"{'RuntimeDirectory' if key == 'socket' else 'StateDirectory'}=)"
             for key, value in changes.items() if getattr(config.daemon, key) != value]
    daemon = dataclasses.replace(config.daemon,
                                 socket=changes.get("socket", config.daemon.socket),
                                 state_dir=changes.get("state_dir", config.daemon.state_dir))
    return dataclasses.replace(config, daemon=daemon), notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="paasd", description="A single-node, Knative-style serverless PaaS daemon.")
    parser.add_argument("--config", metavar="PATH", help=f"config file (default: "
                        f"$PAASD_CONFIG, then {DEFAULT_CONFIG}, then built-in defaults)")
    parser.add_argument("--check-config", metavar="PATH", nargs="?", const="",
                        help="validate the config file and exit (non-zero on errors)")
    parser.add_argument("--log-level", default=os.environ.get("PAASD_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=logsetup.FORMATS,
                        default=logsetup.default_format(),
                        help="text (a terminal), journal (<N> priority prefixes for journald; "
                             "the default under systemd) or json (one object per line); "
                             "default: $PAASD_LOG_FORMAT, else journal when stderr is the "
                             "journal, else text")
    parser.add_argument("--version", action="version", version=f"paasd {__version__}")
    args = parser.parse_args(argv)

    if args.check_config is not None:
        path = args.check_config or args.config or os.environ.get("PAASD_CONFIG") \
            or DEFAULT_CONFIG
        try:
            config = load_config(path, RUNTIMES)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            n = len(exc.problems)
            print(f"{path}: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
            return 1
        print(f"{path}: OK ({len(config.services)} service"
              f"{'s' if len(config.services) != 1 else ''}, runtime {config.daemon.runtime})")
        return 0

    logsetup.setup(args.log_level, args.log_format)
    log = logging.getLogger("paasd")
    try:
        config, where = find_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return EX_CONFIG
    config, notes = service_directories(config)
    log.info("paasd %s: %s", __version__, where)
    for note in notes:
        log.info("%s", note)
    from ..daemon import run

    failures: list[BaseException] = []
    interrupted = False
    try:
        run(config)
    except* PaasdError as group:  # raised inside the root nursery: trio groups them
        failures.extend(_leaves(group))
    except* KeyboardInterrupt:
        interrupted = True
    for failure in failures:
        log.error("%s", failure)
    if failures:
        return 1
    return 130 if interrupted else 0


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


if __name__ == "__main__":
    sys.exit(main())
