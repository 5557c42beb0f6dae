"""What every store-backed command needs: the services, as the local user."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prophecy_jupyter.environment import local_username, services_of_this_process
from prophecy_jupyter.services.runtime import Services


@contextlib.contextmanager
def services() -> Iterator[tuple[Services, str]]:
    """The services (over the data dir's store, or in a user's server on a hub, over the hub
    service), and the user the command acts as."""
    user = local_username()
    built = services_of_this_process(user)
    try:
        yield built, user
    finally:
        built.close()
