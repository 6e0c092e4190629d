"""`supamanagerd`: run the control daemon."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from . import __version__, keys, logging_json
from .app import create_app
from .fleet.hosts import InventoryError
from .settings import ENV_VARS, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="supamanagerd",
        description="SupaManager control daemon: a Management-API-shaped HTTP service running the playbooks.",
        epilog="Environment variables override the config file: " + ", ".join(sorted(ENV_VARS)),
    )
    parser.add_argument("--config", help="TOML config file (default: $SUPAMANAGER_CONFIG)")
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="json: one JSON object per line (default); text: plain lines for a terminal",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"supamanagerd: {exc}", file=sys.stderr)
        return 2
    logging_json.configure(settings.log_level, secrets=(settings.api_token or "",), text=args.log_format == "text")
    # Outside systemd (UMask=0077) too: the data dir, job dirs and SQLite files are the owner's only.
    os.umask(0o077)
    # aiohttp's access log would show request lines only; keep it, it never carries bodies.
    try:
        app = create_app(settings)
    except (SettingsError, InventoryError) as exc:  # a weak API token, a wrong inventory
        print(f"supamanagerd: {exc}", file=sys.stderr)
        return 2
    logging_json.add_secret(app[keys.API_TOKEN])  # also a token generated or read from the data dir
    logging.getLogger(__name__).info(
        "supamanagerd %s listening on http://%s:%d (data dir %s)",
        __version__,
        settings.host,
        settings.port,
        settings.data_dir,
    )
    # run_app turns SIGTERM/SIGINT into a graceful exit that runs the cleanup contexts.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=5,
        handler_cancellation=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
