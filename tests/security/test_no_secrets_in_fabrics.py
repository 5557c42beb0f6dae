"""Fabric settings are stored in clear and shown to every member of the team, so they hold no
secrets: headers and Spark settings that carry a credential are refused with a message pointing to
the per-user credential, and a sparkmagic config's Authorization header becomes the importing
user's own credential. Plain http to another machine must be allowed explicitly."""

from __future__ import annotations

import json

import pytest

from prophecy_jupyter.errors import Invalid
from prophecy_jupyter.services.runtime import build_services
from prophecy_jupyter.services.sparkmagic_import import import_sparkmagic

ADMIN, MEMBER = "olga", "bob"
LIVY = {"url": "https://livy.example.com", "auth": "none"}


@pytest.fixture
def services(data_dir):
    built = build_services(data_dir, bootstrap_user=ADMIN)
    built.teams.set_member(ADMIN, "default", MEMBER, "member")
    yield built
    built.close()


@pytest.mark.parametrize(
    "change,field",
    [
        ({"settings": {**LIVY, "headers": {"Authorization": "Bearer team-token-1"}}}, "settings.headers"),
        ({"settings": {**LIVY, "headers": {"X-Api-Token": "team-token-1"}}}, "settings.headers"),
        ({"settings": {**LIVY, "headers": {"Cookie": "session=team-token-1"}}}, "settings.headers"),
        ({"conf": {"spark.hadoop.fs.s3a.secret.key": "team-token-1"}}, "conf"),
        ({"conf": {"spark.ssl.keyPassword": "team-token-1"}}, "conf"),
        (
            {"job_sizes": {"M": {"conf": {"spark.hadoop.fs.azure.account.key.acct": "team-token-1"}}}},
            "job_sizes",
        ),
    ],
)
def test_secrets_in_a_fabric_are_refused(services, change, field):
    spec = {"name": "etl", "kind": "livy", "settings": LIVY, **change}
    with pytest.raises(Invalid, match="credentials set") as refused:
        services.fabrics.create(ADMIN, "default", spec)
    assert refused.value.field == field and "team-token-1" not in str(refused.value)
    fabric = services.fabrics.create(ADMIN, "default", {"name": "etl", "kind": "livy", "settings": LIVY})
    with pytest.raises(Invalid, match="credentials set"):
        services.fabrics.update(ADMIN, fabric.id, change)
    assert "team-token-1" not in json.dumps([f.to_json() for f in services.fabrics.list(MEMBER)])


def test_plain_http_to_another_machine_is_allowed_only_explicitly(services):
    http = {"url": "http://livy.internal:8998", "auth": "bearer"}
    with pytest.raises(Invalid, match="plain http"):
        services.fabrics.create(ADMIN, "default", {"name": "a", "kind": "livy", "settings": http})
    allowed = services.fabrics.create(
        ADMIN, "default", {"name": "a", "kind": "livy", "settings": {**http, "allow_http": True}}
    )
    assert allowed.settings["allow_http"] is True
    local = {"url": "http://127.0.0.1:8998", "auth": "bearer"}
    assert services.fabrics.create(ADMIN, "default", {"name": "b", "kind": "livy", "settings": local})


def test_a_sparkmagic_authorization_header_becomes_the_importers_own_credential(services):
    config = {
        "kernel_python_credentials": {"url": "https://livy.corp:8998", "auth": "None"},
        "custom_headers": {"Authorization": "Bearer sm-team-token-42", "X-Requested-By": "sparkmagic"},
        "session_configs": {"conf": {"spark.hadoop.fs.s3a.access.key": "AKIA-sm-key", "spark.x": "1"}},
    }
    report = import_sparkmagic(config, services.fabrics, ADMIN, "default")
    (ref,) = report.created
    fabric = services.fabrics.get(ADMIN, ref)
    assert fabric.settings["auth"] == "bearer" and fabric.settings["headers"] == {
        "X-Requested-By": "sparkmagic"
    }
    assert fabric.conf == {"spark.x": "1"}
    assert services.fabrics.secret(ADMIN, fabric) == "sm-team-token-42"
    assert not services.credentials.status(MEMBER, fabric).set, "the member brings their own"
    shown = json.dumps([f.to_json() for f in services.fabrics.list(MEMBER)])
    assert "sm-team-token-42" not in shown and "AKIA-sm-key" not in shown
    assert any("Authorization" in note for note in report.notes)
    assert any("access.key" in note for note in report.notes)
