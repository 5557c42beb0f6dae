"""On a shared deployment, Livy sessions run as the person, not as the fabric's account: each
session and batch carries ``proxyUser`` (mapped per user when configured), and a notebook cannot
change it with ``%%configure``. Fabrics reached as the server's own identity (Livy kerberos, a
Databricks profile) are marked, and only the server's owner uses them unless allowed."""

from __future__ import annotations

import pytest

from prophecy_jupyter.errors import AccessDenied, Invalid
from prophecy_jupyter.services.fabrics import SharedIdentities
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.services.settings import ServiceSettings
from tests.conftest import livy_fabric

OWNER, ALICE, BOB = "olga", "alice", "bob"


@pytest.fixture
def services(data_dir):
    built = build_services(
        data_dir,
        settings=ServiceSettings(livy_proxy_user="always", livy_proxy_users={ALICE: "alice_etl"}),
        bootstrap_user=OWNER,
        shared_identities=SharedIdentities(OWNER, allowed=False),
    )
    for user in (ALICE, BOB):
        built.teams.set_member(OWNER, "default", user, "member")
    yield built
    built.close()


@pytest.mark.spark
def test_livy_sessions_run_as_their_user_whatever_the_notebook_says(services, gateway, livy):
    fabric = services.fabrics.create(OWNER, "default", livy_fabric(gateway.url))
    expected = {ALICE: "alice_etl", BOB: BOB}
    for user in expected:
        services.credentials.set(user, fabric, gateway.token)
        with pytest.raises(Invalid, match="proxyUser: not a session setting"):
            services.sessions.configure(user, "etl.ipynb", fabric.id, {"proxyUser": OWNER})
    try:
        for user, proxy_user in expected.items():
            managed = services.sessions.session(user, "etl.ipynb", fabric.id)
            remote = livy.get(f"{gateway.url}/sessions/{managed.remote.id}", timeout=10).json()
            assert remote["proxyUser"] == proxy_user
    finally:
        for user in expected:
            services.sessions.close(user, "etl.ipynb")


def test_a_fabric_of_the_servers_own_identity_is_marked_and_kept_to_its_owner(services):
    kerberos = services.fabrics.create(
        OWNER,
        "default",
        {"name": "krb", "kind": "livy", "settings": {"url": "https://livy.corp", "auth": "kerberos"}},
    )
    assert kerberos.to_json()["shared_identity"] is True
    assert services.fabrics.secret(OWNER, kerberos) is None, "the owner uses their own ticket"
    with pytest.raises(AccessDenied, match="server's own identity"):
        services.fabrics.secret(BOB, kerberos)
    with pytest.raises(AccessDenied, match="server's own identity"):
        services.sessions.session(BOB, "etl.ipynb", kerberos.id)
    bearer = services.fabrics.create(OWNER, "default", livy_fabric("https://livy.corp", name="own"))
    assert bearer.to_json()["shared_identity"] is False
