"""one head again: returns (0008_returns), sync in the field (0008_field) and the child's voice (0008_voice), each
branched from 0007_clocks2, joined so a plain `alembic upgrade head` works too

Revision ID: 0009_one_head
Revises: 0008_returns, 0008_field, 0008_voice
"""

revision = "0009_one_head"
down_revision = ("0008_returns", "0008_field", "0008_voice")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
