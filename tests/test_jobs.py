"""Scheduled jobs in a project: ``jobs/<job>.yaml`` beside the pipelines, checked against the
project's pipelines (their typed parameters) and the fabric, written into the user's working copy
of a real Git repository (smart HTTP), committed and pushed like a pipeline; the same job gives the
same bytes; each wrong field is named."""

from __future__ import annotations

import datetime

import pytest
import yaml

from prophecy_jupyter.errors import Invalid, NotFound
from prophecy_jupyter.services.jobs import Schedule, parse_job
from prophecy_jupyter.services.runtime import build_services
from tests.conftest import USER
from tests.servers.git_http import served_project
from tests.test_snowflake_sessions import code_cell
from tests.test_vault import new_key

TOKEN = "ghp_" + "J0bs" * 9
NIGHTLY = {
    "name": "nightly",
    "pipelines": ["orders"],
    "fabric": "local",
    "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Paris"},
    "parameters": {"rows": "7", "label": "eu", "strict": "true"},
    "retries": 2,
    "timeout_minutes": 90,
    "emails": ["data-team@example.com"],
}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "Nightly Run"}, "name", "lower-case"),
        ({"pipelines": []}, "pipelines", "at least 1"),
        ({"pipelines": ["orders", "orders"]}, "pipelines", "named twice"),
        ({"schedule": {"cron": "0 2 * *"}}, "schedule.cron", "5 fields"),
        ({"schedule": {"cron": "0 0 2 * * *"}}, "schedule.cron", "5 fields"),
        ({"schedule": {"cron": "0 25 * * *"}}, "schedule.cron", "not a valid cron"),
        ({"schedule": {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}}, "schedule.timezone", "IANA"),
        ({"emails": ["not-an-address"]}, "emails", "e-mail"),
        ({"retries": -1}, "retries", "greater than or equal to 0"),
        ({"max_concurrent_runs": 0}, "max_concurrent_runs", "greater than or equal to 1"),
        ({"secret": "x"}, "secret", "Extra inputs"),
    ],
)
def test_a_wrong_field_is_named(change, field, message):
    with pytest.raises(Invalid) as refused:
        parse_job({**NIGHTLY, **change})
    assert refused.value.field == field and message in str(refused.value), str(refused.value)


def test_next_run_times_are_read_in_the_schedules_time_zone():
    schedule = Schedule(cron="30 2 * * 1-5", timezone="Europe/Paris")
    after = datetime.datetime(2026, 1, 9, 12, 0, tzinfo=datetime.UTC)  # a Friday
    runs = schedule.next_runs(3, after)
    assert [run.isoformat() for run in runs] == [
        "2026-01-12T02:30:00+01:00",
        "2026-01-13T02:30:00+01:00",
        "2026-01-14T02:30:00+01:00",
    ]
    summer = schedule.next_runs(1, datetime.datetime(2026, 7, 1, 12, 0, tzinfo=datetime.UTC))
    assert summer[0].isoformat() == "2026-07-02T02:30:00+02:00"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("PROPHECY_JUPYTER_KEY", new_key())
    built = build_services(tmp_path / "data", bootstrap_user=USER)
    with served_project(built, tmp_path / "served", "warehouse", TOKEN, USER):
        cells = [
            code_cell('rows = 5\nlabel = "all"\nstrict = False', ("parameters",)),
            code_cell("%%spark\nprint(spark.range(rows).count(), label, strict)"),
        ]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        local = built.fabrics.get(USER, "local")
        built.projects.generate(USER, "warehouse", notebook, "orders.ipynb", None, local)
        yield built
    built.close()


