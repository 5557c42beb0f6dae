"""What the Databricks engines share: a workspace client on databricks-sdk, its failures as errors
that name the fabric, and requests that must reach the workspace at most once.

The SDK brings auth (PAT, OAuth M2M with refresh, ``~/.databrickscfg`` profiles), typed models
and retries of idempotent failures (429 and 503 after ``Retry-After``, connection errors).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import (
    DatabricksError,
    PermissionDenied,
    ResourceDoesNotExist,
    TemporarilyUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from urllib3.exceptions import NewConnectionError

from prophecy_jupyter.engines.base import PollPolicy
from prophecy_jupyter.errors import AuthenticationError, EngineError

T = TypeVar("T")

STATUS_POLLS = PollPolicy(first_delay=0.003, ratio=0.01, cap=1.0)
"""Databricks has no long poll: check often (a check waits for the previous one, so a slow
network paces them), after 1% of the time run so far, at least once a second."""


@dataclass(frozen=True)
class WorkspaceConnection:
    """Where and how to reach a workspace (the secret comes separately, from the vault)."""

    host: str
    auth: str = "pat"
    client_id: str | None = None
    profile: str | None = None
    retry_timeout: float = 60.0
    """How long idempotent calls are retried before the user hears about it."""
    http_timeout: float = 60.0


def workspace_client(connection: WorkspaceConnection, secret: str | None) -> WorkspaceClient:
    """A databricks-sdk client for the user: a PAT, an OAuth M2M client secret, or a profile."""
    auth: dict[str, Any] = {
        "pat": {"token": secret},
        "oauth-m2m": {"client_id": connection.client_id, "client_secret": secret},
        "profile": {"profile": connection.profile},
    }[connection.auth]
    try:
        config = Config(
            host=connection.host,
            retry_timeout_seconds=max(1, int(connection.retry_timeout)),
            http_timeout_seconds=max(1, int(connection.http_timeout)),
            **auth,
        )
    except ValueError as exc:  # a missing profile, or a profile without what it needs
        raise EngineError(f"Cannot set up the Databricks client: {exc}") from None
    return WorkspaceClient(config=config)


class _SentOnce(io.BytesIO):
    """A request body the SDK will not send twice (it retries only seekable streams)."""

    def seekable(self) -> bool:
        return False


class Workspace:
    """A workspace client that reports failures as errors naming the fabric."""

    def __init__(self, connection: WorkspaceConnection, secret: str | None, fabric_name: str):
        self.connection = connection
        self.fabric_name = fabric_name
        self.client = workspace_client(connection, secret)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One SDK call (retried by the SDK when that is safe), failures said plainly."""
        try:
            return fn(*args, **kwargs)
        except TimeoutError as exc:
            cause = exc.__cause__
            raise EngineError(
                f"Fabric '{self.fabric_name}' did not {what} within {self.connection.retry_timeout:.0f} s"
                + (f" ({_describe(cause)})." if cause else ".")
            ) from None
        except DatabricksError as exc:
            raise self.error(what, exc) from None
        except (requests.RequestException, ValueError) as exc:
            raise EngineError(f"Fabric '{self.fabric_name}' could not {what}: {_describe(exc)}.") from None

    def error(self, what: str, exc: DatabricksError) -> EngineError:
        if isinstance(exc, (PermissionDenied, Unauthenticated)):
            return AuthenticationError(
                f"Fabric '{self.fabric_name}' refused to {what} ({exc}). Check your credential for "
                f"it (`jupyter prophecy credentials set {self.fabric_name}`)."
            )
        if isinstance(exc, ResourceDoesNotExist):
            return EngineError(f"Fabric '{self.fabric_name}': {exc}. Check the fabric's settings.")
        return EngineError(f"Fabric '{self.fabric_name}' could not {what}: {exc}")

    def post_once(self, what: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A POST that must not run twice (it starts work): retried only when the workspace
        surely did not take it (refused connection, 429, 503); an answer lost on the way back is
        reported, not resent."""
        deadline = time.monotonic() + self.connection.retry_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.client.api_client.do(
                    "POST",
                    path,
                    data=_SentOnce(json.dumps(body).encode()),
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                )
            except (TooManyRequests, TemporarilyUnavailable) as exc:
                wait = exc.retry_after_secs if exc.retry_after_secs is not None else min(10, attempt)
                if time.monotonic() + wait > deadline:
                    raise EngineError(
                        f"Fabric '{self.fabric_name}' is too busy to {what} (HTTP "
                        f"{429 if isinstance(exc, TooManyRequests) else 503}); try again shortly."
                    ) from None
                time.sleep(wait)
            except DatabricksError as exc:
                raise self.error(what, exc) from None
            except requests.ConnectionError as exc:
                if not _never_connected(exc) or time.monotonic() + attempt > deadline:
                    raise EngineError(
                        f"The connection to fabric '{self.fabric_name}' broke while it was asked to "
                        f"{what} ({_describe(exc)}). It may have started it; it was not sent again, "
                        "so that nothing runs twice."
                    ) from None
                time.sleep(min(10, attempt))
            except requests.Timeout:
                raise EngineError(
                    f"Fabric '{self.fabric_name}' did not answer within "
                    f"{self.connection.http_timeout:.0f} s when asked to {what}. It may have started "
                    "it; it was not sent again, so that nothing runs twice."
                ) from None


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the connection was never made (refused, unreachable): the request cannot have arrived."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError says why
    return isinstance(reason, NewConnectionError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
