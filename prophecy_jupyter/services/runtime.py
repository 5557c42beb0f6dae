"""The service stack: over this machine's store and vault (a single-user install, the CLI, the hub
service itself), or over the hub service (a user's server on a JupyterHub)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prophecy_jupyter.services.attachments import AttachmentService
from prophecy_jupyter.services.clusters import ClusterService
from prophecy_jupyter.services.code_cache import CodeCache
from prophecy_jupyter.services.credentials import CredentialService
from prophecy_jupyter.services.engines import EngineFactory
from prophecy_jupyter.services.fabrics import FabricService, SharedIdentities
from prophecy_jupyter.services.fabrics import by_scope as fabric_by_scope
from prophecy_jupyter.services.hub_store import (
    HubClient,
    HubFabrics,
    HubProjects,
    HubTeams,
)
from prophecy_jupyter.services.jobs import JobService
from prophecy_jupyter.services.legacy_import import import_legacy
from prophecy_jupyter.services.local_gateway import LocalGateway
from prophecy_jupyter.services.notebooks import NotebookService
from prophecy_jupyter.services.pipeline_runs import PipelineRunner
from prophecy_jupyter.services.project_registry import ProjectRegistry
from prophecy_jupyter.services.project_registry import by_scope as project_by_scope
from prophecy_jupyter.services.projects import ProjectService, Registry
from prophecy_jupyter.services.sessions import SessionService
from prophecy_jupyter.services.sessions.records import NoRecords, SessionRecords, StoreSessionRecords
from prophecy_jupyter.services.settings import ServiceSettings
from prophecy_jupyter.services.teams import Groups, TeamService
from prophecy_jupyter.store.database import Database, sqlite_url
from prophecy_jupyter.vault.keys import KeyStore
from prophecy_jupyter.vault.sealing import Sealer


@dataclass
class Services:
    """Everything built once per process (CLI, kernel without a server), per Jupyter server, or
    for the hub service."""

    directory: Path
    db: Database
    """This process's store: everything, or on a hub only its own attachments and sessions."""
    teams: TeamService | HubTeams
    fabrics: FabricService | HubFabrics
    registry: Registry
    cache_key: Callable[[str], Sealer]
    """A user's own key for their code cache."""
    attachments: AttachmentService
    credentials: CredentialService | None = None
    """The vault, where this process holds it (never in a user's server on a hub)."""
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    records: SessionRecords = field(default_factory=NoRecords)
    hub: HubClient | None = None

    @functools.cached_property
    def local_gateway(self) -> LocalGateway:
        """The local fabric's gateway (started when a session on it is first opened)."""
        return LocalGateway(self.directory, self.settings)

    @functools.cached_property
    def sessions(self) -> SessionService:
        """Started on first use: the CLI's fabric commands never need it."""
        engines = EngineFactory(self.local_gateway)
        service = SessionService(self.fabrics, engines, self.settings, self.records)
        self.fabrics.on_secret_change(service.secret_changed)
        return service

    @functools.cached_property
    def clusters(self) -> ClusterService:
        return ClusterService(self.sessions)

    @functools.cached_property
    def cache(self) -> CodeCache:
        """Each user's encrypted drafts and project snapshots under ``<data dir>/cache``."""
        return CodeCache(self.directory / "cache", self.cache_key)

    @functools.cached_property
    def projects(self) -> ProjectService:
        """Working copies live under ``<projects dir>/<user>`` (``<data dir>/projects`` unless set)."""
        chosen = self.settings.projects_dir
        folder = Path(chosen).expanduser() if chosen else self.directory / "projects"
        return ProjectService(self.registry, self.cache, folder)

    @functools.cached_property
    def notebooks(self) -> NotebookService:
        return NotebookService(self.fabrics, self.attachments, self.projects)

    @functools.cached_property
    def pipeline_runs(self) -> PipelineRunner:
        return PipelineRunner(self.projects, self.sessions)

    @functools.cached_property
    def jobs(self) -> JobService:
        """The projects' scheduled jobs (``jobs/<job>.yaml`` in each user's working copy)."""
        return JobService(self.projects, self.fabrics, lambda: self.sessions)

    def close(self, close_sessions: bool = True) -> None:
        """Stop the session service (closing its sessions unless told not to) and the store."""
        if "sessions" in self.__dict__:
            self.sessions.shutdown(close_sessions)
        else:
            self.records.close()
        if "local_gateway" in self.__dict__:
            self.local_gateway.stop()
        self.db.close()
        if self.hub is not None:
            self.hub.close()


def build_services(
    directory: Path,
    database_url: str | None = None,
    key_source: str | None = None,
    settings: ServiceSettings | None = None,
    groups: Groups | None = None,
    records: bool = False,
    bootstrap_user: str | None = None,
    shared_identities: SharedIdentities | None = None,
) -> Services:
    """Open the store (migrating it) and the vault, and build the services over them.

    The store is ``database_url``, or SQLite under ``directory`` (the data folder).
    ``bootstrap_user`` becomes admin of team ``default`` when the store has no team yet.
    ``shared_identities`` says who may use fabrics reached as the server's own identity (default:
    everyone, as in a process of a single user).
    """
    db = Database.open(database_url or sqlite_url(directory))
    credentials = CredentialService(db, KeyStore(directory, key_source))
    teams = TeamService(db, groups)
    if bootstrap_user:
        teams.bootstrap(bootstrap_user)
    fabrics = FabricService(db, teams, credentials, shared_identities)
    credentials.bind_unbound(lambda scope: fabric_by_scope(db, scope) or project_by_scope(db, scope))
    if bootstrap_user:
        import_legacy(directory, bootstrap_user, fabrics, credentials)
    return Services(
        directory,
        db,
        teams,
        fabrics,
        ProjectRegistry(db, teams, credentials),
        lambda user: Sealer(credentials.key.derived(f"cache:{user}")),
        AttachmentService(db, fabrics),
        credentials,
        settings or ServiceSettings(),
        StoreSessionRecords(db) if records else NoRecords(),
    )


def build_hub_services(
    directory: Path, hub: HubClient, settings: ServiceSettings | None = None, records: bool = False
) -> Services:
    """The services of a user's server on a hub: teams, fabrics, credentials and projects come
    from the hub service (as the server's owner only); attachments and session records stay in a
    store of this server's own, which holds no secret."""
    db = Database.open(sqlite_url(directory))
    fabrics = HubFabrics(hub)
    return Services(
        directory,
        db,
        HubTeams(hub),
        fabrics,
        HubProjects(hub),
        hub.cache_key,
        AttachmentService(db, fabrics),
        None,
        settings or ServiceSettings(),
        StoreSessionRecords(db) if records else NoRecords(),
        hub,
    )
