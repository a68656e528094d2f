"""Alembic environment: always runs on a connection handed over by streampilot.store.db."""

from alembic import context

from streampilot.store.orm import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
