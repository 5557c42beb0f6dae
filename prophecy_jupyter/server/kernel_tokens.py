"""Tokens for the kernels this server starts: each acts as the user who started the kernel, for
that kernel's lifetime only.

A token is minted when the server starts a kernel and handed to that kernel alone, in the
environment of its process (never in the server's). The server keeps only its SHA-256. A request
with the token acts as the kernel's user and goes through the same authorization as the browser;
once the kernel is shut down, the token is worth nothing.

Who started a kernel: jupyter_server authorizes every kernel and session request before it starts
a kernel, so the authorizer is wrapped to note the user of that request (a context variable of
the request's task), and the kernel manager's ``start_kernel`` reads it.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.identity import User

from prophecy_jupyter.client.link import KERNEL_TOKEN_ENV, SERVER_CA_ENV, SERVER_URL_ENV

_starter: contextvars.ContextVar[str | None] = contextvars.ContextVar("prophecy_kernel_starter", default=None)
_KERNEL_RESOURCES = frozenset({"kernels", "sessions"})


@dataclass(frozen=True)
class KernelHolder:
    """Who a kernel token acts for."""

    username: str
    """The Jupyter user who started the kernel."""
    kernel_id: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KernelTokens:
    """The live kernels' tokens (by digest); ``alive(kernel_id)`` says whether a kernel still runs."""

    def __init__(self, alive: Callable[[str], bool]):
        self._alive = alive
        self._holders: dict[str, KernelHolder] = {}
        self._lock = threading.Lock()

    def mint(self, username: str, kernel_id: str) -> str:
        """A new token for ``kernel_id``, acting as ``username``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._holders[_digest(token)] = KernelHolder(username, kernel_id)
        return token

    def holder(self, token: str) -> KernelHolder | None:
        """Who the token acts for, or None when it is unknown or its kernel has ended."""
        digest = _digest(token)
        with self._lock:
            holder = self._holders.get(digest)
        if holder is None:
            return None
        if not self._alive(holder.kernel_id):
            self.revoke(holder.kernel_id)
            return None
        return holder

    def revoke(self, kernel_id: str) -> None:
        """Forget every token of a kernel (it was shut down)."""
        with self._lock:
            for digest in [d for d, h in self._holders.items() if h.kernel_id == kernel_id]:
                del self._holders[digest]


class StarterNotingAuthorizer:
    """Delegates to the deployment's authorizer; notes who asks to start kernels and sessions."""

    def __init__(self, inner: Any):
        self._inner = inner

    def is_authorized(self, handler: Any, user: User, action: str, resource: str):
        if resource in _KERNEL_RESOURCES and action == "write":
            _starter.set(user.username)
        return self._inner.is_authorized(handler, user, action, resource)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def hand_tokens_to_kernels(
    settings: dict[str, Any],
    kernel_manager: Any,
    tokens: KernelTokens,
    owner: str,
    server_url: Callable[[], str | None],
    ca_file: str | None,
) -> None:
    """Give every kernel the server starts its own token (and where the API is).

    ``settings`` are the extension's: they become the web application's after
    ``initialize_settings``. A kernel started outside any request (by the server itself) acts as
    ``owner``. ``server_url`` is None when kernels cannot reach the API (a server on a Unix
    socket): they then get nothing.
    """
    settings["authorizer"] = StarterNotingAuthorizer(settings["authorizer"])
    start, shutdown = kernel_manager.start_kernel, kernel_manager.shutdown_kernel

    async def start_kernel(*args: Any, **kwargs: Any) -> str:
        kernel_id = kwargs.get("kernel_id")
        url = server_url()
        if url and (kernel_id is None or kernel_id not in kernel_manager):
            kernel_id = kwargs["kernel_id"] = kernel_id or str(uuid.uuid4())
            env = dict(kwargs.get("env") or os.environ)
            env[KERNEL_TOKEN_ENV] = tokens.mint(_starter.get() or owner, kernel_id)
            env[SERVER_URL_ENV] = url
            if ca_file:
                env[SERVER_CA_ENV] = ca_file
            kwargs["env"] = env
        return await ensure_async(start(*args, **kwargs))

    async def shutdown_kernel(kernel_id: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await ensure_async(shutdown(kernel_id, *args, **kwargs))
        finally:
            tokens.revoke(kernel_id)

    kernel_manager.start_kernel = start_kernel
    kernel_manager.shutdown_kernel = shutdown_kernel
