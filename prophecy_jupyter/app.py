"""The Jupyter server extension: builds the services once and serves the REST API."""

from __future__ import annotations

import gc
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from jupyter_server.auth.identity import User
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop
from traitlets import Bool, Enum, Integer, Unicode

from prophecy_jupyter.client.link import API_PREFIX
from prophecy_jupyter.environment import (
    apply_environment,
    hub_groups,
    hub_service,
    local_username,
    shared_store_url,
    under_jupyterhub,
)
from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.paths import data_dir, private_dir
from prophecy_jupyter.server.handlers import routes
from prophecy_jupyter.server.kernel_tokens import KernelTokens, hand_tokens_to_kernels
from prophecy_jupyter.server.routing import route_first
from prophecy_jupyter.services.fabrics import SharedIdentities
from prophecy_jupyter.services.runtime import Services, build_hub_services, build_services
from prophecy_jupyter.services.settings import ServiceSettings


def tune_collector(freeze: bool, young_threshold: int) -> None:
    """Python's garbage collector for a long-running server: with ``freeze``, the objects made so
    far are exempt from its collections; a positive ``young_threshold`` spaces out the youngest
    generation's collections (the older generations' thresholds stay)."""
    if freeze:
        gc.collect()
        gc.freeze()
    if young_threshold > 0:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])


