"""What every store-backed command needs: the services, as the local user."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prophecy_jupyter.services.identity import local_username
from prophecy_jupyter.services.runtime import Services, build_services


@contextlib.contextmanager
def services() -> Iterator[tuple[Services, str]]:
    """The services over the data dir's store, and the user the command acts as."""
    user = local_username()
    built = build_services(bootstrap_user=user)
    try:
        yield built, user
    finally:
        built.close()
