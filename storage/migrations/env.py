"""Alembic environment: migrations run on the connection Seen hands in, or on sqlalchemy.url."""

from alembic import context
from sqlalchemy import create_engine

import storage.models  # noqa: F401  (registers every table on the metadata)
from sqlmodel import SQLModel

target_metadata = SQLModel.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            _run_on(connection)
    else:
        _run_on(connection)


def _run_on(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