class ProphecyJupyter(ExtensionApp, ServiceSettings):
    """prophecy-jupyter inside a Jupyter server (configure as ``c.ProphecyJupyter.*``): the options
    of the services are its own (``ServiceSettings``), and it is the settings it builds them with."""

    name = "prophecy_jupyter"
    description = "Teams, fabrics, credentials and sessions for notebooks."

    data_dir = Unicode("", config=True, help="State folder (default: <jupyter data dir>/prophecy).")
    hub_service_url = Unicode(
        "",
        config=True,
        help="On a JupyterHub: the URL of the hub service that holds the store and the vault "
        "(default: $PROPHECY_JUPYTER_HUB_SERVICE_URL). This server then holds neither.",
    )
    database_url = Unicode(
        "", config=True, help="SQLAlchemy URL of a shared store (default: SQLite under the data dir)."
    )
    key_source = Unicode("", config=True, help="Where the vault key comes from: env, file or keyring.")
    hub_groups_as_teams = Bool(True, config=True, help="Under JupyterHub, make hub groups teams.")
    freeze_startup_objects = Bool(
        True,
        config=True,
        help="Once the server listens, exempt the objects made while starting it (modules, classes: "
        "some 250,000) from Python's full garbage collections, which otherwise stop the event loop "
        "for 80-150 ms each.",
    )
    young_collection_threshold = Integer(
        7000,
        config=True,
        help="Objects made (less those freed) between two collections of Python's youngest "
        "generation in the server (Python's own default: 700; 0 leaves it). Each collection moves "
        "the objects of the requests in flight to an older generation, whose collections stop the "
        "event loop for longer: at hundreds of statements a second, a tenth as many collections "
        "leave far fewer such pauses.",
    )
    identity = Enum(
        ["auto", "jupyter", "owner"],
        "auto",
        config=True,
        help="Who a request acts as: 'jupyter' (Jupyter's user name, e.g. under JupyterHub), 'owner' "
        "(the server's user: a single-user install) or 'auto' (jupyter under JupyterHub).",
    )
    max_request_bytes = Integer(8 * 1024 * 1024, config=True, help="Largest request body accepted.")
    api_workers = Integer(
        32, config=True, help="Threads that serve the API's calls which wait on a fabric, Git or the store."
    )
    allow_shared_identities = Bool(
        False,
        config=True,
        help="Let people other than this server's owner use fabrics reached as the server's own "
        "identity (Livy kerberos, a Databricks profile): they would all act as the owner there.",
    )

    services: Services

    def initialize_settings(self) -> None:
        owner = local_username()
        self.under_hub = under_jupyterhub()
        apply_environment(self, configured=self.config.get(type(self).__name__, {}))
        directory = data_dir() if not self.data_dir else _directory(self.data_dir)
        client = hub_service(self.hub_service_url) if self.under_hub else None
        if client is not None:
            if self.database_url or self.key_source:
                self.log.warning(
                    "On a hub the hub service holds the store and the vault: database_url "
                    "and key_source are not used here."
                )
            self.services = build_hub_services(directory, client, self, records=True)
        else:
            if self.under_hub and self.database_url:
                self.log.warning(
                    "This server opens the hub's shared store with the vault key: anyone who can run "
                    "code here can read every user's credentials. Run the prophecy hub service "
                    "instead (docs/jupyterhub.md)."
                )
            self.services = build_services(
                directory,
                self.database_url or shared_store_url(),
                self.key_source or None,
                self,
                hub_groups() if self.under_hub and self.hub_groups_as_teams else None,
                records=True,
                bootstrap_user=owner,
                shared_identities=SharedIdentities(owner, self.allow_shared_identities),
            )
        kernels = self.serverapp.kernel_manager
        self.kernel_tokens = KernelTokens(alive=lambda kernel_id: kernel_id in kernels)
        self._api_url: str | None = None
        self.settings.update(
            prophecy_services=self.services,
            prophecy_kernel_tokens=self.kernel_tokens,
            prophecy_owner=owner,
            prophecy_user_of=self._user_of,
            prophecy_max_body=self.max_request_bytes,
            prophecy_pool=ThreadPoolExecutor(max_workers=self.api_workers, thread_name_prefix="prophecy-api"),
            prophecy_root=os.path.realpath(self.serverapp.root_dir),
        )
        hand_tokens_to_kernels(
            self.settings,
            kernels,
            self.kernel_tokens,
            owner,
            lambda: self._api_url,
            self.serverapp.certfile or None,
        )
        IOLoop.current().add_callback(self._publish_url)
        threading.Thread(
            target=self.services.sessions.rehydrate, name="prophecy-rehydrate", daemon=True
        ).start()
        if self.warms_local_fabric:
            threading.Thread(target=self._warm_local_fabric, name="prophecy-warm-local", daemon=True).start()

    def _warm_local_fabric(self) -> None:
        """Start the local fabric's gateway now (its JVM warms up at low priority), so that the
        first local cell finds it ready; it stops again if nothing uses it (``local_idle_stop``)."""
        try:
            self.services.local_gateway.endpoint()
        except ProphecyError as exc:
            self.log.warning("The local fabric did not warm up: %s", exc)
            return
        self.log.info("The local fabric's gateway is warming up (c.ProphecyJupyter.local_warm_start).")

    def _user_of(self, user: User) -> str:
        """Under JupyterHub the Jupyter user; otherwise everyone who passes the server's auth is its owner."""
        by_jupyter = self.identity == "jupyter" or (self.identity == "auto" and self.under_hub)
        return user.username if by_jupyter else self.settings["prophecy_owner"]

    def _publish_url(self) -> None:
        """Once the server listens (the port may have moved on start-up), kernels it starts learn
        where the API is (with their own token)."""
        tune_collector(self.freeze_startup_objects, self.young_collection_threshold)
        server = self.serverapp
        api = url_path_join(server.base_url, API_PREFIX)
        if not route_first(self.serverapp.web_app, api, {handler for _, handler in routes()}):
            self.log.warning("The API's routes were not found in the server's routing table.")
        if server.sock:
            self.log.warning("The server listens on a Unix socket; kernels run their sessions in-process.")
        else:
            scheme = "https" if server.certfile else "http"
            host = "127.0.0.1" if server.ip in ("", "0.0.0.0", "localhost", "127.0.0.1") else server.ip
            self._api_url = f"{scheme}://{host}:{server.port}{server.base_url}".rstrip("/")

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes())

    async def stop_extension(self) -> None:
        """Keep remote sessions running for the next start (local ones end with the gateway)."""
        self.services.close(close_sessions=False)
        self.settings["prophecy_pool"].shutdown(wait=False)


def _directory(path: str):
    from pathlib import Path

    return private_dir(Path(path).expanduser())
