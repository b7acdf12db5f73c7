"""field: what a device still holds (on the device row), allocation ends, late changes for a child who moved,
and conflicts' decisions (issue 19, sync in the field)

Revision ID: 0008_field
Revises: 0007_clocks2
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0008_field"
down_revision = "0007_clocks2"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy: other tables' foreign keys point at `device`).
    op.add_column("device", sa.Column("last_sync_at", _WHEN(), nullable=True))
    for name in ("waiting", "set_aside", "conflicts"):
        op.add_column("device", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    op.add_column("device", sa.Column("waiting_since", _WHEN(), nullable=True))
    op.add_column("conflict", sa.Column("decided_by", _TEXT(), nullable=True))
    op.add_column("conflict", sa.Column("kept", _TEXT(), nullable=False, server_default=""))
    op.create_table(
        "allocation_end",
        sa.Column("id", _TEXT(), nullable=False),
        sa.Column("child_id", _TEXT(), nullable=False),
        sa.Column("worker_id", _TEXT(), nullable=False),
        sa.Column("reason", _TEXT(), nullable=False),
        sa.Column("stamp", _TEXT(), nullable=False),
        sa.Column("ended_at", _WHEN(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_allocation_end_child_id", "allocation_end", ["child_id"])
    op.create_index("ix_allocation_end_worker_id", "allocation_end", ["worker_id"])
    op.create_table(
        "late_change",
        sa.Column("change_id", _TEXT(), nullable=False),
        sa.Column("child_id", _TEXT(), nullable=False),
        sa.Column("worker_id", _TEXT(), nullable=False),
        sa.Column("device_id", _TEXT(), nullable=False),
        sa.Column("kind", _TEXT(), nullable=False),
        sa.Column("record_id", _TEXT(), nullable=False),
        sa.Column("outcome", _TEXT(), nullable=False),
        sa.Column("reason", _TEXT(), nullable=False),
        sa.Column("arrived_at", _WHEN(), nullable=False),
        sa.Column("decided_at", _WHEN(), nullable=True),
        sa.Column("decided_by", _TEXT(), nullable=True),
        sa.Column("decision", _TEXT(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("change_id"),
    )
    op.create_index("ix_late_change_child_id", "late_change", ["child_id"])


def downgrade() -> None:
    op.drop_index("ix_late_change_child_id", "late_change")
    op.drop_table("late_change")
    op.drop_index("ix_allocation_end_worker_id", "allocation_end")
    op.drop_index("ix_allocation_end_child_id", "allocation_end")
    op.drop_table("allocation_end")
    for name in ("kept", "decided_by"):
        op.drop_column("conflict", name)
    for name in ("waiting_since", "conflicts", "set_aside", "waiting", "last_sync_at"):
        op.drop_column("device", name)
