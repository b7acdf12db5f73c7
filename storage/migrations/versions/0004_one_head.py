"""one head again: the push and sync branches joined, so a plain `alembic upgrade head` works too

Revision ID: 0004_one_head
Revises: 0002_push, 0003_audit_origin
"""

revision = "0004_one_head"
down_revision = ("0002_push", "0003_audit_origin")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
