"""audit events sent by devices: where each came from, held once

Revision ID: 0003_audit_origin
Revises: 0002_sync
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0003_audit_origin"
down_revision = "0002_sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_event_origin"), ["origin"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_origin"))
        batch_op.drop_column("origin")
