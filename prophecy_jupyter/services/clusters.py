"""The clusters behind fabrics that have one (databricks): their state, starting them, and the
clusters a fabric could use, each with the user's own credential."""

from __future__ import annotations

from prophecy_jupyter.engines.base import HasClusters
from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.services.sessions import SessionService


class ClusterService:
    """Cluster state and start for a user's fabric, through the engine their cells use."""

    def __init__(self, sessions: SessionService):
        self.sessions = sessions

    def _engine(self, user: str, fabric_ref: str) -> HasClusters:
        fabric = self.sessions.fabric(user, fabric_ref)
        engine = self.sessions.engine_for(user, fabric)
        if not isinstance(engine, HasClusters):
            raise Invalid(f"Fabric '{fabric.ref}' is a {fabric.kind} fabric; it has no cluster to start.")
        return engine

    def state(self, user: str, fabric_ref: str) -> dict[str, str]:
        """The fabric's cluster now: ``{cluster_id, name, state, message}``."""
        return self._engine(user, fabric_ref).cluster().to_json()

    def start(self, user: str, fabric_ref: str) -> dict[str, str]:
        """Start the fabric's cluster if it is terminated; its state after the request."""
        return self._engine(user, fabric_ref).start_cluster().to_json()

    def list(self, user: str, fabric_ref: str) -> list[dict[str, str]]:
        """The clusters of the fabric's workspace that the user can see."""
        return [c.to_json() for c in self._engine(user, fabric_ref).clusters()]
