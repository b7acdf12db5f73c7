"""sync: the server's change log, record clocks and the conflict log

Revision ID: 0002_sync
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0002_sync"
down_revision = "0001"
branch_labels = ("sync",)
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "change_log",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("change_id", S(), nullable=False),
        sa.Column("batch_id", S(), nullable=False),
        sa.Column("device_id", S(), nullable=True),
        sa.Column("kind", S(), nullable=False),
        sa.Column("record_id", S(), nullable=False),
        sa.Column("child_id", S(), nullable=True),
        sa.Column("applied_at", T(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("change_id"),
    )
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_log_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_change_log_record_id"), ["record_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_change_log_child_id"), ["child_id"], unique=False)
    op.create_table(
        "sync_clock",
        sa.Column("record_id", S(), nullable=False),
        sa.Column("kind", S(), nullable=False),
        sa.Column("clock", S(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_table(
        "conflict",
        sa.Column("id", S(), nullable=False),
        sa.Column("kind", S(), nullable=False),
        sa.Column("record_id", S(), nullable=False),
        sa.Column("child_id", S(), nullable=True),
        sa.Column("field", S(), nullable=False),
        sa.Column("winner_clock", S(), nullable=False),
        sa.Column("loser_clock", S(), nullable=False),
        sa.Column("at", T(), nullable=False),
        sa.Column("resolved_at", T(), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conflict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conflict_record_id"), ["record_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conflict_child_id"), ["child_id"], unique=False)


def downgrade() -> None:
    op.drop_table("conflict")
    op.drop_table("sync_clock")
    op.drop_table("change_log")
