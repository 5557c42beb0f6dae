"""The fabric-kind registry: each kind declares what it can do in one place, its engines are what
it declares, a kind without cells yet says so through the same mechanism, and no
code outside the registry switches on a kind's name."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from prophecy_jupyter.errors import EngineError, Invalid
from prophecy_jupyter.kinds import REGISTRY, creatable, kind_named
from prophecy_jupyter.kinds.base import CAPABILITIES, EngineContext, FabricKind

PACKAGE = Path(__file__).parents[1] / "prophecy_jupyter"
SAMPLE_SETTINGS = {
    "local": {},
    "livy": {"url": "https://livy.example.com", "auth": "bearer"},
    "databricks": {"host": "WORKSPACE", "cluster_id": "0101-abc"},
    "databricks-sql": {"host": "WORKSPACE", "warehouse_id": "1a2b"},
    "snowflake": {"account": "myorg-acct", "user": "ana"},
    "snowpark-local": {},
    "airflow": {"url": "https://airflow.example.com", "username": "ana"},
}


class Nothing(BaseHTTPRequestHandler):
    """A workspace host that knows nothing (databricks-sdk asks it for its metadata when a client
    is made, and waits a minute for one that does not answer)."""

    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def workspace():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Nothing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def context() -> EngineContext:
    return EngineContext("team/x", "a-token", None, lambda: ("http://127.0.0.1:9", "gateway-token"))


@pytest.mark.parametrize("name", [name for name, kind in REGISTRY.items() if kind.runs_cells])
def test_a_kinds_engines_have_exactly_the_capabilities_it_declares(name, hermetic_databricks, workspace):
    kind = kind_named(name)
    values = {
        key: workspace if value == "WORKSPACE" else value for key, value in SAMPLE_SETTINGS[name].items()
    }
    settings = kind.settings.model_validate(values)
    engine = kind.build(settings, context())
    try:
        for protocol in CAPABILITIES.values():
            assert isinstance(engine, protocol) == (protocol in kind.capabilities), (name, protocol)
    finally:
        engine.close()


def test_the_registry_lists_every_kind_and_what_cells_run_on():
    listed = {kind["name"]: kind for kind in (k.describe() for k in REGISTRY.values())}
    assert {name for name, kind in listed.items() if kind["cells"] == "supported"} == set(REGISTRY) - {
        "airflow"
    }
    assert listed["airflow"]["cells"] == "not supported", "a scheduler: cells never run on it"
    assert listed["databricks-sql"]["capabilities"] == ["runs SQL"]
    creatable_kinds = ["livy", "databricks", "databricks-sql", "snowflake", "snowpark-local", "airflow"]
    assert creatable() == creatable_kinds, "local is built in"
    with pytest.raises(Invalid, match="kind: one of"):
        kind_named("oracle")


def test_a_kind_without_an_engine_yet_says_so_and_keeps_its_fabrics():
    livy = REGISTRY["livy"]
    planned = FabricKind(name="planned", title="Planned", settings=livy.settings, check=livy.check)
    assert planned.describe()["cells"] == "not yet supported" and not planned.runs_cells
    settings = planned.settings.model_validate(SAMPLE_SETTINGS["livy"])
    with pytest.raises(EngineError, match="running cells on Planned is not available in this version yet"):
        planned.build(settings, context())


def test_cells_do_not_run_on_a_kind_that_is_a_scheduler():
    airflow = kind_named("airflow")
    settings = airflow.settings.model_validate(SAMPLE_SETTINGS["airflow"])
    with pytest.raises(EngineError, match=r"\(Apache Airflow\) is the scheduler .*: cells do not run on it"):
        airflow.build(settings, context())


def test_no_code_outside_the_registry_switches_on_a_fabric_kind():
    names = "|".join(re.escape(name) for name in REGISTRY)
    switch = re.compile(rf"""kind\s*(==|!=|in)\s*[(\[]?\s*["']({names})["']""")
    found = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if "kinds" not in path.parts and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if switch.search(line)
    ]
    assert found == []
