"""Alembic environment: runs on the connection `db.migrate` hands over."""

from alembic import context
from sqlmodel import SQLModel

import db.messages
import db.models  # noqa: F401

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through db.migrate.upgrade_to_head(engine)")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
