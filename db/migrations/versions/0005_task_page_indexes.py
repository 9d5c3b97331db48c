"""task page indexes: (status, created_at, id) and (owner, created_at, id)

A page of `tasks(status:)`, or of a non-admin's tasks, newest first, walks one of these
in page order instead of sorting every matching task.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_status_created_at_id", ["status", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_task_owner_created_at_id", ["owner", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_owner_created_at_id")
        batch_op.drop_index("ix_task_status_created_at_id")
