"""``jupyter prophecy credentials``: your own secrets for fabrics (write-only)."""

from __future__ import annotations

import argparse

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.cli.options import add_secret_file, read_secret


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "credentials",
        help="Your secrets for fabrics (set, status, confirm, delete).",
        description="Each user brings their own secret for a fabric. Secrets are "
        "stored encrypted and never shown again.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    setter = actions.add_parser(
        "set",
        help="Set your secret for a fabric (from stdin or a prompt).",
        description="Reads the secret from stdin when piped, otherwise prompts "
        "without echo. Never give it on the command line.",
    )
    setter.add_argument("fabric", help="Fabric name, team/name or id.")
    add_secret_file(setter)
    setter.set_defaults(handler=run_set)
    status = actions.add_parser("status", help="Which fabrics have your secret set.")
    status.set_defaults(handler=run_status)
    confirm = actions.add_parser(
        "confirm",
        help="Let your secret go to a fabric's new address.",
        description="When an admin points a fabric to another address, your secret is not sent "
        "there until you confirm it (or set a new one).",
    )
    confirm.add_argument("fabric", help="Fabric name, team/name or id.")
    confirm.set_defaults(handler=run_confirm)
    remove = actions.add_parser("delete", help="Forget your secret for a fabric.")
    remove.add_argument("fabric")
    remove.set_defaults(handler=run_delete)


def run_set(args: argparse.Namespace) -> int:
    with services() as (built, user):
        fabric = built.fabrics.secret_fabric(user, args.fabric)
        secret = read_secret(f"Your {fabric.secret_needed} for '{fabric.ref}': ", args.from_file)
        built.fabrics.set_secret(user, fabric.id, secret)
    print(f"Your {fabric.secret_needed} for '{fabric.ref}' is stored encrypted.")
    return 0


def run_status(args: argparse.Namespace) -> int:
    with services() as (built, user):
        for fabric in built.fabrics.list(user):
            status = built.fabrics.credential_status(user, fabric)
            if status is not None:
                when = f" (set {status.updated_at:%Y-%m-%d %H:%M} UTC)" if status.set else ""
                moved = (
                    f"; given for {status.given_for}, the fabric is now {fabric.endpoint}: confirm or set it"
                    if status.given_for
                    else ""
                )
                print(
                    f"{fabric.ref:<30} {fabric.secret_needed:<14} "
                    f"{'set' if status.set else 'missing'}{when}{moved}"
                )
    return 0


def run_confirm(args: argparse.Namespace) -> int:
    with services() as (built, user):
        fabric, _ = built.fabrics.confirm_secret(user, args.fabric)
    print(f"Your {fabric.secret_needed} for '{fabric.ref}' now goes to {fabric.endpoint}.")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with services() as (built, user):
        fabric = built.fabrics.get(user, args.fabric)
        deleted = built.fabrics.delete_secret(user, fabric.id)
    print(f"Deleted your secret for '{fabric.ref}'." if deleted else f"You had no secret for '{fabric.ref}'.")
    return 0
