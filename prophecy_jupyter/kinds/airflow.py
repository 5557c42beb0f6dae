"""``airflow``: an Airflow 3 deployment that the jobs of livy fabrics are deployed to and run on
(a livy fabric names it in its ``airflow_fabric`` setting). Cells never run on it. Each user
reaches it as themselves: a password (a token from Airflow's ``POST /auth/token``), a token, or
nothing. ``dags_folder`` is a folder on this server's machine that Airflow's DAG processor reads
(a shared volume): deploy writes DAGs there; without it, the team's own process puts them there."""

from __future__ import annotations

import os
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from prophecy_jupyter.errors import AuthenticationError, EngineError
from prophecy_jupyter.kinds import network
from prophecy_jupyter.kinds.base import LOOPBACK_HTTP, CheckFailed, FabricKind, KindSettings
from prophecy_jupyter.schedulers.airflow_api import AirflowApi

_HTTPS_URL = re.compile(r"^https://[^\s/]+")


class AirflowSettings(KindSettings):
    url: str
    """Airflow's API server (the UI's address), e.g. https://airflow.example.com."""
    auth: Literal["password", "token", "none"] = "password"
    username: str | None = None
    """The Airflow user each member logs in as with their own password (password auth)."""
    dags_folder: str | None = None
    """A folder on this server's machine that Airflow's DAG processor reads (a shared volume)."""
    ca_bundle: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not (_HTTPS_URL.match(url) or LOOPBACK_HTTP.match(url)):
            raise ValueError("must be Airflow's https:// URL (plain http only on this machine)")
        parts = urlsplit(url)
        if parts.username or parts.password or parts.query:
            raise ValueError("must hold no credentials or query (each user sets their own secret)")
        return url.rstrip("/")

    @field_validator("dags_folder")
    @classmethod
    def _dags_folder(cls, folder: str | None) -> str | None:
        if folder is None:
            return None
        if not os.path.isabs(folder):
            raise ValueError("must be an absolute path on this server's machine")
        return folder.rstrip("/") or "/"

    @model_validator(mode="after")
    def _username(self) -> AirflowSettings:
        if self.auth == "password" and not self.username:
            raise ValueError("password auth needs a username")
        return self

    def secret_needed(self) -> str | None:
        return {"password": "password", "token": "token"}.get(self.auth)

    def endpoint(self) -> str:
        return self.url


def _check(settings: AirflowSettings, secret: str | None, steps: list[str], ref: str) -> str:
    """DNS, TCP, TLS; Airflow 3's version; a token (password auth); the DAGs, read as the user;
    and the dags folder, when there is one."""
    network.reach(settings.url, settings.ca_bundle, steps)
    try:
        api = AirflowApi(settings.model_dump(), secret, ref, retries=1)
    except EngineError as exc:
        raise CheckFailed("credentials", str(exc)) from None
    try:
        try:
            version = api.version()
        except AuthenticationError as exc:
            raise CheckFailed("auth", str(exc)) from None
        except EngineError as exc:
            raise CheckFailed("http", str(exc)) from None
        steps.append(f"airflow: version {version}")
        try:
            if settings.auth == "password":
                api.login()
                steps.append(f"auth: token issued to {settings.username}")
            api.call("GET", "/api/v2/dags", "list DAGs", params={"limit": 1})
        except AuthenticationError as exc:
            raise CheckFailed("auth", str(exc)) from None
        except EngineError as exc:
            raise CheckFailed("http", str(exc)) from None
        steps.append("dags: readable")
    finally:
        api.close()
    if settings.dags_folder:
        folder = settings.dags_folder
        if not os.path.isdir(folder):
            raise CheckFailed("resource", f"The dags folder {folder} is not a folder on this server.")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CheckFailed("resource", f"This server may not write into the dags folder {folder}.")
        steps.append(f"dags folder: {folder} writable")
    return f"Connected to Airflow {version} at {settings.url}."


AIRFLOW = FabricKind(
    name="airflow",
    title="Apache Airflow",
    settings=AirflowSettings,
    check=_check,
    serves="the scheduler that livy fabrics' jobs are deployed to and run on",
)
