"""Alembic's entry point: migrations run online, against the app's database."""

from alembic import context
from sqlalchemy import create_engine

from app import database_url


def run_migrations():
    engine = create_engine(database_url())
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
