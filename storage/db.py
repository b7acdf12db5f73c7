"""Database set-up: the engine for SQLite (WAL) or PostgreSQL (psycopg 3), and migrations."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from storage import audit
from storage.config import settings

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accepts postgres:// and postgresql:// URLs and makes them use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str | None = None) -> Engine:
    url = normalise_url(url or settings().url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None hands transaction control to the "begin" hook below (SQLAlchemy's recipe).
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL syncs at checkpoints, not at every commit: a committed save survives a crash
            # of the app (or of Python, or a kill), which is what a worker's typed visit needs; a power cut or
            # an OS crash may lose the last commits before the next checkpoint, never corrupt the database.
            # FULL would add an fsync to every commit (0.3 ms on the benchmark machine's disk, more on a laptop).
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            # One writer at a time from the start of the transaction: a transaction that read the audit
            # chain's head, or a draft, can never be overtaken before it writes.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection idle longer than this is checked before use. SQLAlchemy's `pool_pre_ping`
# checked every checkout: a round trip a transaction, which was a tenth of a small sync's database work. A
# connection in steady use is known good; one idle a while may have been dropped (a database restart, a
# firewall's idle timeout). A connection that fails anyway is replaced, with the whole pool, when it errs.
IDLE_PING_SECONDS = 30.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            # Straight through libpq: no transaction is begun, so the connection is left as it was.
            alive = dbapi_connection.pgconn.exec_(b"SELECT 1").status == psycopg.pq.ExecStatus.TUPLES_OK
        except psycopg.Error:
            alive = False
        if not alive:
            raise exc.DisconnectionError("a pooled connection was dropped while idle")  # the pool opens another


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # configparser treats % as interpolation: a URL with percent-escapes must be doubled.
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Upgrades the schema to `revision` (every branch head by default), keeping every row.

    Subsystems add their tables on branches of their own from the first revision, so they can land in
    any order; "heads" brings every branch up to date.
    """
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises.

    Refusals (`audit.Refusal`) met in the transaction are always recorded in the audit trail: with the
    transaction when it commits, or, when it rolls back, in a transaction of their own afterwards, so
    what a worker was refused is kept even though nothing else is.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            for refusal in session.info.pop("refusals", []):
                audit.record_refusal(session, refusal)
            session.commit()
        except BaseException as e:
            session.rollback()
            refusals = session.info.pop("refusals", [])
            if isinstance(e, audit.Refusal) and not any(r is e for r in refusals):
                refusals.append(e)
            refusals = [r for r in refusals if r.event is not None]
            if refusals:
                with Session(engine) as record:
                    for refusal in refusals:
                        audit.record_refusal(record, refusal)
                    record.commit()
            raise


class BackupRefused(Exception):
    """`seen backup` cannot make this copy; the message says why. Nothing was written."""


def backup_sqlite(url: str, target: Path) -> int:
    """Copies a SQLite store into `target`, a new file, while Seen may be running, and checks the copy.

    SQLite's own online backup (page by page, under its locks, WAL included) gives a consistent copy; copying
    the file itself while Seen writes could catch a half-written page or miss the WAL. Returns the copy's
    size in bytes. PostgreSQL is backed up with its own tools (pg_dump), and an existing file is never
    overwritten: both are refused, writing nothing.
    """
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        raise BackupRefused("This store is on PostgreSQL: back it up with PostgreSQL's own tools, e.g. "
                            "`pg_dump --format=custom seen > seen.dump` (and test a restore).")
    source_path = Path(url.split("///", 1)[-1])
    if not source_path.exists():
        raise BackupRefused(f"There is no Seen store at {source_path}.")
    if target.exists():
        raise BackupRefused(f"{target} already exists: a backup never overwrites a file. Choose a new name.")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(source_path, timeout=30)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            copy.close()
    finally:
        source.close()
    if verdict != "ok":
        target.unlink()
        raise BackupRefused(f"The copy did not check out ({verdict}), so it was removed. Nothing was kept.")
    return target.stat().st_size