def test_a_job_is_written_beside_its_pipeline_typed_and_the_same_every_time(project):
    job, changed = project.jobs.create(USER, "warehouse", NIGHTLY)
    assert changed == ["jobs/nightly.yaml"]
    assert job.parameters == {"rows": 7, "label": "eu", "strict": True}, "values take the pipeline's types"
    folder = project.projects.working_copy(USER, project.projects.get(USER, "warehouse"))
    written = (folder / "jobs/nightly.yaml").read_bytes()
    assert yaml.safe_load(written) == {
        "name": "nightly",
        "pipelines": ["orders"],
        "fabric": "local",
        "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Paris"},
        "parameters": {"rows": 7, "label": "eu", "strict": True},
        "size": None,
        "retries": 2,
        "timeout_minutes": 90,
        "max_concurrent_runs": 1,
        "emails": ["data-team@example.com"],
    }
    again, unchanged = project.jobs.create(USER, "warehouse", NIGHTLY, replace=True)
    assert unchanged == [] and again == job and (folder / "jobs/nightly.yaml").read_bytes() == written
    with pytest.raises(Invalid, match="has a job nightly already") as exists:
        project.jobs.create(USER, "warehouse", NIGHTLY)
    assert exists.value.field == "name"

    assert project.projects.commit(USER, "warehouse", "Schedule orders nightly")
    project.projects.push(USER, "warehouse")
    _, repository, _ = project.projects.open(USER, "warehouse")
    assert repository.files_at("HEAD", "jobs") == {"jobs/nightly.yaml": written}, (
        "committed beside the pipeline"
    )
    assert [j.name for j in project.jobs.list(USER, "warehouse")] == ["nightly"]
    assert project.jobs.get(USER, "warehouse", "nightly") == job

    exported, changed, target = project.jobs.export(USER, "warehouse", "nightly")
    assert (target, changed, list(exported.files)) == ("airflow", ["dags/nightly.py"], ["dags/nightly.py"])
    with pytest.raises(
        Invalid, match="Fabric local names no airflow fabric to deploy and run its jobs"
    ) as nowhere:
        project.jobs.deploy(USER, "warehouse", "nightly")
    assert nowhere.value.field == "fabric"
    assert project.jobs.delete(USER, "warehouse", "nightly") == (["jobs/nightly.yaml"], None)
    assert project.jobs.list(USER, "warehouse") == []
    with pytest.raises(NotFound, match="no job nightly"):
        project.jobs.get(USER, "warehouse", "nightly")
    with pytest.raises(Invalid, match=r"Job name '\.\./x'") as bad_name:
        project.jobs.get(USER, "warehouse", "../x")
    assert bad_name.value.field == "name"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"pipelines": ["orders", "missing"]}, "pipelines", "has no pipeline missing"),
        ({"parameters": {"region": "eu"}}, "parameters", "no pipeline of the job has a parameter region"),
        ({"parameters": {"rows": "many"}}, "parameters", "rows takes an integer, not 'many'"),
        ({"parameters": {"strict": "maybe"}}, "parameters", "strict takes true or false, not 'maybe'"),
        ({"size": "XL"}, "size", "has no job size XL"),
        ({"fabric": "nowhere"}, None, "nowhere"),
    ],
)
def test_a_job_that_does_not_fit_its_pipelines_or_fabric_is_refused(project, change, field, message):
    with pytest.raises((Invalid, NotFound)) as refused:
        project.jobs.create(USER, "warehouse", {**NIGHTLY, **change})
    assert message.lower() in str(refused.value).lower(), str(refused.value)
    if field is not None:
        assert refused.value.field == field
    assert project.jobs.list(USER, "warehouse") == [], "nothing written"


def test_a_pipeline_for_another_kind_of_fabric_is_refused(project):
    project.fabrics.create(USER, "default", {"name": "offline", "kind": "snowpark-local", "settings": {}})
    cells = [code_cell("%%spark\nsession.create_dataframe([[1]]).collect()")]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    offline = project.fabrics.get(USER, "default/offline")
    project.projects.generate(USER, "warehouse", notebook, "snow.ipynb", None, offline)
    with pytest.raises(Invalid, match="generated for a snowpark-local fabric") as refused:
        project.jobs.create(
            USER, "warehouse", {**NIGHTLY, "name": "snow", "pipelines": ["snow"], "parameters": {}}
        )
    assert refused.value.field == "fabric"
    job, _ = project.jobs.create(
        USER, "warehouse", {"name": "snow", "pipelines": ["snow"], "fabric": "offline", "schedule": None}
    )
    assert job.fabric == "default/offline" and job.schedule is None, "a fabric's ref, and on demand"


def test_a_workflow_runs_pipelines_in_order_and_a_parameter_has_one_type_in_all(project):
    def generate(name: str, parameters: str) -> None:
        cells = [code_cell(parameters, ("parameters",)), code_cell("%%spark\nprint(1)")]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        local = project.fabrics.get(USER, "local")
        project.projects.generate(USER, "warehouse", notebook, f"{name}.ipynb", None, local)

    generate("totals", "day = '2026-01-01'\nrows = 10")
    generate("clash", "rows = 'all'")
    flow = {
        **NIGHTLY,
        "name": "flow",
        "pipelines": ["totals", "orders"],
        "parameters": {"rows": "3", "day": "d"},
    }
    job, _ = project.jobs.create(USER, "warehouse", flow)
    assert job.pipelines == ["totals", "orders"] and job.parameters == {"rows": 3, "day": "d"}
    with pytest.raises(Invalid, match="rows takes an integer in one pipeline and text in clash") as clash:
        project.jobs.create(USER, "warehouse", {**flow, "name": "clash", "pipelines": ["orders", "clash"]})
    assert clash.value.field == "parameters"
