"""A notebook's flows, written once for the server's API, the kernel and the command line: which
fabric it runs on (its metadata, else what the user attached it to) and its pipeline generated
into a project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prophecy_jupyter.notebook_links import links, read_notebook
from prophecy_jupyter.services import pipelines
from prophecy_jupyter.services.attachments import AttachmentService
from prophecy_jupyter.services.fabrics import Fabric
from prophecy_jupyter.services.projects import ProjectService


class FabricLookup(Protocol):
    """Where fabrics are found (the fabric service, or the hub service's)."""

    def get(self, user: str, ref: str) -> Fabric: ...


@dataclass(frozen=True)
class Generated:
    """A generated pipeline and the files it changed in the working copy."""

    pipeline: pipelines.Pipeline
    changed: list[str]

    def to_json(self) -> dict[str, Any]:
        pipeline = self.pipeline
        return {
            "pipeline": {
                "name": pipeline.name,
                "steps": len(pipeline.steps),
                "parameters": [
                    {"name": p.name, "type": p.type, "default": p.default} for p in pipeline.parameters
                ],
                "fabric": pipeline.fabric,
            },
            "changed": self.changed,
        }


class NotebookService:
    """A notebook's fabric and its pipeline, for the API, the kernel and the command line."""

    def __init__(self, fabrics: FabricLookup, attachments: AttachmentService, projects: ProjectService):
        self.fabrics = fabrics
        self.attachments = attachments
        self.projects = projects

    def fabric_of(self, user: str, path: str, notebook: dict[str, Any]) -> Fabric | None:
        """The fabric the notebook runs on: its metadata's, else the one the user attached it to."""
        ref = links(notebook).fabric or self.attachments.get(user, path)
        return self.fabrics.get(user, ref) if ref else None

    def generate_pipeline(
        self, user: str, project: str, path: str, file: Path, name: str | None = None
    ) -> Generated:
        """Write the pipeline of the notebook ``file`` (known to the user's attachments as ``path``)
        into the user's working copy of the project."""
        notebook = read_notebook(file)
        fabric = self.fabric_of(user, path, notebook)
        return Generated(*self.projects.generate(user, project, notebook, path, name, fabric))
