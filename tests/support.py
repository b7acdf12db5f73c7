"""Shared test helpers: database URLs for both engines, and the store a test's app runs on."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, make_url, text

from storage.store import Store

PG_URL = os.environ.get("SEEN_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SERVER_KEY = b"k" * 32

_current: Store | None = None


def set_current_test_store(store: Store | None) -> None:
    global _current
    _current = store


def current_test_store() -> Store:
    assert _current is not None, "the test did not prepare a store (use the `user` or `app_store` fixture)"
    return _current


def unavailable(reason: str) -> NoReturn:
    """Skips a test whose real part (PostgreSQL, chromium) is missing, with the reason; under CI
    (SEEN_REQUIRE_ALL=1, set by .ci/run) fails it instead, so a green CI always ran every test."""
    if os.environ.get("SEEN_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason}; CI runs every test (SEEN_REQUIRE_ALL=1), so this is a failure, not a skip")
    pytest.skip(reason)


def postgres_reachable() -> str | None:
    """None if PostgreSQL answers, else the reason it does not."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means: skip with the reason
        return f"PostgreSQL is not reachable at {PG_URL}: {e.__class__.__name__}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards: a clean PostgreSQL per test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def database_url(name: str) -> str:
    """The test PostgreSQL's URL, for the database `name` on the same server."""
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A database of its own on the test PostgreSQL, a copy of `template` if given (PostgreSQL copies the
    files: far quicker than writing the rows again), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield database_url(name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
