"""voice: the child's own statements made in child mode, safeguarding flags ("I don't feel safe"), and the
language the child chose, on the child

Revision ID: 0008_voice
Revises: 0007_clocks2
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0008_voice"
down_revision = "0007_clocks2"
branch_labels = None
depends_on = None


def _common(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("child_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        *columns,
        sa.Column("submission_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["child.id"]),
        sa.ForeignKeyConstraint(["worker_id"], ["worker.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(f"ix_{name}_child_id", name, ["child_id"])
    op.create_index(f"ix_{name}_submission_key", name, ["submission_key"], unique=True)


def upgrade() -> None:
    op.add_column("child", sa.Column("voice_language", sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                     server_default=""))
    _common(
        "child_statement",
        sa.Column("made_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("unsafe", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("acknowledged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    _common(
        "safeguarding_flag",
        sa.Column("raised_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("cleared_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("cleared_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.create_index("ix_safeguarding_flag_cleared_at", "safeguarding_flag", ["cleared_at"])


def downgrade() -> None:
    op.drop_index("ix_safeguarding_flag_cleared_at", table_name="safeguarding_flag")
    for name in ("safeguarding_flag", "child_statement"):
        op.drop_index(f"ix_{name}_submission_key", table_name=name)
        op.drop_index(f"ix_{name}_child_id", table_name=name)
        op.drop_table(name)
    op.drop_column("child", "voice_language")
