"""Many rows in one statement: inserted in bulk, or read up to a size in bytes (photos are big)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import func, insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from storage.hot import psycopg_connection
from storage.models import ChangeLog, Outbox


def insert_rows(session: Session, table: Any, names: list[str], rows: list[tuple[Any, ...]], *,
                upsert: str | None = None, returning: str | None = None) -> list[Any] | None:
    """Inserts rows in the caller's transaction, in order: on PostgreSQL with one multi-row insert a
    thousand rows, through psycopg (SQLAlchemy's per-row work would double it), elsewhere with SQLAlchemy.
    With `upsert` (the primary key's column), a row already there takes the new values. With
    `returning` (a column), returns that column of the rows inserted, on PostgreSQL; else None."""
    if not rows:
        return None
    if session.get_bind().dialect.name != "postgresql":
        statement: Any = insert(table)
        if upsert:
            statement = sqlite_insert(table)
            statement = statement.on_conflict_do_update(
                index_elements=[upsert], set_={n: statement.excluded[n] for n in names if n != upsert})
        session.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return None
    columns = ", ".join(f'"{n}"' for n in names)
    moments = [i for i, n in enumerate(names) if isinstance(table.c[n].type, UTCDateTime)]
    conflict = ""
    if upsert:
        conflict = f' ON CONFLICT ("{upsert}") DO UPDATE SET ' + ", ".join(
            f'"{n}" = excluded."{n}"' for n in names if n != upsert)
    suffix = f' RETURNING "{returning}"' if returning else ""
    returned: list[Any] = []
    raw = psycopg_connection(session)
    per_statement = max(1, min(1000, 30000 // len(names)))
    width = len(names)
    values = [v for row in rows for v in row]
    # Each date and time as the column's type binds it, replaced in the flat list of values: rebuilding every
    # row around its one or two dates cost as much as the rest of this (a push's 2,000 rows, ~1.5 ms a batch).
    for i in moments:
        values[i::width] = [_moment(v) for v in values[i::width]]
    try:
        # One multi-row VALUES a chunk (rows keep their order, and serial numbers follow it), with
        # PostgreSQL's own $n placeholders: a raw cursor does not parse the long statement in Python.
        with psycopg.RawCursor(raw) as cursor:
            for start in range(0, len(rows), per_statement):
                chunk = min(per_statement, len(rows) - start)
                marks = _marks(chunk, width)
                statement = f'INSERT INTO "{table.name}" ({columns}) VALUES {marks}{conflict}{suffix}'  # noqa: S608
                cursor.execute(statement, values[start * width:(start + chunk) * width])
                if returning:
                    returned += [r[0] for r in cursor.fetchall()]
    except psycopg.Error as e:
        raise DBAPIError.instance(f'INSERT INTO "{table.name}"', None, e, psycopg.Error) from e
    return returned if returning else None


@functools.lru_cache(maxsize=64)
def _marks(rows: int, width: int) -> str:
    """`($1, $2), ($3, $4)` for 2 rows of 2 columns: made once a shape (a push's batches have a few shapes,
    and building the 5,500 placeholders of 500 audit events cost ~1 ms a batch)."""
    return ", ".join("(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(rows))


def _moment(value: datetime | None) -> datetime | None:
    # As the column's SQLAlchemy type binds it: UTCDateTime takes only aware datetimes, kept in UTC.
    if value is None:
        return None
    if value.tzinfo is UTC:  # most are (utcnow): astimezone(UTC) would give the value itself
        return value
    if value.utcoffset() is None:
        raise ValueError("A date and time in this batch has no time zone.")
    return value.astimezone(UTC)


def within_bytes(model: type[Outbox] | type[ChangeLog], condition: Any, limit: int, max_bytes: int) -> Any:
    """The rows of `model` (the outbox or the change log) meeting `condition`, in `seq` order: at most `limit`,
    and none after their sealed contents reach `max_bytes` (the first is taken however big it is).

    The sizes are summed in the database, so rows left for the next message are not read.
    """
    seq, size = col(model.seq), func.length(col(model.sealed))
    first = select(seq.label("seq"), size.label("size")).where(condition).order_by(seq).limit(limit).subquery()
    before = (func.sum(first.c.size).over(order_by=first.c.seq) - first.c.size).label("before")
    sized = select(first.c.seq, before).subquery()
    return (select(model).join(sized, sized.c.seq == seq).where(sized.c.before < max_bytes).order_by(seq))
