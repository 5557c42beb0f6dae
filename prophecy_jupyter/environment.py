"""The environment variables that say how to build the services, read here, at the edge: when the
command line, a kernel without a server or the hub service starts, and for the defaults of the
server extension's options. The services take what they need as arguments and settings."""

from __future__ import annotations

import getpass
import os
from collections.abc import Collection
from pathlib import Path

from prophecy_jupyter.paths import data_dir
from prophecy_jupyter.services.hub import HubGroups
from prophecy_jupyter.services.hub_store import HubClient
from prophecy_jupyter.services.runtime import Services, build_hub_services, build_services
from prophecy_jupyter.services.settings import ServiceSettings

DATABASE_URL_ENV = "PROPHECY_JUPYTER_DATABASE_URL"
PROJECTS_DIR_ENV = "PROPHECY_JUPYTER_PROJECTS_DIR"
HUB_SERVICE_URL_ENV = "PROPHECY_JUPYTER_HUB_SERVICE_URL"
"""Where a user's server reaches the hub service (set by the hub's spawner; see docs/jupyterhub.md)."""
LOCAL_SETTINGS_ENV = {
    "local_driver_memory": "PROPHECY_JUPYTER_LOCAL_DRIVER_MEMORY",
    "local_isolation": "PROPHECY_JUPYTER_LOCAL_ISOLATION",
    "local_max_sessions": "PROPHECY_JUPYTER_LOCAL_MAX_SESSIONS",
    "local_niceness": "PROPHECY_JUPYTER_LOCAL_NICENESS",
    "local_warm_start": "PROPHECY_JUPYTER_LOCAL_WARM_START",
    "local_idle_stop": "PROPHECY_JUPYTER_LOCAL_IDLE_STOP",
    "local_class_archive": "PROPHECY_JUPYTER_LOCAL_CLASS_ARCHIVE",
    "projects_dir": PROJECTS_DIR_ENV,
}
"""Settings that the environment may give (the server's options win over it)."""


def local_username() -> str:
    """The name a single-user install, a kernel or the command line acts as: the JupyterHub user
    of this server, else the OS user."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def under_jupyterhub() -> bool:
    """Whether this process runs in a user's server (or a service) of a JupyterHub."""
    return bool(os.environ.get("JUPYTERHUB_API_TOKEN") and os.environ.get("JUPYTERHUB_API_URL"))


def hub_groups() -> HubGroups:
    """The hub's groups, asked with this process's hub token."""
    return HubGroups(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])


def hub_service(url: str = "") -> HubClient | None:
    """The hub service (at ``url``, else ``$PROPHECY_JUPYTER_HUB_SERVICE_URL``), when this process
    runs in a user's server on a hub that has one."""
    url = url or os.environ.get(HUB_SERVICE_URL_ENV, "")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not (url and token):
        return None
    return HubClient(url, token, local_username())


def shared_store_url() -> str | None:
    """The shared store's SQLAlchemy URL, when one is set."""
    return os.environ.get(DATABASE_URL_ENV) or None


def snowflake_connections_file() -> Path:
    """Where Snowflake's clients keep ``connections.toml``: ``$SNOWFLAKE_HOME``, else
    ``~/.snowflake/`` when it exists, else the platform's config folder (``~/.config/snowflake/``)."""
    if os.environ.get("SNOWFLAKE_HOME"):
        return Path(os.environ["SNOWFLAKE_HOME"]).expanduser() / "connections.toml"
    home = Path.home() / ".snowflake"
    if home.is_dir():
        return home / "connections.toml"
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "snowflake" / "connections.toml"


def apply_environment(settings: ServiceSettings, configured: Collection[str] = ()) -> ServiceSettings:
    """Take the settings the environment gives (see ``LOCAL_SETTINGS_ENV``), except those
    ``configured`` explicitly."""
    for name, variable in LOCAL_SETTINGS_ENV.items():
        value = os.environ.get(variable)
        if value and name not in configured:
            setattr(settings, name, settings.traits()[name].from_string(value))
    return settings


def settings_of_this_process() -> ServiceSettings:
    """The settings of a command or a kernel without a server: the environment's, and no caps on
    table results (the process's own memory is the user's)."""
    return apply_environment(
        ServiceSettings(max_table_rows=0, max_buffered_bytes=0, under_hub=under_jupyterhub())
    )


def services_of_this_process(user: str) -> Services:
    """The services a command or a kernel without a server uses: over the hub service in a user's
    server on a hub (as that user), else over this machine's store."""
    settings = settings_of_this_process()
    hub = hub_service()
    if hub is not None:
        return build_hub_services(data_dir(), hub, settings)
    return build_services(data_dir(), shared_store_url(), settings=settings, bootstrap_user=user)
