"""What the attacks share: an in-process Jupyter server (pytest-jupyter) with the extension over the
test's own data dir (a module overrides ``jp_server_config`` to change it)."""

from __future__ import annotations

import pytest


@pytest.fixture
def jp_server_config(data_dir):
    return {
        "ServerApp": {"jpserver_extensions": {"prophecy_jupyter": True}},
        "ProphecyJupyter": {"data_dir": str(data_dir)},
    }
