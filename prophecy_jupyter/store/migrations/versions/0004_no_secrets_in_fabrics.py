"""Fabrics hold no secrets: headers and Spark settings that carry a credential are removed from
stored fabrics (each member sets their own credential instead), and Livy fabrics that already
used plain http to another machine say so explicitly (``allow_http``) rather than stop working.

Revision ID: 0004
Revises: 0003
"""

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
_LOOPBACK = ("http://127.0.0.1", "http://localhost", "http://[::1]")
# As the fabric settings' validation has them at this revision (a migration keeps its own copy).
_CREDENTIAL_HEADER = re.compile(
    r"^(authorization|proxy-authorization|cookie)$|token|secret|passw|api-?key|auth", re.I
)
_CREDENTIAL_CONF = re.compile(
    r"passw|secret|token|credential|api[._-]?key|access[._-]?key|account\.key|private[._-]?key", re.I
)


def credential_headers(headers: dict) -> list[str]:
    return [name for name in headers if _CREDENTIAL_HEADER.search(name)]


def credential_conf(conf: dict) -> list[str]:
    return [key for key in conf if _CREDENTIAL_CONF.search(key)]


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else (value or {})


def upgrade() -> None:
    connection = op.get_bind()
    fabrics = connection.execute(sa.text("SELECT id, kind = 'livy', settings, conf FROM fabrics")).all()
    for row_id, is_livy, settings_value, conf_value in fabrics:
        settings, conf = _loaded(settings_value), _loaded(conf_value)
        headers = dict(settings.get("headers") or {})
        for name in credential_headers(headers):
            del headers[name]
        if headers != (settings.get("headers") or {}):
            settings["headers"] = headers
        url = str(settings.get("url") or "")
        if is_livy and url.startswith("http://") and not url.startswith(_LOOPBACK):
            settings["allow_http"] = True
        conf = {k: v for k, v in conf.items() if k not in credential_conf(conf)}
        connection.execute(
            sa.text("UPDATE fabrics SET settings = :settings, conf = :conf WHERE id = :id"),
            {"settings": json.dumps(settings), "conf": json.dumps(conf), "id": row_id},
        )
    sizes = connection.execute(sa.text("SELECT fabric_id, name, settings FROM job_sizes")).all()
    for fabric_id, name, settings_value in sizes:
        settings = _loaded(settings_value)
        conf = settings.get("conf")
        if isinstance(conf, dict) and credential_conf(conf):
            settings["conf"] = {k: v for k, v in conf.items() if k not in credential_conf(conf)}
            connection.execute(
                sa.text(
                    "UPDATE job_sizes SET settings = :settings WHERE fabric_id = :fabric AND name = :name"
                ),
                {"settings": json.dumps(settings), "fabric": fabric_id, "name": name},
            )


def downgrade() -> None:
    """Removed secrets are gone for good."""
