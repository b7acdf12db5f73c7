"""clocks2: care leavers and plan visit frequencies on the child, a health assessment's under-five flag, and
missing episodes (timescales part two)

Revision ID: 0007_clocks2
Revises: 0006_capture
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0007_clocks2"
down_revision = "0006_capture"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.add_column(sa.Column("care_leaver_since", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("plan_visit_every", sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=""))
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.add_column(sa.Column("under_five", sa.Boolean(), nullable=True))
    op.create_table(
        "missing_episode",
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("field_clocks", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("child_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column("interview_offered_on", sa.Date(), nullable=True),
        sa.Column("interview_held_on", sa.Date(), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["child.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("missing_episode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_missing_episode_child_id"), ["child_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("missing_episode", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_missing_episode_child_id"))
    op.drop_table("missing_episode")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ has it): a batch copy of `child` would drop the table that
    # every record's foreign key points at, which SQLite refuses.
    op.drop_column("review", "under_five")
    op.drop_column("child", "plan_visit_every")
    op.drop_column("child", "care_leaver_since")
