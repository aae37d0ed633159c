"""`paasd`: run the daemon, or check a config file."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .. import __version__
from ..config import Config, load_config
from ..errors import ConfigError, PaasdError

DEFAULT_CONFIG = "/etc/paasd/paasd.toml"


def find_config(explicit: str | None) -> tuple[Config, str]:
    """The config to run with, and a line saying where it came from."""
    if explicit:
        return load_config(explicit), f"config {explicit}"
    env = os.environ.get("PAASD_CONFIG")
    if env:
        return load_config(env), f"config {env} (from PAASD_CONFIG)"
    if Path(DEFAULT_CONFIG).exists():
        return load_config(DEFAULT_CONFIG), f"config {DEFAULT_CONFIG}"
    return Config(), (f"no config file found (looked at --config, $PAASD_CONFIG and "
                      f"{DEFAULT_CONFIG}); running on built-in defaults")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="paasd", description="A single-node, Knative-style serverless PaaS daemon.")
    parser.add_argument("--config", metavar="PATH", help=f"config file (default: "
                        f"$PAASD_CONFIG, then {DEFAULT_CONFIG}, then built-in defaults)")
    parser.add_argument("--check-config", metavar="PATH", nargs="?", const="",
                        help="validate the config file and exit (non-zero on errors)")
    parser.add_argument("--log-level", default=os.environ.get("PAASD_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--version", action="version", version=f"paasd {__version__}")
    args = parser.parse_args(argv)

    if args.check_config is not None:
        path = args.check_config or args.config or os.environ.get("PAASD_CONFIG") \
            or DEFAULT_CONFIG
        try:
            config = load_config(path)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            n = len(exc.problems)
            print(f"{path}: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
            return 1
        print(f"{path}: OK ({len(config.services)} service"
              f"{'s' if len(config.services) != 1 else ''}, runtime {config.daemon.runtime})")
        return 0

    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    log = logging.getLogger("paasd")
    try:
        config, where = find_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    log.info("paasd %s: %s", __version__, where)
    from ..daemon import run

    try:
        run(config)
    except PaasdError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
