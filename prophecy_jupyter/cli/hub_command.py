"""``jupyter prophecy hub-service``: the service that holds the store and the vault on a JupyterHub."""

from __future__ import annotations

import argparse
import logging


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "hub-service",
        help="Run the JupyterHub service that holds the store and the vault key (started by the hub).",
        description="On a JupyterHub, one process holds the shared store and the vault key: this one, "
        "run by the hub as a managed service (c.JupyterHub.services). Users' servers reach it with their "
        "own hub token and never see the database URL or the key. It reads JUPYTERHUB_API_TOKEN, "
        "JUPYTERHUB_API_URL, JUPYTERHUB_SERVICE_URL and JUPYTERHUB_SERVICE_PREFIX from the hub, "
        "PROPHECY_JUPYTER_DATABASE_URL for the store and PROPHECY_JUPYTER_KEY (or a key file) for the "
        "vault. See docs/jupyterhub.md.",
    )
    parser.add_argument(
        "--ip",
        help="Address to listen on (default: the host of JUPYTERHUB_SERVICE_URL when it is an address, "
        "else every interface, e.g. for 'http://hub:10101' on Kubernetes).",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from prophecy_jupyter.hub.app import serve

    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    serve(args.ip)
    return 0
