"""Fabrics and engines as the session service finds them: a fabric looked up at most every few
seconds (by one thread at a time), one engine per user, fabric version and version of the user's
secret, and each notebook's own session settings composed with the fabric's. Clusters and
pipeline runs use it too."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from prophecy_jupyter.engines.base import Engine, SessionSpec
from prophecy_jupyter.errors import EngineError, Invalid
from prophecy_jupyter.services.fabrics import RESOURCE_FIELDS, Fabric
from prophecy_jupyter.services.sessions.model import session_name
from prophecy_jupyter.services.settings import ServiceSettings

FABRIC_CACHE_SECONDS = 5.0
T = TypeVar("T")


class EngineSource(Protocol):
    """What builds the engine for a fabric (the fabric kinds, through ``EngineFactory``)."""

    def engine(self, fabric: Fabric, secret: str | None, proxy_user: str | None = None) -> Engine: ...


class FabricSource(Protocol):
    """Where the service finds fabrics and the user's secret for them (the fabric service)."""

    def get(self, user: str, ref: str) -> Fabric: ...

    def secret(self, user: str, fabric: Fabric) -> str | None: ...

    def secret_set_at(self, user: str, fabric: Fabric) -> datetime.datetime | None: ...


class Recent(Generic[T]):
    """Answers kept for ``FABRIC_CACHE_SECONDS``. One thread at a time looks a stale one up again;
    the others keep the last answer meanwhile, so many requests at once make one query, not one each."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], tuple[float, T]] = {}
        self._looking_up: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], look_up: Callable[[], T]) -> T:
        """The answer for ``key``, looked up with ``look_up`` if there is none recent enough."""
        now = time.monotonic()
        with self._lock:
            known = self._answers.get(key)
            if known and (now - known[0] < FABRIC_CACHE_SECONDS or key in self._looking_up):
                return known[1]
            self._looking_up.add(key)
        try:
            answer = look_up()
        finally:
            with self._lock:
                self._looking_up.discard(key)
        with self._lock:
            self._answers[key] = (now, answer)
        return answer

    def clear(self) -> None:
        """Forget every answer (the next ``get`` of each looks it up)."""
        with self._lock:
            self._answers.clear()


class Directory:
    def __init__(self, fabrics: FabricSource, engines: EngineSource, settings: ServiceSettings):
        self.fabrics = fabrics
        self.engines = engines
        self.settings = settings
        self._engines: dict[tuple[str, str, str | None], Engine] = {}
        self._resolved: Recent[Fabric] = Recent()
        self._stamps: Recent[str | None] = Recent()
        self._overrides: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = threading.RLock()

    def fabric(self, user: str, ref: str) -> Fabric:
        """The fabric a user means, looked up in the store at most every few seconds (each cell
        asks; membership and settings changes apply within ``FABRIC_CACHE_SECONDS``)."""
        return self._resolved.get((user, ref), lambda: self.fabrics.get(user, ref))

    def engine(self, user: str, fabric: Fabric) -> Engine:
        """The engine the user's cells on the fabric use (built with their own secret)."""
        key = (user, fabric.version, self._secret_stamp(user, fabric))
        with self._lock:
            engine = self._engines.get(key)
        if engine is None:
            secret = self.fabrics.secret(user, fabric)
            if fabric.secret_needed and secret is None:
                raise EngineError(
                    f"Fabric '{fabric.ref}' needs your {fabric.secret_needed}: set it with "
                    f"`jupyter prophecy credentials set {fabric.ref}` or in the Prophecy sidebar."
                )
            proxy_users = self.settings.proxy_users
            proxy_user = None if proxy_users is None else proxy_users.get(user, user)
            engine = self.engines.engine(fabric, secret, proxy_user)
            with self._lock:
                engine = self._engines.setdefault(key, engine)
        return engine

    def _secret_stamp(self, user: str, fabric: Fabric) -> str | None:
        """When the user last set their secret for the fabric (looked up at most every few seconds)."""
        if not fabric.secret_needed:
            return None

        def look_up() -> str | None:
            set_at = self.fabrics.secret_set_at(user, fabric)
            return set_at.isoformat() if set_at else None

        return self._stamps.get((user, fabric.id), look_up)

    def secret_changed(self, _scope: str) -> None:
        """A credential changed in this process: look secrets up again before the next run."""
        self._stamps.clear()

    def configure(self, user: str, notebook: str, fabric: Fabric, checked: dict[str, Any]) -> SessionSpec:
        """Keep the notebook's own session settings (checked by ``session_settings``) if they fit
        the fabric; the spec they give."""
        key = (user, notebook, fabric.id)
        with self._lock:
            previous = self._overrides.get(key)
            self._overrides[key] = checked
        try:
            return self.spec_for(user, notebook, fabric)
        except BaseException:  # a setting that does not fit the fabric is not kept
            with self._lock:
                self._overrides[key] = previous if previous is not None else {}
            raise

    def spec_for(self, user: str, notebook: str, fabric: Fabric) -> SessionSpec:
        """Fabric defaults, then the job size, then the notebook's own settings."""
        with self._lock:
            settings = self._overrides.get((user, notebook, fabric.id), {})
        conf = dict(fabric.conf)
        resources: dict[str, Any] = {}
        size = settings.get("size")
        if size is not None:
            if size not in fabric.job_sizes:
                known = ", ".join(fabric.job_sizes) or "none"
                raise Invalid(f"Fabric '{fabric.ref}' has no job size '{size}' (sizes: {known}).", "size")
            sized = fabric.job_sizes[size]
            conf.update(sized.get("conf", {}))
            resources.update({k: v for k, v in sized.items() if k != "conf"})
        conf.update(settings.get("conf", {}))
        resources.update({k: settings[k] for k in RESOURCE_FIELDS if k in settings})
        return SessionSpec(
            kind=settings.get("kind", "pyspark"), name=session_name(user), conf=conf, resources=resources
        )

    def close(self) -> None:
        """Close every engine (the service stops)."""
        with self._lock:
            engines = list(self._engines.values())
        for engine in engines:
            engine.close()
