"""JupyterHub groups as teams: a user belongs to the team of each of their hub groups, as an admin
when they are a hub admin (asked of the hub's REST API, cached for a minute). A team named like a
hub group is governed by the group: only its members belong to it."""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0


class HubGroups:
    """The hub groups of a user, from the hub's REST API with this server's token."""

    def __init__(self, api_url: str, token: str, timeout: float = 5.0):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._groups: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

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

    def is_group(self, name: str) -> bool:
        """Whether the hub has a group of that name. When the hub cannot say, yes: a name that may
        be a group's is not given away."""
        with self._lock:
            cached = self._groups.get(name)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        response = self._ask(f"/groups/{quote(name, safe='')}", f"group {name}")
        known = response is None or response.status_code != 404
        if response is not None and response.status_code not in (200, 404):
            log.warning("the hub answered %s about the group %s", response.status_code, name)
        with self._lock:
            self._groups[name] = (time.monotonic(), known)
        return known

    def _ask(self, path: str, what: str) -> requests.Response | None:
        try:
            return requests.get(
                f"{self.api_url}{path}",
                timeout=self.timeout,
                headers={"Authorization": f"token {self._token}"},
            )
        except requests.RequestException as exc:
            log.warning("could not ask the hub about %s: %s", what, type(exc).__name__)
            return None

    def _fetch(self, user: str) -> dict[str, str]:
        response = self._ask(f"/users/{quote(user, safe='')}", f"the groups of {user}")
        if response is None:
            return {}
        if response.status_code != 200:
            log.warning("the hub answered %s for the groups of %s", response.status_code, user)
            return {}
        model = response.json()
        role = "admin" if model.get("admin") else "member"
        return {str(group): role for group in model.get("groups") or []}
