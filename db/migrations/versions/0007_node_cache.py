"""node cache: LangGraph's node cache on the app's database (the PaperResearcher's notes,
shared by the tasks of a batch about the same paper)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from db.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_cache",
        sa.Column("namespace", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("encoding", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("namespace", "key"),
    )
    with op.batch_alter_table("node_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_node_cache_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("node_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_node_cache_expires_at"))
    op.drop_table("node_cache")
