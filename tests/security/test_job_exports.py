"""A job's values come from a file any member of the project can commit: hostile parameter values
stay values in every scheduler's export (Snowflake's SQL, a Databricks job and bundle), never SQL,
YAML or code of their own; an admin's code folder cannot climb out of its workspace root."""

from __future__ import annotations

import pytest
import sqlglot
import yaml
from pydantic import ValidationError

from prophecy_jupyter.kinds.databricks import DatabricksSettings
from prophecy_jupyter.schedulers import databricks_jobs, snowflake_tasks
from prophecy_jupyter.schedulers.base import PipelineCode
from prophecy_jupyter.services.jobs import parse_job

HOSTILE = [
    "x'); DROP TABLE ORDERS; --",
    "x\\'); CALL SYSTEM$WIPE(); --",
    "a$$\nimport os\n$$",
    "{{ conn.livy_default.password }}",
    "line\nkey: [injected]\n- item",
    "--rows=9",
    "\u2028\x00'\"",
]


def job(value: str):
    return parse_job(
        {
            "name": "nightly",
            "pipelines": ["orders"],
            "fabric": "t/f",
            "parameters": {"note": value},
            "schedule": {"cron": "0 2 * * *", "timezone": "UTC"},
        }
    )


PIPELINE = PipelineCode("orders", "def main(session, note='x'):\n    return note\n", {"note": ("str", "x")})


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_stays_one_value_in_snowflake_sql(value):
    exported = snowflake_tasks.export(job(value), [PIPELINE], "t/p", {"database": "D", "schema": "S"})
    _procedure, task, *resumed = exported.statements
    assert resumed == ["ALTER TASK NIGHTLY RESUME"], "no statement of the value's own"
    parsed = sqlglot.parse(task, read="snowflake")
    assert len(parsed) == 1, "the task is one statement"
    call = sqlglot.parse_one("SELECT " + task.split("CALL ", 1)[1], read="snowflake").expressions[0]
    assert {kwarg.this.name: kwarg.expression.to_py() for kwarg in call.expressions} == {"NOTE": value}


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_stays_one_argument_of_a_databricks_job_and_bundle(value):
    settings = {"host": "https://dbc.example.com", "cluster_id": "c-1", "job_sizes": {}}
    body = databricks_jobs.job_settings(job(value), [PIPELINE], "t/p", settings, {})
    assert body["tasks"][0]["spark_python_task"]["parameters"] == ["--note", value]
    exported = databricks_jobs.export(job(value), [PIPELINE], "t/p", settings)
    resource = yaml.safe_load(exported.files["resources/nightly.job.yml"])["resources"]["jobs"]["nightly"]
    assert resource["tasks"][0]["spark_python_task"]["parameters"] == ["--note", value]
    assert set(resource) == set(body), "no key of the value's own"


@pytest.mark.parametrize("root", ["/Shared/../../Users/admin", "Shared/prophecy", "/Shared/x y", "/a/./b"])
def test_a_job_code_folder_outside_a_plain_absolute_path_is_refused(root):
    with pytest.raises(ValidationError, match="job_code_root"):
        DatabricksSettings(host="https://dbc.example.com", cluster_id="c", job_code_root=root)
