"""JupyterHub groups as teams: a user belongs to the team of each of their hub groups, as an admin
when they are a hub admin (asked of the hub's REST API, cached for a minute)."""

from __future__ import annotations

import logging
import os
import threading
import time

import requests

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0


def under_jupyterhub() -> bool:
    return bool(os.environ.get("JUPYTERHUB_API_TOKEN") and os.environ.get("JUPYTERHUB_API_URL"))


class HubGroups:
    """The hub groups of a user, from the hub's REST API with this server's token."""

    def __init__(self, api_url: str, token: str, timeout: float = 5.0):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> HubGroups:
        return cls(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])

    def __call__(self, user: str) -> dict[str, str]:
        """Team name → role for each of the user's hub groups."""
        with self._lock:
            cached = self._cache.get(user)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        groups = self._fetch(user)
        with self._lock:
            self._cache[user] = (time.monotonic(), groups)
        return groups

    def _fetch(self, user: str) -> dict[str, str]:
        try:
            response = requests.get(
                f"{self.api_url}/users/{user}",
                timeout=self.timeout,
                headers={"Authorization": f"token {self._token}"},
            )
        except requests.RequestException as exc:
            log.warning("could not ask the hub for the groups of %s: %s", user, type(exc).__name__)
            return {}
        if response.status_code != 200:
            log.warning("the hub answered %s for the groups of %s", response.status_code, user)
            return {}
        model = response.json()
        role = "admin" if model.get("admin") else "member"
        return {str(group): role for group in model.get("groups") or []}
