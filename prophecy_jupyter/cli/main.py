"""``jupyter prophecy``: the command line. Every command has --help and fails with one line."""

from __future__ import annotations

import argparse
import sys

from prophecy_jupyter._version import __version__
from prophecy_jupyter.cli import (
    credentials_command,
    exec_command,
    fabric_command,
    gateway_command,
    hub_command,
    import_command,
    job_command,
    pipeline_command,
    project_command,
    run_command,
    team_command,
    vault_command,
)
from prophecy_jupyter.errors import ProphecyError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter prophecy",
        description="Fabrics, sessions, pipelines and scheduled jobs for Jupyter.",
    )
    parser.add_argument("--version", action="version", version=f"prophecy-jupyter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (
        gateway_command,
        team_command,
        fabric_command,
        credentials_command,
        vault_command,
        import_command,
        exec_command,
        run_command,
        project_command,
        pipeline_command,
        job_command,
        hub_command,
    ):
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.handler(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
    except (ProphecyError, ValueError, OSError) as exc:
        print(f"jupyter prophecy {args.command}: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status or 0)


if __name__ == "__main__":
    main()
