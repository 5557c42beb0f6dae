"""Every notebook in notebooks/ runs headless on the local fabric (the `make demo` path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import open_services

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
JUPYTER = str(Path(sys.executable).with_name("jupyter"))
# What each notebook must print: values computed on the fabric, and dtypes from the Spark schema.
EXPECTED = {
    "quickstart.ipynb": [
        "20,000 orders",
        "decimal128(20, 2)[pyarrow]",
        "date32[day][pyarrow]",
        "Best region: north with revenue 299830.00",
    ],
    "across_fabrics.ipynb": [
        "Sent 4 rows to fabric 'default/cluster' as 'regions' and a temporary view (region string, "
        "target decimal(12,2), since date).",
        "200,000 events on the cluster; regions there: struct<region:string,target:decimal(12,2),since:date>",
        "Sent 4 rows to fabric 'local' as 'from_cluster' (region string, events bigint, "
        "revenue decimal(20,2), target decimal(12,2)).",
        "4 regions on the local fabric",
        "Best region: west with revenue 248704.50 (target 800000.00)",
        "Fabric: local (default)",
        "Fabric: default/cluster",
    ],
}
# Fabrics a notebook uses besides the local one: a second local gateway stands in for a cluster.
CLUSTER_FABRICS = {"across_fabrics.ipynb": "cluster"}


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells), path.name


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_the_local_fabric(path, data_dir, tmp_path, request):
    if path.name in CLUSTER_FABRICS:
        gateway = request.getfixturevalue("gateway")
        open_services(data_dir, gateway.url, gateway.token, name=CLUSTER_FABRICS[path.name]).close()
    executed = tmp_path / path.name
    result = subprocess.run(
        [JUPYTER, "prophecy", "run", str(path), "--output", str(executed)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"All cells of {path.name} ran." in result.stdout
    for text in EXPECTED.get(path.name, []):
        assert text in result.stdout
    cells = json.loads(executed.read_text())["cells"]
    assert not any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", []))
