"""What a notebook file says about where it runs and where its pipeline goes:
``metadata.prophecy.fabric`` and ``metadata.prophecy.project``, which a notebook carries with it
(to papermill, ``jupyter prophecy run``, another server). Read here and nowhere else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prophecy_jupyter.errors import Invalid


@dataclass(frozen=True)
class NotebookLinks:
    """A notebook's fabric and project references, where its metadata names them."""

    fabric: str | None = None
    project: str | None = None


def links(notebook: dict[str, Any]) -> NotebookLinks:
    """The notebook's fabric and project, from its JSON (what is not text is ignored)."""
    recorded = (notebook.get("metadata") or {}).get("prophecy")
    if not isinstance(recorded, dict):
        return NotebookLinks()
    fabric, project = recorded.get("fabric"), recorded.get("project")
    return NotebookLinks(
        fabric if isinstance(fabric, str) and fabric else None,
        project if isinstance(project, str) and project else None,
    )


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook file's JSON; Invalid if it is not a notebook."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Invalid(f"{path.name} is not a notebook: {exc}", "notebook") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise Invalid(f"{path.name} is not a notebook: it has no cells.", "notebook")
    return notebook


def links_of_file(path: Path | None) -> NotebookLinks:
    """The links of a notebook file, or none when there is no readable notebook there."""
    if path is None or not path.is_file():
        return NotebookLinks()
    try:
        return links(read_notebook(path))
    except Invalid:
        return NotebookLinks()
