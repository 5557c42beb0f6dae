"""The service stack over one store: vault, teams, fabrics, credentials and sessions."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from prophecy_jupyter.paths import data_dir
from prophecy_jupyter.services.attachments import AttachmentService
from prophecy_jupyter.services.clusters import ClusterService
from prophecy_jupyter.services.code_cache import CodeCache
from prophecy_jupyter.services.credentials import CredentialService
from prophecy_jupyter.services.engines import EngineFactory
from prophecy_jupyter.services.fabrics import FabricService, SharedIdentities
from prophecy_jupyter.services.fabrics import by_scope as fabric_by_scope
from prophecy_jupyter.services.legacy_import import import_legacy
from prophecy_jupyter.services.local_gateway import LocalGateway
from prophecy_jupyter.services.pipeline_runs import PipelineRunner
from prophecy_jupyter.services.projects import ProjectService
from prophecy_jupyter.services.projects import by_scope as project_by_scope
from prophecy_jupyter.services.session_records import NoRecords, SessionRecords, StoreSessionRecords
from prophecy_jupyter.services.sessions import ServiceSettings, SessionService
from prophecy_jupyter.services.teams import Groups, TeamService
from prophecy_jupyter.store.database import Database, sqlite_url
from prophecy_jupyter.vault.keys import KeyStore
from prophecy_jupyter.vault.sealing import Sealer

PROJECTS_DIR_ENV = "PROPHECY_JUPYTER_PROJECTS_DIR"


@dataclass
class Services:
    """Everything built once per process (CLI, kernel without a server) or per Jupyter server."""

    directory: Path
    db: Database
    credentials: CredentialService
    teams: TeamService
    fabrics: FabricService
    attachments: AttachmentService
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    records: SessionRecords = field(default_factory=NoRecords)

    @functools.cached_property
    def sessions(self) -> SessionService:
        """Started on first use: the CLI's fabric commands never need it."""
        engines = EngineFactory(LocalGateway(self.directory))
        service = SessionService(self.fabrics, engines, self.settings, self.records)
        self.credentials.on_change(service.secret_changed)
        return service

    @functools.cached_property
    def clusters(self) -> ClusterService:
        return ClusterService(self.sessions)

    @functools.cached_property
    def cache(self) -> CodeCache:
        """Each user's encrypted drafts and project snapshots under ``<data dir>/cache``, under a
        key of that user's own (derived from the vault's)."""
        return CodeCache(
            self.directory / "cache", lambda user: Sealer(self.credentials.key.derived(f"cache:{user}"))
        )

    @functools.cached_property
    def projects(self) -> ProjectService:
        """Working copies live under ``<data dir>/projects/<user>`` (``PROPHECY_JUPYTER_PROJECTS_DIR``)."""
        override = os.environ.get(PROJECTS_DIR_ENV)
        folder = Path(override).expanduser() if override else self.directory / "projects"
        return ProjectService(self.db, self.teams, self.credentials, self.cache, folder)

    @functools.cached_property
    def pipeline_runs(self) -> PipelineRunner:
        return PipelineRunner(self.projects, self.sessions)

    def close(self, close_sessions: bool = True) -> None:
        """Stop the session service (closing its sessions unless told not to) and the store."""
        if "sessions" in self.__dict__:
            self.sessions.shutdown(close_sessions)
        else:
            self.records.close()
        self.db.close()


def build_services(
    directory: Path | None = None,
    database_url: str | None = None,
    key_source: str | None = None,
    settings: ServiceSettings | None = None,
    groups: Groups | None = None,
    records: bool = False,
    bootstrap_user: str | None = None,
    shared_identities: SharedIdentities | None = None,
) -> Services:
    """Open the store (migrating it) and build the services over it.

    ``bootstrap_user`` becomes admin of team ``default`` when the store has no team yet.
    ``shared_identities`` says who may use fabrics reached as the server's own identity (default:
    everyone, as in a process of a single user).
    """
    directory = directory or data_dir()
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
        credentials,
        teams,
        fabrics,
        AttachmentService(db, fabrics),
        settings or ServiceSettings(),
        StoreSessionRecords(db) if records else NoRecords(),
    )
