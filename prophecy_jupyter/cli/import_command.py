"""``jupyter prophecy import-sparkmagic``: fabrics and credentials from sparkmagic's config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prophecy_jupyter.cli.context import services
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path = args.path.expanduser()
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    with services() as (built, user):
        report = import_sparkmagic(config, built.fabrics, user, args.team)
    for ref in report.created:
        stored = " with your password stored encrypted" if ref in report.credentials else ""
        print(f"created fabric {ref}{stored}")
    for item in report.skipped:
        print(f"skipped {item}")
    for note in report.notes:
        print(f"note: {note}")
    if not report.created and not report.skipped:
        print(f"{path} names no Livy endpoint.")
    return 0
