"""From a notebook in a real Jupyter server: %pipeline generates the notebook's pipeline, shows its
diff, commits and pushes it to the team's repository on a real Git server with the user's own
token, which never reaches the notebook, the server's log or the data dir in clear."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.servers.git_http import GitHttpServer
from tests.servers.jupyter import start_jupyter
from tests.servers.kernels import execute

pytestmark = pytest.mark.slow
TOKEN = "ghp_" + "Nb7v" * 9


@pytest.fixture
def git_server(tmp_path):
    served = GitHttpServer(tmp_path / "served", {TOKEN: "x-access-token"}).start()
    yield served
    served.stop()


def test_pipeline_magics_take_a_notebook_to_the_teams_repository(tmp_path, data_dir, git_server, monkeypatch):
    monkeypatch.setenv("PROPHECY_JUPYTER_PROJECTS_DIR", str(tmp_path / "work"))
    server = start_jupyter(tmp_path, data_dir, os.environ["PROPHECY_JUPYTER_KEY"])
    try:
        url = git_server.create_repository("analytics")
        project = server.call(
            "POST", "/teams/default/projects", {"name": "analytics", "url": url, "provider": "github"}
        )
        status = server.call("PUT", f"/projects/{project['id']}/token", {"token": TOKEN})
        assert status["set"] is True and TOKEN not in json.dumps(status)
        notebook = json.loads((Path(__file__).parents[1] / "notebooks/quickstart.ipynb").read_text())
        notebook["metadata"]["prophecy"]["project"] = "analytics"
        (server.root / "orders.ipynb").write_text(json.dumps(notebook))
        kernel = server.start_kernel("orders.ipynb")
        client = server.client(kernel)
        try:
            assert execute(client, "%load_ext prophecy_jupyter").ok
            generated = execute(client, "%pipeline generate")
            assert generated.ok and "Pipeline 'orders' in project 'analytics' (2 step(s)): changed" in (
                generated.stdout
            ), generated.failure
            diff = execute(client, "%pipeline diff")
            assert "+++ b/pipelines/orders/pipeline.py" in diff.stdout and "+def step_2():" in diff.stdout
            committed = execute(client, '%pipeline commit -m "Orders by region"')
            assert committed.ok and committed.stdout.startswith("Committed "), committed.failure
            pushed = execute(client, "%pipeline push")
            assert pushed.ok and "Pushed main of project 'analytics'." in pushed.stdout, pushed.failure
            clean = execute(client, "%pipeline status")
            assert "analytics on main: 0 change(s)" in clean.stdout
            missing = execute(client, "%pipeline commit")
            assert not missing.ok and "needs -m MESSAGE" in missing.failure
            created = execute(client, '%job create nightly --schedule "0 2 * * *" --timezone Asia/Tokyo')
            assert created.ok and created.stdout.startswith(
                "Job 'nightly': orders on local, 0 2 * * * (Asia/Tokyo); changed jobs/nightly.yaml"
            ), created.failure  # the notebook's pipeline and fabric by default
            assert (
                execute(client, "%job list").stdout.strip()
                == "nightly: orders on local, 0 2 * * * (Asia/Tokyo)"
            )
            shown = execute(client, "%job show nightly").stdout
            assert shown.count("T02:00:00+09:00") == 3, shown
            exported = execute(client, "%job export nightly --format airflow")
            assert exported.stdout.strip() == "Job 'nightly' as airflow: dags/nightly.py.", exported.failure
            undeployed = execute(client, "%job deploy nightly")
            assert not undeployed.ok and "names no airflow fabric" in undeployed.failure
            other = execute(client, "%job export nightly --format bundle")
            assert not other.ok and "whose scheduler takes airflow, not bundle" in other.failure
            bad = execute(client, '%job create weekly --schedule "0 2 * *"')
            assert not bad.ok and "schedule.cron: must be 5 fields" in bad.failure, bad.failure
            assert execute(client, "%job delete nightly").stdout.startswith("Removed jobs/nightly.yaml")
        finally:
            client.stop_channels()
            server.call("DELETE", f"/kernels/{kernel}", api="/api")
        history = server.call("GET", f"/projects/{project['id']}/history", params={"limit": "1"})["commits"]
        assert history[0]["message"] == "Orders by region"
        files = server.call("GET", f"/projects/{project['id']}/pipelines/orders")["files"]
        assert "def main(argv=None):" in files["pipelines/orders/pipeline.py"]
        assert any(
            r["method"] == "POST" and r["path"].endswith("git-receive-pack") for r in git_server.requests
        )

        jobs = f"/projects/{project['id']}/jobs"
        nightly = {"name": "nightly", "pipelines": ["orders"], "fabric": "local"}
        schedule = {"cron": "0 2 * * 1-5", "timezone": "America/New_York"}
        bad = server.request("POST", jobs, {**nightly, "schedule": {**schedule, "cron": "0 2 * *"}})
        assert bad.status_code == 400 and bad.json()["field"] == "schedule.cron", bad.text
        created = server.call("POST", jobs, {**nightly, "schedule": schedule, "emails": ["ana@example.com"]})
        assert created["changed"] == ["jobs/nightly.yaml"] and len(created["job"]["next_runs"]) == 3
        assert all(
            run.endswith(("T02:00:00-05:00", "T02:00:00-04:00")) for run in created["job"]["next_runs"]
        )
        assert [job["name"] for job in server.call("GET", jobs)["jobs"]] == ["nightly"]
        assert server.call("GET", f"{jobs}/nightly")["job"]["schedule"] == schedule
        exported = server.call("POST", f"{jobs}/nightly/export", {"format": "airflow"})
        assert exported["format"] == "airflow" and "LivyOperator(" in exported["files"]["dags/nightly.py"]
        not_deployed = server.request("POST", f"{jobs}/nightly/runs")
        assert not_deployed.status_code == 405
        refused = server.request("GET", f"{jobs}/nightly/runs")
        assert refused.status_code == 400 and refused.json()["field"] == "fabric", refused.text
        assert server.call("DELETE", f"{jobs}/nightly")["removed"] == ["jobs/nightly.yaml"]
        assert server.request("GET", f"{jobs}/nightly").status_code == 404
        preview = server.call("POST", "/schedules/preview", {"cron": "0 2 * * *", "timezone": "Asia/Tokyo"})
        assert len(preview["next_runs"]) == 3 and all(
            r.endswith("T02:00:00+09:00") for r in preview["next_runs"]
        )
        for wrong, field in (
            ({"cron": "0 2 * *"}, "schedule.cron"),
            ({"cron": "0 2 * * *", "timezone": "X/Y"}, "schedule.timezone"),
        ):
            refused = server.request("POST", "/schedules/preview", wrong)
            assert refused.status_code == 400 and refused.json()["field"] == field, refused.text
    finally:
        server.stop()
    secret = TOKEN.encode()
    for folder in (server.root, data_dir, server.log.parent, tmp_path / "work"):
        for path in folder.rglob("*"):
            assert not path.is_file() or secret not in path.read_bytes(), f"the token is in {path}"
