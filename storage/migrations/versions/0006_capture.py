"""capture: a submission key on each record a form makes (visit, wishes and feelings, life story, care plan
action), unique, and receipts for the submissions that change a record instead (sign-off, allocation)

Revision ID: 0006_capture
Revises: 0005_hardening
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0006_capture"
down_revision = "0005_hardening"
branch_labels = None
depends_on = None

KEYED_TABLES = ("visit", "wishes_and_feelings", "life_story_entry", "care_plan_action")


def upgrade() -> None:
    for table in KEYED_TABLES:
        # A unique index, not a constraint: SQLite adds it without rebuilding the table; NULLs (records made
        # before keys, or without a form) never collide on either engine.
        op.add_column(table, sa.Column("submission_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        op.create_index(f"ix_{table}_submission_key", table, ["submission_key"], unique=True)
    op.create_table(
        "submission_receipt",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("record_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["worker_id"], ["worker.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_submission_receipt_worker_id", "submission_receipt", ["worker_id"])


def downgrade() -> None:
    op.drop_index("ix_submission_receipt_worker_id", table_name="submission_receipt")
    op.drop_table("submission_receipt")
    for table in reversed(KEYED_TABLES):
        op.drop_index(f"ix_{table}_submission_key", table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("submission_key")
