"""Alembic environment: runs against the engine handed over in `config.attributes`."""

from alembic import context
from sqlalchemy import text

from dutyline.store.tables import Base

# Replicas (and uvicorn workers) start together and each migrates: on PostgreSQL one waits for the other
# on this lock, then finds the schema current. Any fixed number; it differs from the policy-write lock.
_MIGRATION_LOCK = 0x6475_7479_6D69_6772  # "dutymigr"

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
