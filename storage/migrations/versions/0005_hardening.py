"""hardening: when the server received an event a device sent (backdated events show), and failed sign-ins

Revision ID: 0005_hardening
Revises: 0004_one_head
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0005_hardening"
down_revision = "0004_one_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("locked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttle")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("received_at")
