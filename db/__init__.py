"""Persistence for PostAssist: SQLModel tables, the async engine, repository functions,
Alembic migrations and the event log (durable append + broadcast + follow).

`db` imports neither `agents` nor `graph`.
"""
