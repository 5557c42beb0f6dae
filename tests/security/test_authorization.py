"""Every endpoint asks the deployment's Authorizer: one that refuses all of our resources gets a 403
from each of them, before anything is read or changed."""

from __future__ import annotations

import pytest
from jupyter_server.auth.authorizer import Authorizer

from prophecy_jupyter.client.link import API_PREFIX
from tests.test_server_api import ENDPOINTS

pytest_plugins = ("pytest_jupyter.jupyter_server",)


class RefuseProphecy(Authorizer):
    """Allows Jupyter's own resources, refuses every ``prophecy:*`` one (and records the asks)."""

    asked: list[tuple[str, str]] = []

    def is_authorized(self, handler, user, action, resource) -> bool:
        if resource.startswith("prophecy"):
            self.asked.append((action, resource))
            return False
        return True


@pytest.fixture
def jp_server_config(data_dir):
    return {
        "ServerApp": {"jpserver_extensions": {"prophecy_jupyter": True}, "authorizer_class": RefuseProphecy},
        "ProphecyJupyter": {"data_dir": str(data_dir)},
    }


@pytest.mark.parametrize("path,method", ENDPOINTS, ids=[f"{m} {p}" for p, m in ENDPOINTS])
async def test_a_refusing_authorizer_is_obeyed_by_every_endpoint(jp_fetch, path, method):
    RefuseProphecy.asked.clear()
    body = "{}" if method in ("POST", "PUT", "PATCH") else None
    response = await jp_fetch(
        API_PREFIX.lstrip("/"), path.lstrip("/"), method=method, body=body, raise_error=False
    )
    assert response.code == 403, response.body
    (action, resource), *_ = RefuseProphecy.asked
    expected = {"GET": "read"}.get(method, ("write", "execute"))
    assert action in expected and resource.startswith("prophecy")
