"""Running a committed pipeline on a fabric: as a batch where the fabric's kind says so (a Livy
batch, ``spark-submit`` of ``pipeline.py`` there), in a session of the fabric otherwise."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prophecy_jupyter.engines.base import RunsBatches
from prophecy_jupyter.errors import EngineError, Invalid
from prophecy_jupyter.results.model import Result
from prophecy_jupyter.services.pipeline_code import FLAVORS
from prophecy_jupyter.services.projects import ProjectService
from prophecy_jupyter.services.sessions import SessionService, table_result, wait_for

BATCH_TIMEOUT = 3600.0


@dataclass
class PipelineRun:
    pipeline: str
    fabric: str
    how: str  # "session" or "batch"
    ok: bool
    output: str
    result: Result | None = None
    log: list[str] = field(default_factory=list)


def arguments(parameters: dict[str, str]) -> list[str]:
    """``--name value`` pairs for the pipeline's command line."""
    args: list[str] = []
    for name, value in sorted(parameters.items()):
        if not name.isidentifier():
            raise Invalid(f"Parameter name {name!r} is not an identifier.", "param")
        args += [f"--{name}", value]
    return args


class PipelineRunner:
    def __init__(self, projects: ProjectService, sessions: SessionService):
        self.projects = projects
        self.sessions = sessions

    def run(
        self,
        user: str,
        project: str,
        name: str,
        fabric_ref: str,
        parameters: dict[str, str],
        notify: Callable[[str], None] = lambda _m: None,
        waiter=wait_for,
    ) -> PipelineRun:
        files = self.projects.pipeline_files(user, project, name)
        source = files[f"pipelines/{name}/pipeline.py"].decode()
        fabric = self.sessions.fabric(user, fabric_ref)
        args = arguments(parameters)
        if fabric.kind_of.pipelines == "batch":
            return self._batch(user, fabric, name, source, args, notify)
        flavor = FLAVORS[fabric.kind_of.pipeline_code]
        if not source.endswith(flavor.guard):
            raise Invalid(
                f"pipelines/{name}/pipeline.py was edited by hand, or generated for another kind of fabric "
                f"than {fabric.kind}: regenerate it from its notebook."
            )
        code = source.removesuffix(flavor.guard) + "\n\n" + flavor.entry.format(args=args) + "\n"
        run = self.sessions.run(
            user, f"pipeline:{project}:{name}", fabric.ref, code, "pyspark", waiter, notify
        )
        result = table_result(run)
        output = result.text if result.ok else f"{result.error_name}: {result.error_message}"
        return PipelineRun(name, fabric.ref, "session", result.ok, output, result)

    def _batch(self, user, fabric, name, source, args, notify) -> PipelineRun:
        engine = self.sessions.engine_for(user, fabric)
        if not isinstance(engine, RunsBatches):
            raise Invalid(f"Fabric '{fabric.ref}' runs no batches.")
        with tempfile.TemporaryDirectory(prefix=f"prophecy-{name}-") as folder:
            file = Path(folder) / "pipeline.py"
            file.write_text(source)
            batch = engine.submit_batch(str(file), args, f"pipeline {name}", fabric.conf)
            notify(f"Batch {batch} of pipeline {name} submitted to fabric '{fabric.ref}'.")
            started, state, log = time.monotonic(), "starting", []
            while state in ("not_started", "starting", "running", "busy", "idle", "recovering"):
                if time.monotonic() - started > BATCH_TIMEOUT:
                    raise EngineError(f"Batch {batch} is still {state} after {BATCH_TIMEOUT:.0f} s.")
                time.sleep(min(5.0, 0.2 + (time.monotonic() - started) / 10))
                state, log = engine.batch(batch)
        return PipelineRun(name, fabric.ref, "batch", state == "success", "\n".join(log), log=log)
