"""The wheel carries the labextension prebuilt: installed into a fresh venv where there is no
node, JupyterLab lists it enabled and the server extension is enabled and loads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]


def tracked_source(destination: Path) -> Path:
    """The project as committed (no build output, no node_modules), as a clean clone has it."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source, target = ROOT / name.decode(), destination / name.decode()
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def test_the_wheel_installs_a_prebuilt_enabled_extension(tmp_path):
    source = tracked_source(tmp_path / "source")
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = dist.glob("prophecy_jupyter-*.whl")

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    bin_dir = fresh / "bin"
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path / "home"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    assert shutil.which("node", path=env["PATH"]) is None, "the fresh venv must not see node"
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    def listing(*command: str) -> str:
        answer = subprocess.run(
            [str(bin_dir / "jupyter"), *command], capture_output=True, text=True, timeout=300, env=env
        )
        assert answer.returncode == 0, answer.stdout + answer.stderr
        return re.sub(r"\x1b\[[0-9;]*m", "", answer.stdout + answer.stderr)  # without colours

    labextensions = listing("labextension", "list")
    line = next(line for line in labextensions.splitlines() if "prophecy-jupyter" in line)
    assert "enabled OK (python, prophecy-jupyter)" in line, line
    server_extensions = listing("server", "extension", "list")
    assert "prophecy_jupyter enabled" in server_extensions, server_extensions
    assert "prophecy_jupyter 0.1.0 OK" in server_extensions, server_extensions
    # kernels take their API token out of the environment as Python starts (a .pth file)
    [site_packages] = fresh.glob("lib/python3*/site-packages")
    assert "kernel_token" in (site_packages / "prophecy_jupyter_kernel_token.pth").read_text()
    shipped = fresh / "share/jupyter/labextensions/prophecy-jupyter"
    assert (shipped / "package.json").is_file() and list((shipped / "static").glob("remoteEntry.*.js"))
    assert not (shipped / "static").joinpath("style.js").is_symlink()
