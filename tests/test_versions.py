"""The package, the labextension and the version the sidebar expects of the server agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import prophecy_jupyter

ROOT = Path(__file__).parents[1]


def test_the_frontend_and_the_server_are_one_version():
    package = json.loads((ROOT / "labextension/package.json").read_text())
    tokens = (ROOT / "labextension/src/tokens.ts").read_text()
    expected = re.search(r"FRONTEND_VERSION = '([^']+)'", tokens).group(1)
    assert package["version"] == expected == prophecy_jupyter.__version__
