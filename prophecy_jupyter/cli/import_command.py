"""``jupyter prophecy import-sparkmagic`` and ``import-snowflake``: fabrics and credentials from
the configuration users already have (sparkmagic's config.json, Snowflake's connections.toml)."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import tomlkit
from tomlkit.exceptions import ParseError

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.environment import snowflake_connections_file
from prophecy_jupyter.services.import_report import ImportReport
from prophecy_jupyter.services.snowflake_import import import_snowflake
from prophecy_jupyter.services.sparkmagic_import import import_sparkmagic
from prophecy_jupyter.services.teams import DEFAULT_TEAM

DEFAULT_PATH = Path("~/.sparkmagic/config.json")


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "import-sparkmagic",
        help="Create fabrics from a sparkmagic config.json.",
        description="Creates a Livy fabric per endpoint of a sparkmagic config.json (its session_configs "
        "become the fabric's conf and a job size 'sparkmagic'); passwords and Authorization headers in "
        "it become your encrypted credentials, other settings that carry a credential are left out "
        "(fabrics hold no secrets). Existing fabric names are skipped.",
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="Default: %(default)s.")
    parser.add_argument("--team", default=DEFAULT_TEAM, help="Team to own the fabrics (default %(default)s).")
    parser.set_defaults(handler=run_sparkmagic)

    snowflake = commands.add_parser(
        "import-snowflake",
        help="Create Snowflake fabrics from your connections.toml.",
        description="Creates a snowflake fabric per connection of Snowflake's connections.toml (all, "
        "or those named), named as the connection. Its password, token or private key (with its "
        "passphrase) becomes your encrypted credential; fabrics hold no secrets. Existing fabric "
        "names are skipped.",
    )
    snowflake.add_argument("names", nargs="*", metavar="NAME", help="Connections to import (default: all).")
    snowflake.add_argument(
        "--connections-file",
        type=Path,
        help="Default: $SNOWFLAKE_HOME/connections.toml, else ~/.snowflake/connections.toml when that "
        "folder exists, else ~/.config/snowflake/connections.toml.",
    )
    snowflake.add_argument("--team", default=DEFAULT_TEAM, help="Team to own the fabrics (default: default).")
    snowflake.set_defaults(handler=run_snowflake)


def run_sparkmagic(args: argparse.Namespace) -> int:
    path = args.path.expanduser()
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    with services() as (built, user):
        report = import_sparkmagic(config, built.fabrics, user, args.team)
    _print(report, "with your password stored encrypted", f"{path} names no Livy endpoint.")
    return 0


def run_snowflake(args: argparse.Namespace) -> int:
    path = (args.connections_file or snowflake_connections_file()).expanduser()
    try:
        connections = tomlkit.parse(path.read_text()).unwrap()
    except ParseError as exc:
        raise ValueError(f"{path} is not TOML: {exc}") from None
    with services() as (built, user):
        report = import_snowflake(connections, args.names, built.fabrics, user, args.team)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        report.notes.append(f"{path} can be read by others: it holds secrets, `chmod 600` it")
    _print(report, "with your secret stored encrypted", f"{path} holds no connection.")
    return 0


def _print(report: ImportReport, stored: str, nothing: str) -> None:
    for ref in report.created:
        print(f"created fabric {ref}{' ' + stored if ref in report.credentials else ''}")
    for item in report.skipped:
        print(f"skipped {item}")
    for note in report.notes:
        print(f"note: {note}")
    if not report.created and not report.skipped:
        print(nothing)
