"""Benchmark 6: opening a project's pipeline from the encrypted cache against a fresh clone from a
local Git server, and the cache's encryption throughput.

A repository on our test Git server (``git http-backend`` behind Basic auth) holds 30 generated
pipelines and 60 commits. *Cache*: ``ProjectService.pipeline_files`` (decrypt the branch's
snapshot, pick the pipeline's files). *Clone*: ``git clone`` with the token in the environment,
then read the same files. Throughput: AES-GCM sealing and opening of a 64 MiB entry, in memory
and through ``CodeCache.put``/``get`` (with the disk write and read).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import summary

PIPELINES = 30
COMMITS = 60
THROUGHPUT_BYTES = 64 * 1024 * 1024


def _project(scratch: Path) -> tuple[Any, Any, str, Any]:
    from prophecy_jupyter.environment import local_username
    from prophecy_jupyter.services.runtime import build_services
    from tests.servers.git_http import GitHttpServer

    token = "bench-" + os.urandom(8).hex()
    server = GitHttpServer(scratch / "served", {token: "x-access-token"}).start()
    user = local_username()
    os.environ["PROPHECY_JUPYTER_PROJECTS_DIR"] = str(scratch / "work")
    built = build_services(scratch / "data", bootstrap_user=user)
    project = built.projects.create(
        user, "default", {"name": "bench", "url": server.create_repository("bench"), "provider": "github"}
    )
    built.projects.set_token(user, project.ref, token)
    notebook = json.loads((Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb").read_text())
    for index in range(COMMITS):
        name = f"p{index % PIPELINES:02d}"
        notebook["cells"][-2]["source"] = f"%%local\nprint({index})\n"
        built.projects.generate(user, project.ref, notebook, f"notebooks/{name}.ipynb", name)
        readme = built.projects.working_copy(user, project) / "pipelines" / name / "NOTES.md"
        readme.write_text(f"revision {index}\n")
        built.projects.commit(user, project.ref, f"Revision {index} of {name}")
    built.projects.push(user, project.ref)
    return server, built, user, project


def measure_git_cache(scratch: Path, repetitions: int) -> dict[str, Any]:
    from prophecy_jupyter.git.providers import auth_environment
    from prophecy_jupyter.git.repository import Repository

    server, built, user, project = _project(scratch)
    try:
        token = json.loads(built.credentials.secret(user, project))["token"]
        auth = auth_environment(project.url, project.provider, token, None)
        cache_s, clone_s = [], []
        expected = built.projects.pipeline_files(user, project.ref, "p07")
        for _ in range(repetitions):
            started = time.perf_counter()
            files = built.projects.pipeline_files(user, project.ref, "p07")
            cache_s.append(time.perf_counter() - started)
            assert files == expected
            target = Path(tempfile.mkdtemp(prefix="bench-clone-", dir=scratch))
            shutil.rmtree(target)
            started = time.perf_counter()
            clone = Repository.clone(target, project.url, auth, project.default_branch, token)
            cloned = {
                f"pipelines/p07/{p.name}": p.read_bytes() for p in (target / "pipelines" / "p07").iterdir()
            }
            clone_s.append(time.perf_counter() - started)
            assert cloned == expected and clone.path == target
            shutil.rmtree(target)
        throughput = _throughput(built, user)
    finally:
        built.close()
        server.stop()
    return {
        "pipelines": PIPELINES,
        "commits": COMMITS,
        "repetitions": repetitions,
        "open_from_cache_s": summary(cache_s),
        "fresh_clone_s": summary(clone_s),
        "clone_over_cache": summary(clone_s)["median"] / summary(cache_s)["median"],
        "throughput": throughput,
    }


def _throughput(built: Any, user: str) -> dict[str, Any]:
    from prophecy_jupyter.vault.sealing import Sealer

    data = os.urandom(THROUGHPUT_BYTES)
    megabytes = THROUGHPUT_BYTES / 1e6
    sealer = Sealer(built.credentials.keys.load())
    rows: dict[str, list[float]] = {"seal": [], "open": [], "put": [], "get": []}
    for _ in range(3):
        started = time.perf_counter()
        sealed = sealer.seal(data, "bench")
        rows["seal"].append(megabytes / (time.perf_counter() - started))
        started = time.perf_counter()
        assert sealer.open(sealed, "bench", "bench") == data
        rows["open"].append(megabytes / (time.perf_counter() - started))
        started = time.perf_counter()
        built.cache.put(user, "bench", "throughput", data)
        rows["put"].append(megabytes / (time.perf_counter() - started))
        started = time.perf_counter()
        assert built.cache.get(user, "bench", "throughput") == data
        rows["get"].append(megabytes / (time.perf_counter() - started))
    built.cache.delete(user, "bench", "throughput")
    return {"entry_mb": megabytes, **{name: summary(values) for name, values in rows.items()}}
