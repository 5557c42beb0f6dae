"""``jupyter prophecy vault``: the key that encrypts everyone's credentials."""

from __future__ import annotations

import argparse
import sys

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.vault.keys import KEY_ENV, decode_key, new_key


def add_parser(commands) -> None:
    parser = commands.add_parser("vault", help="Rotate the vault key.", description="The vault key.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rotate = actions.add_parser(
        "rotate",
        help="Re-encrypt every credential under a new key.",
        description="Re-encrypts all credentials under a new key in one transaction. With a key file or "
        f"the OS keyring the new key replaces the old one; with ${KEY_ENV}, give the new key "
        "on stdin (--new-key-stdin) and set the variable to it afterwards.",
    )
    rotate.add_argument("--new-key-stdin", action="store_true", help="Read the new key (base64) from stdin.")
    rotate.set_defaults(handler=run_rotate)


def run_rotate(args: argparse.Namespace) -> int:
    with services() as (built, _user):
        if built.credentials is None:
            raise ValueError(
                "on a hub the vault is the hub service's: rotate its key where the hub service runs "
                "(with its PROPHECY_JUPYTER_DATABASE_URL and key)"
            )
        source = built.credentials.keys.source
        if source == "env" and not args.new_key_stdin:
            raise ValueError(f"the key comes from ${KEY_ENV}: give the new key with --new-key-stdin")
        text = sys.stdin.read().strip() if args.new_key_stdin else new_key()
        key = decode_key(text, "stdin" if args.new_key_stdin else "a new key")
        count = built.credentials.rotate(key)
    where = {
        "env": f"now set ${KEY_ENV} to the new key",
        "file": "the key file now holds the new key",
        "keyring": "the OS keyring now holds the new key",
    }[source]
    print(f"Re-encrypted {count} credential(s) under key {key.key_id}; {where}.")
    return 0
