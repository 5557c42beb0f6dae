"""What every store-backed command needs: the services, as the local user."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prophecy_jupyter.paths import data_dir
from prophecy_jupyter.services.hub_store import hub_from_environment
from prophecy_jupyter.services.identity import local_username
from prophecy_jupyter.services.runtime import Services, build_hub_services, build_services


@contextlib.contextmanager
def services() -> Iterator[tuple[Services, str]]:
    """The services (over the data dir's store, or in a user's server on a hub, over the hub
    service), and the user the command acts as."""
    user = local_username()
    hub = hub_from_environment()
    built = build_hub_services(data_dir(), hub) if hub else build_services(bootstrap_user=user)
    try:
        yield built, user
    finally:
        built.close()
