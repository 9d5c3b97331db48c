"""approval: whether the final post was approved, and its open issues

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("open_issues", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.create_index(batch_op.f("ix_task_approved"), ["approved"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_approved"))
        batch_op.drop_column("open_issues")
        batch_op.drop_column("approved")
