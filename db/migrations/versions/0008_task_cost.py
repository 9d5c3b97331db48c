"""task cost: the USD the task's LLM calls cost (`task.cost_usd`), as each call was priced

A task stored before: 0 when it made no LLM call, otherwise NULL (its calls were not
priced, so their cost is unknown).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
    op.execute("UPDATE task SET cost_usd = 0 WHERE llm_calls = 0")


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("cost_usd")
