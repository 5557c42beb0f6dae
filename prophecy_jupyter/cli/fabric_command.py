"""``jupyter prophecy fabric``: add, list and remove fabrics."""

from __future__ import annotations

import argparse
import json

from prophecy_jupyter.cli.options import json_values, key_values, read_secret
from prophecy_jupyter.paths import data_dir
from prophecy_jupyter.services.fabrics import FabricRegistry


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "fabric",
        help="Add, list and remove fabrics.",
        description="Fabrics are named execution environments.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="Add a fabric (its secret is read from stdin or a prompt).",
        description="Add a Livy fabric. For basic or bearer auth the password or token is read "
        "from stdin when piped, otherwise from a prompt; never from the command line.",
    )
    add.add_argument("name", help="Fabric name: letters, digits, '.', '_' or '-'.")
    add.add_argument("--kind", default="livy", choices=["livy"], help="Fabric kind (default %(default)s).")
    add.add_argument("--url", required=True, help="The Livy server, e.g. https://livy.example.com:8998")
    add.add_argument("--auth", default="none", choices=["none", "basic", "bearer", "kerberos"])
    add.add_argument("--username", help="User name for basic auth.")
    add.add_argument(
        "--header", action="append", default=[], metavar="K=V", help="Extra HTTP header (repeatable)."
    )
    add.add_argument("--ca-bundle", help="CA bundle to verify the server's TLS certificate.")
    add.add_argument(
        "--conf", action="append", default=[], metavar="K=V", help="Default Spark setting (repeatable)."
    )
    add.add_argument(
        "--job-size",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='Named session settings, e.g. M=\'{"driverMemory": "4g"}\' (repeatable).',
    )
    add.add_argument("--environment", default="dev", choices=["dev", "staging", "prod"])
    add.add_argument("--replace", action="store_true", help="Replace a fabric of the same name.")
    add.set_defaults(handler=run_add)

    listing = actions.add_parser("list", help="List fabrics.", description="List fabrics (local first).")
    listing.add_argument("--json", action="store_true", help="Print JSON (settings only, never secrets).")
    listing.set_defaults(handler=run_list)

    remove = actions.add_parser("remove", help="Remove a fabric and its stored secret.")
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)


def run_add(args: argparse.Namespace) -> int:
    registry = FabricRegistry(data_dir())
    settings = {
        "name": args.name,
        "kind": args.kind,
        "url": args.url,
        "auth": args.auth,
        "username": args.username,
        "headers": key_values(args.header, "--header"),
        "ca_bundle": args.ca_bundle,
        "conf": key_values(args.conf, "--conf"),
        "job_sizes": json_values(args.job_size, "--job-size"),
        "environment": args.environment,
    }
    secret = None
    if args.auth in ("basic", "bearer"):
        what = "password" if args.auth == "basic" else "token"
        secret = read_secret(f"{what.capitalize()} for fabric '{args.name}': ")
    fabric = registry.add(settings, secret=secret, replace=args.replace)
    stored = " Its secret is stored encrypted in the vault." if secret else ""
    print(f"Added fabric '{fabric.name}' ({fabric.kind}, {fabric.url}).{stored}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    registry = FabricRegistry(data_dir())
    fabrics = registry.list()
    if args.json:
        rows = [
            {**f.public(), "secret_set": registry.has_secret(f.name) if f.needs_secret else None}
            for f in fabrics
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<20} {'KIND':<8} {'ENV':<8} {'AUTH':<9} ENDPOINT")
    for f in fabrics:
        print(f"{f.name:<20} {f.kind:<8} {f.environment:<8} {f.auth:<9} {f.url or 'embedded local Spark'}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    FabricRegistry(data_dir()).remove(args.name)
    print(f"Removed fabric '{args.name}'.")
    return 0
