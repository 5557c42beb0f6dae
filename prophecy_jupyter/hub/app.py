"""``jupyter prophecy hub-service``: the hub service as a managed JupyterHub service.

The hub starts it with ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_URL``
(where to listen) and ``JUPYTERHUB_SERVICE_PREFIX``; the store's URL and the vault key reach this
process alone (``PROPHECY_JUPYTER_DATABASE_URL``, and ``PROPHECY_JUPYTER_KEY`` or a 0600 key file
under its data dir). Hub groups are teams, governed by the hub.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
from urllib.parse import urlsplit

from tornado import web
from tornado.httpserver import HTTPServer

from prophecy_jupyter.environment import hub_groups, shared_store_url
from prophecy_jupyter.hub.handlers import routes
from prophecy_jupyter.paths import data_dir
from prophecy_jupyter.services.runtime import Services, build_services

log = logging.getLogger("prophecy_jupyter.hub")
REQUIRED_ENV = ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_URL")


def make_app(services: Services, prefix: str) -> web.Application:
    """The service's API under ``prefix`` (``/services/<name>/``) over ``services``."""
    return web.Application(routes(prefix), prophecy_services=services)


def listen_address(service_url: str, ip: str | None) -> tuple[str, int]:
    """Where to listen: ``ip`` if given, else the service URL's host when it is an address this
    machine has (an IP or localhost), else every interface (a name such as Kubernetes' ``hub``)."""
    parts = urlsplit(service_url)
    host = parts.hostname or "127.0.0.1"
    if ip is None:
        try:
            ipaddress.ip_address(host)
            ip = host
        except ValueError:
            ip = host if host == "localhost" else ""
    return ip, parts.port or (443 if parts.scheme == "https" else 80)


def serve(ip: str | None = None) -> None:
    """Run until the hub stops this service (SIGTERM)."""
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise ValueError(f"run as a JupyterHub service (managed by the hub): {', '.join(missing)} is not set")
    services = build_services(data_dir(), shared_store_url(), groups=hub_groups())
    try:
        asyncio.run(_listen(services, ip))
    finally:
        services.close()


async def _listen(services: Services, ip: str | None) -> None:
    address, port = listen_address(os.environ["JUPYTERHUB_SERVICE_URL"], ip)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/prophecy/")
    server = HTTPServer(make_app(services, prefix), xheaders=True)
    server.listen(port, address)
    stopped = asyncio.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(stop_signal, stopped.set)
    log.info("prophecy hub service on %s%s", os.environ["JUPYTERHUB_SERVICE_URL"], prefix)
    await stopped.wait()
    server.stop()
