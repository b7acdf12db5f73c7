"""returns: what the statutory returns (SSD, SSDA903, Annex A) need: periods of care, review participation and
CP review outcomes, placement provider, URN and reason for change, missing or absent and the interview accepted

Revision ID: 0008_returns
Revises: 0007_clocks2
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0008_returns"
down_revision = "0007_clocks2"
branch_labels = None
depends_on = None

TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("placement", schema=None) as batch_op:
        for name in ("provider_code", "urn", "change_reason"):
            batch_op.add_column(sa.Column(name, TEXT(), nullable=False, server_default=""))
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.add_column(sa.Column("participation", TEXT(), nullable=True))
        batch_op.add_column(sa.Column("cancelled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("plan_id", TEXT(), nullable=True))
        batch_op.add_column(sa.Column("quorate", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("plan_continues", sa.Boolean(), nullable=True))
    with op.batch_alter_table("missing_episode", schema=None) as batch_op:
        batch_op.add_column(sa.Column("absent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("interview_accepted", sa.Boolean(), nullable=True))
    op.create_table(
        "care_period",
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("field_clocks", TEXT(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("id", TEXT(), nullable=False),
        sa.Column("child_id", TEXT(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column("legal_status", TEXT(), nullable=False),
        sa.Column("primary_need", TEXT(), nullable=False),
        sa.Column("start_reason", TEXT(), nullable=False),
        sa.Column("end_reason", TEXT(), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["child.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("care_period", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_care_period_child_id"), ["child_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("care_period", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_period_child_id"))
    op.drop_table("care_period")
    # Plain DROP COLUMN, as 0007 does: a batch copy would drop tables others' foreign keys point at.
    for name in ("interview_accepted", "absent"):
        op.drop_column("missing_episode", name)
    for name in ("plan_continues", "quorate", "plan_id", "cancelled", "participation"):
        op.drop_column("review", name)
    for name in ("change_reason", "urn", "provider_code"):
        op.drop_column("placement", name)
