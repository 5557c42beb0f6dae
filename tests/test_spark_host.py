"""The shared JVM's warm-up gives way to statements: once one starts, the warm-up's running Spark
job is cancelled and its other steps are skipped, so that it takes no CPU from users' cells."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# A fresh process per host: a SparkContext is one per process, and each case needs a cold one.
HOST = """
import json, sys, tempfile, time
from prophecy_jupyter.gateway.config import GatewayConfig
from prophecy_jupyter.gateway import spark_host

when = sys.argv[1]
spark_host.prepare_environment()
host = spark_host.SharedSparkHost(spark_host.base_spark_conf(GatewayConfig(), tempfile.mkdtemp()))
if when == "before-ready":
    host.yield_to_statements()
host.start()
host._ready.result(120)
tracker = host._spark.sparkContext.statusTracker()
if when == "during-a-job":
    deadline = time.monotonic() + 60
    while not tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.005)
    host.yield_to_statements()
deadline = time.monotonic() + 120
while host.starting and time.monotonic() < deadline:
    time.sleep(0.05)
jobs = sorted(tracker.getJobIdsForGroup(spark_host.WARM_UP_GROUP))
print(json.dumps({
    "starting": host.starting,
    "jobs": [str(tracker.getJobInfo(job).status) for job in jobs],
}))
host.stop()
"""


def warm_up_jobs(when: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", HOST, when], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_left_alone_the_warm_up_runs_every_step():
    seen = warm_up_jobs("never")
    assert seen == {"starting": False, "jobs": ["SUCCEEDED"] * len(seen["jobs"])}
    assert len(seen["jobs"]) >= 2, "a shuffle query and an Arrow collect"


def test_a_statement_before_the_jvm_is_ready_skips_the_warm_up():
    assert warm_up_jobs("before-ready") == {"starting": False, "jobs": []}


def test_a_statement_during_the_warm_up_cancels_its_job_and_skips_the_rest():
    assert warm_up_jobs("during-a-job") == {"starting": False, "jobs": ["FAILED"]}
