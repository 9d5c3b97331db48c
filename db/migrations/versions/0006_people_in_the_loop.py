"""people in the loop: review and orchestration modes, revision and batch links, the
task's current workflow, pause requests and the answer a run continues with

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: (column, index it) of the links between tasks.
_LINKS = ("parent_id", "revision_of", "batch_id")


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review", sa.String(length=16), nullable=False, server_default="NEVER")
        )
        batch_op.add_column(
            sa.Column(
                "orchestration_mode",
                sa.String(length=16),
                nullable=False,
                server_default="SEQUENTIAL",
            )
        )
        batch_op.add_column(sa.Column("workflow_id", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("pause_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("pending_answer", sa.JSON(), nullable=True))
        for name in _LINKS:
            batch_op.add_column(sa.Column(name, sa.String(length=32), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_task_{name}"), [name], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        for name in reversed(_LINKS):
            batch_op.drop_index(batch_op.f(f"ix_task_{name}"))
            batch_op.drop_column(name)
        for name in (
            "pending_answer",
            "pause_requested",
            "workflow_id",
            "orchestration_mode",
            "review",
        ):
            batch_op.drop_column(name)
