"""Projects and pipelines against a real smart-HTTP Git server: the quickstart notebook becomes a
pipeline (byte-identical on regeneration), is diffed, committed and pushed with the user's own
token, and runs on the local fabric with the notebook's results; the encrypted cache opens a
project with the Git server stopped, rejects tampered entries and stays within its bound."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from prophecy_jupyter.errors import AccessDenied, GitError, Invalid, ProphecyError
from prophecy_jupyter.git.providers import auth_environment
from prophecy_jupyter.services.code_cache import CodeCache
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.vault.sealing import Sealer
from tests.conftest import USER
from tests.servers.git_http import GitHttpServer

TOKEN = "ghp_" + "Zx81" * 9
QUICKSTART = Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb"


@pytest.fixture
def git_server(tmp_path):
    served = GitHttpServer(tmp_path / "served", {TOKEN: "x-access-token"}).start()
    yield served
    served.stop()


@pytest.fixture
def built(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("GIT_TRACE", str(tmp_path / "git-trace.log"))
    services = build_services(data_dir, bootstrap_user=USER)
    yield services
    services.close()


def quickstart(parameters: bool = True) -> dict:
    notebook = json.loads(QUICKSTART.read_text())
    if parameters:
        cell = {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": "rows = 20000\n",
            "outputs": [],
            "execution_count": None,
        }
        notebook["cells"].insert(1, cell)
        for cell in notebook["cells"]:
            cell["source"] = "".join(cell["source"]).replace("spark.range(0, 20000)", "spark.range(0, rows)")
    return notebook


def add_project(built, url: str):
    project = built.projects.create(USER, "default", {"name": "analytics", "url": url, "provider": "github"})
    built.projects.set_token(USER, project.ref, TOKEN)
    return project


def test_a_notebook_becomes_a_pipeline_committed_and_pushed(built, git_server, tmp_path, data_dir):
    project = add_project(built, git_server.create_repository("analytics"))
    pipeline, changed = built.projects.generate(USER, "analytics", quickstart(), "notebooks/quickstart.ipynb")
    assert changed == [
        "pipelines/quickstart/README.md",
        "pipelines/quickstart/pipeline.py",
        "pipelines/quickstart/pipeline.yaml",
    ]
    assert [p.name for p in pipeline.parameters] == ["rows"] and len(pipeline.steps) == 2
    again, unchanged = built.projects.generate(USER, "analytics", quickstart(), "notebooks/quickstart.ipynb")
    assert unchanged == [] and again.files() == pipeline.files(), "the same notebook gives the same bytes"
    diff = built.projects.diff(USER, "analytics")
    assert "+def step_1():" in diff and "+    by_region = spark.sql(" in diff
    assert built.projects.draft(USER, "analytics", "quickstart") == pipeline.files()
    commit = built.projects.commit(USER, "analytics", "Add the quickstart pipeline")
    assert commit and built.projects.commit(USER, "analytics", "again") is None
    assert built.projects.push(USER, "analytics") == "main"

    fresh = tmp_path / "fresh"
    url = git_server.url + "/analytics.git"
    env = {**os.environ, **auth_environment(url, "github", TOKEN, None)}
    env.pop("GIT_TRACE", None)
    subprocess.run(["git", "clone", "-q", url, str(fresh)], check=True, env=env)
    log = subprocess.run(
        ["git", "-C", str(fresh), "log", "-1", "--format=%an|%s"], capture_output=True, text=True
    )
    assert log.stdout.strip() == f"{USER}|Add the quickstart pipeline"
    assert (fresh / "pipelines/quickstart/pipeline.py").read_bytes() == pipeline.files()[
        "pipelines/quickstart/pipeline.py"
    ]

    with pytest.raises(Invalid, match="lower-case letters"):
        built.projects.generate(USER, "analytics", quickstart(), "x.ipynb", name="../escape")
    built.teams.set_member(USER, "default", "eve", "member")
    with pytest.raises(AccessDenied):
        built.projects.create("eve", "default", {"name": "x", "url": git_server.url + "/x.git"})

    secret = TOKEN.encode()
    for folder in (data_dir, tmp_path / "git-trace.log"):
        paths = [folder] if folder.is_file() else list(folder.rglob("*"))
        for path in paths:
            assert not path.is_file() or secret not in path.read_bytes(), f"the token is in {path}"
    working = built.projects.working_copy(USER, project)
    assert "Authorization" not in (working / ".git/config").read_text()
    plain = [p for p in (data_dir / "cache").rglob("*") if p.is_file() and b"def step_1" in p.read_bytes()]
    assert plain == [], "the cache holds no plaintext code"


@pytest.mark.spark
def test_the_pipeline_gives_the_notebooks_results_on_the_local_fabric(built, git_server, tmp_path):
    add_project(built, git_server.create_repository("analytics"))
    built.projects.generate(USER, "analytics", quickstart(), "notebooks/quickstart.ipynb")
    built.projects.commit(USER, "analytics", "Add quickstart")
    sessions = built.sessions
    # The notebook's own fabric cells, as the magics run them.
    cells = [c for c in quickstart(parameters=False)["cells"] if c["cell_type"] == "code"]
    spark_cell = "".join(cells[1]["source"]).removeprefix("%%spark\n")
    query = "".join(cells[2]["source"]).split("\n", 1)[1]
    notebook_run = sessions.run(USER, "quickstart.ipynb", "local", spark_cell)
    expected = sessions.fetch_sql(USER, "quickstart.ipynb", "local", query, -1).table

    run = built.pipeline_runs.run(USER, "analytics", "quickstart", "local", {"rows": "20000"})
    assert run.ok and run.how == "session", run.output
    assert run.output.strip() == notebook_run.result.text.strip() == "20,000 orders"
    produced = sessions.fetch_table(USER, "pipeline:analytics:quickstart", "local", "by_region", -1).table
    assert produced.equals(expected) and list(produced.dtypes) == list(expected.dtypes)
    smaller = built.pipeline_runs.run(USER, "analytics", "quickstart", "local", {"rows": "400"})
    assert smaller.output.strip() == "400 orders", "parameters reach the pipeline"

    pipeline_py = built.projects.working_copy(USER, built.projects.get(USER, "analytics")) / (
        "pipelines/quickstart/pipeline.py"
    )
    submit = Path(sys.executable).with_name("spark-submit")
    import pyspark

    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent), "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(
        [str(submit), "--master", "local[1]", str(pipeline_py), "--rows", "96"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0 and "96 orders" in done.stdout, done.stderr[-2000:]


def test_the_cache_opens_projects_offline_rejects_tampering_and_stays_bounded(built, git_server, data_dir):
    project = add_project(built, git_server.create_repository("analytics"))
    built.projects.generate(USER, "analytics", quickstart(), "notebooks/quickstart.ipynb")
    built.projects.commit(USER, "analytics", "Add quickstart")
    built.projects.push(USER, "analytics")
    files = built.projects.pipeline_files(USER, "analytics", "quickstart")
    assert set(files) == {f"pipelines/quickstart/{n}" for n in ("README.md", "pipeline.py", "pipeline.yaml")}

    git_server.stop()
    shutil.rmtree(built.projects.working_copy(USER, project))
    status = built.projects.status(USER, "analytics")
    assert "opened from your local cache" in status["notes"][0] and status["branch"] == "main"
    assert built.projects.history(USER, "analytics", 1)[0]["message"] == "Add quickstart"
    assert built.projects.pipeline_files(USER, "analytics", "quickstart") == files, "no Git server needed"

    cache = built.cache
    entries = sorted((data_dir / "cache").glob("*/*/*.sealed"))
    assert entries
    for entry in entries:
        data = bytearray(entry.read_bytes())
        data[-1] ^= 1
        entry.write_bytes(bytes(data))
    assert cache.get(USER, project.id, "head:main") is None, "a tampered entry is rejected"
    assert built.projects.pipeline_files(USER, "analytics", "quickstart") == files, "and fetched again"

    sealer = Sealer(built.credentials.key.derived("cache:small"))
    small = CodeCache(data_dir / "small-cache", lambda _user: sealer, max_bytes=3500)
    for index in range(5):
        small.put(USER, "p", f"entry-{index}", bytes([index]) * 1000)
    small.get(USER, "p", "entry-2")  # recently used
    small.put(USER, "p", "entry-5", b"x" * 1000)
    kept = [i for i in range(6) if small.get(USER, "p", f"entry-{i}") is not None]
    assert small.size() <= 3500 and kept == [2, 4, 5], "the least recently used go first"
    assert small.clear() == len(kept)


def test_requests_that_clone_the_same_working_copy_at_once_both_get_it_whole(built, git_server):
    """The sidebar's Jobs and Git sections both open a project when a token is saved: clones of
    one working copy race (the later one starting while the first is under way), and none may
    remove or half-show another's."""
    project = add_project(built, git_server.create_repository("analytics"))
    path = built.projects.working_copy(USER, project)

    def open_after(delay: float, opened: list[object]) -> None:
        time.sleep(delay)
        try:
            opened.append(built.projects.open(USER, "analytics")[1])
        except Exception as exc:
            opened.append(exc)

    for attempt, step in enumerate([0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12]):
        shutil.rmtree(path, ignore_errors=True)
        opened: list[object] = []
        threads = [threading.Thread(target=open_after, args=(n * step, opened)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [type(o).__name__ for o in opened] == ["Repository"] * 3, (attempt, opened)
        for repository in opened:
            assert repository.status() == [], f"attempt {attempt}: a clean checkout, README.md and all"
        assert [p.name for p in path.parent.iterdir()] == ["analytics"], "no clone left beside it"

    shutil.rmtree(path)
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(GitError, match="something that is not a working copy is there"):
        built.projects.open(USER, "analytics")
    assert (path / "notes.txt").read_text() == "mine", "a clone never removes what it did not make"
    assert [p.name for p in path.parent.iterdir()] == ["analytics"]


@pytest.mark.spark
def test_on_a_livy_fabric_the_pipeline_runs_as_a_batch(built, git_server, gateway, tmp_path, monkeypatch):
    from tests.conftest import livy_fabric

    add_project(built, git_server.create_repository("analytics"))
    built.projects.generate(USER, "analytics", quickstart(), "notebooks/quickstart.ipynb")
    built.projects.commit(USER, "analytics", "Add quickstart")
    fabric = built.fabrics.create(USER, "default", livy_fabric(gateway.url))
    built.credentials.set(USER, fabric, gateway.token)
    heard: list[str] = []
    run = built.pipeline_runs.run(USER, "analytics", "quickstart", "gw", {"rows": "300"}, heard.append)
    assert run.how == "batch" and run.ok, run.output
    assert "300 orders" in run.output and heard[0].startswith("Batch ")

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    nowhere = built.fabrics.create(USER, "default", livy_fabric("http://127.0.0.1:9", "nowhere"))
    built.credentials.set(USER, nowhere, gateway.token)
    with pytest.raises(ProphecyError):
        built.pipeline_runs.run(USER, "analytics", "quickstart", "nowhere", {}, heard.append)
    assert list(scratch.iterdir()) == [], "a batch that could not be submitted leaves no file"


def test_a_pipeline_runs_on_the_notebook_s_fabric_from_its_metadata_else_its_attachment(
    built, git_server, tmp_path
):
    add_project(built, git_server.create_repository("analytics"))
    plain = quickstart()
    del plain["metadata"]["prophecy"]
    file = tmp_path / "attached.ipynb"
    file.write_text(json.dumps(plain))
    built.attachments.attach(USER, "work/attached.ipynb", "local")
    generated = built.notebooks.generate_pipeline(USER, "analytics", "work/attached.ipynb", file)
    assert (generated.pipeline.fabric, generated.pipeline.fabric_kind) == ("local", "local")
    assert generated.to_json()["pipeline"]["fabric"] == "local"
    unattached = built.notebooks.generate_pipeline(USER, "analytics", "work/other.ipynb", file, "other")
    assert unattached.pipeline.fabric is None
    file.write_text(json.dumps(quickstart()))
    named = built.notebooks.generate_pipeline(USER, "analytics", "work/other.ipynb", file, "other")
    assert named.pipeline.fabric == "local"
    file.write_text("{not json")
    with pytest.raises(Invalid, match=r"attached\.ipynb is not a notebook"):
        built.notebooks.generate_pipeline(USER, "analytics", "work/attached.ipynb", file)


def test_a_notebook_with_cells_on_another_fabric_than_its_attached_one_makes_no_pipeline(
    built, git_server, tmp_path
):
    add_project(built, git_server.create_repository("analytics"))
    notebook = quickstart()
    del notebook["metadata"]["prophecy"]
    cells = notebook["cells"]
    spark_cell = next(c for c in cells if "".join(c["source"]).startswith("%%spark"))
    spark_cell["source"] = "".join(spark_cell["source"]).replace("%%spark", "%%spark -f local", 1)
    file = tmp_path / "attached.ipynb"
    file.write_text(json.dumps(notebook))
    built.attachments.attach(USER, "work/attached.ipynb", "local")
    same = built.notebooks.generate_pipeline(USER, "analytics", "work/attached.ipynb", file)
    assert same.pipeline.fabric == "local" and len(same.pipeline.steps) == 2, "-f names the attached fabric"

    cells.append(
        {"cell_type": "code", "metadata": {}, "source": "%%spark -f warehouse\nt = 1", "outputs": []}
    )
    file.write_text(json.dumps(notebook))
    number = len(cells)
    with pytest.raises(Invalid, match=rf"several fabrics.*; cell {number} runs on 'warehouse'\. Split it"):
        built.notebooks.generate_pipeline(USER, "analytics", "work/attached.ipynb", file)
    assert built.projects.draft(USER, "analytics", "attached") == same.pipeline.files(), "nothing written"
