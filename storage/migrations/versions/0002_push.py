"""push delivery queue

Revision ID: 0002_push
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0002_push"
down_revision = "0001"
branch_labels = ("push",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_delivery",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subscription_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("given_up_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("push_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_delivery_subscription_id"), ["subscription_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_push_delivery_worker_id"), ["worker_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_push_delivery_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_push_delivery_delivered_at"), ["delivered_at"], unique=False)


def downgrade() -> None:
    op.drop_table("push_delivery")
