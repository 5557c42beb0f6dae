"""Fabrics and projects get UUIDs as the ids everyone sees (an id is never used twice); credentials
get the endpoint they were given for.

Credentials stored before keep their old scope and no endpoint until the services bind them to
their fabric's or project's endpoint (that re-seals them, so it needs the vault key; see
``CredentialService.bind_unbound``). Sessions recorded with an old fabric id get the new one.

Revision ID: 0003
Revises: 0002
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("fabrics", "projects"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("uid", sa.String(length=32), nullable=True))
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("endpoint", sa.String(length=1024), nullable=True))
    connection = op.get_bind()
    for table in ("fabrics", "projects"):
        for (row_id,) in connection.execute(sa.text(f"SELECT id FROM {table}")).all():
            uid = uuid.uuid4().hex
            connection.execute(
                sa.text(f"UPDATE {table} SET uid = :uid WHERE id = :id"), {"uid": uid, "id": row_id}
            )
            if table == "fabrics":
                connection.execute(
                    sa.text("UPDATE sessions SET fabric = :uid WHERE fabric = :id"),
                    {"uid": uid, "id": str(row_id)},
                )
    for table in ("fabrics", "projects"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("uid", existing_type=sa.String(length=32), nullable=False)
            batch.create_unique_constraint(f"uq_{table}_uid", ["uid"])


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("endpoint")
    for table in ("fabrics", "projects"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_uid", type_="unique")
            batch.drop_column("uid")
