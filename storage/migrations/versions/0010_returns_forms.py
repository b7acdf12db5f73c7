"""returns forms: a review and a placement recorded from the child's page carry their form's submission key, so a
form sent twice is held once (storage/submissions.py)

Revision ID: 0010_returns_forms
Revises: 0009_one_head
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0010_returns_forms"
down_revision = "0009_one_head"
branch_labels = None
depends_on = None

TABLES = ("review", "placement")


def upgrade() -> None:
    for table in TABLES:
        # A unique index, not a constraint, as 0006_capture: NULLs (imported records) never collide.
        op.add_column(table, sa.Column("submission_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        op.create_index(f"ix_{table}_submission_key", table, ["submission_key"], unique=True)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_submission_key", table_name=table)
        # Plain DROP COLUMN, as 0007 does: a batch copy would drop tables others' foreign keys point at.
        op.drop_column(table, "submission_key")
