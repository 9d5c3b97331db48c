"""the outbox publisher's lease: which worker sends the broker outbox, until when

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    lease = op.create_table(
        "outbox_lease",
        sa.Column("name", _STR(length=32), nullable=False),
        sa.Column("holder", _STR(length=200), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(lease, [{"name": "outbox", "holder": None, "expires_at": 0.0}])


def downgrade() -> None:
    op.drop_table("outbox_lease")
