"""A team named after a hub group is the group's: a user outside the group can neither create it
first nor keep the admin role of one they made before the group existed, and its members come from
the group alone (against a stand-in hub that answers JupyterHub's users and groups API)."""

from __future__ import annotations

import pytest

from prophecy_jupyter.errors import Conflict, NotFound
from prophecy_jupyter.services.hub import HubGroups
from prophecy_jupyter.services.runtime import build_services
from tests.test_hub_teams import HUB_TOKEN, USERS, hub_url  # noqa: F401 (a fixture)

LIVY = {"name": "warehouse", "kind": "livy", "settings": {"url": "https://livy.example.com"}}


@pytest.fixture
def services(data_dir, hub_url):  # noqa: F811
    USERS["mallory"] = {"name": "mallory", "admin": False, "groups": []}
    built = build_services(data_dir, groups=HubGroups(hub_url, HUB_TOKEN), bootstrap_user="carol")
    yield built
    built.close()
    del USERS["mallory"]
    USERS["alice"]["groups"] = ["analysts", "not a valid team name!"]


def test_nobody_outside_a_hub_group_can_take_its_team(services):
    with pytest.raises(Conflict, match="hub group"):
        services.teams.create("mallory", "analysts")
    assert "analysts" not in services.teams.roles("mallory")

    # mallory made team 'data-eng' before the hub had such a group, then the hub admins create it
    services.teams.create("mallory", "data-eng")
    services.teams.set_member("mallory", "data-eng", "bob", "member")
    USERS["alice"]["groups"] = ["analysts", "data-eng"]
    fresh = build_services(services.directory, groups=HubGroups(services.teams.groups.api_url, HUB_TOKEN))
    try:
        assert fresh.teams.roles("alice")["data-eng"] == "member"
        assert "data-eng" not in fresh.teams.roles("mallory"), "the squatter is no longer in it"
        assert "data-eng" not in fresh.teams.roles("bob"), "nor whom she added"
        with pytest.raises(NotFound):
            fresh.fabrics.create("mallory", "data-eng", LIVY)
        with pytest.raises(NotFound):
            fresh.teams.set_member("mallory", "data-eng", "mallory", "admin")
        with pytest.raises(Conflict, match="hub group"):
            fresh.teams.set_member("carol", "analysts", "mallory", "member")
    finally:
        fresh.close()
