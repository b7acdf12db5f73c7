"""Many rows in one statement: inserted in bulk, or read up to a size in bytes (photos are big)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
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
    conflict = ""
    if upsert:
        conflict = f' ON CONFLICT ("{upsert}") DO UPDATE SET ' + ", ".join(
            f'"{n}" = excluded."{n}"' for n in names if n != upsert)
    suffix = f' RETURNING "{returning}"' if returning else ""
    returned: list[Any] = []
    raw = psycopg_connection(session)
    per_statement = max(1, min(1000, 30000 // len(names)))
    width = len(names)
    values = _flat(table, names, rows)
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


# Rows from which `copy_rows` copies: fewer go in one statement, a round trip (a COPY takes two).
COPY_FROM = 50


def copy_rows(session: Session, table: Any, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Inserts rows in the caller's transaction, in order (serial numbers follow it). On PostgreSQL, from
    `COPY_FROM` rows, with a binary COPY: no statement to parse, plan and bind, and each row written in C. For a
    laptop's batch of visits that took under half the CPU of a multi-row insert in Seen's process, and a third less
    in PostgreSQL's. Fewer rows, and elsewhere, as `insert_rows`. (No upsert and nothing returned: COPY has neither.)"""
    if session.get_bind().dialect.name != "postgresql" or len(rows) < COPY_FROM:
        insert_rows(session, table, names, rows)
        return
    raw = psycopg_connection(session)
    types = _column_types(raw, table.name, tuple(names))
    columns = ", ".join(f'"{n}"' for n in names)
    statement = f'COPY "{table.name}" ({columns}) FROM STDIN (FORMAT BINARY)'
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in _bound(table, names, rows):
                copy.write_row(row)
    except psycopg.Error as e:
        raise DBAPIError.instance(statement, None, e, psycopg.Error) from e


_COLUMN_TYPES: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}


def _column_types(raw: psycopg.Connection[Any], table: str, names: tuple[str, ...]) -> list[int]:
    """The types of a table's columns, as PostgreSQL holds them (a binary COPY must give each exactly), read once a
    database."""
    key = (raw.info.dbname, table, names)
    if key not in _COLUMN_TYPES:
        with raw.cursor() as cursor:
            cursor.execute("SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass "
                           "AND attnum > 0 AND NOT attisdropped", (f'"{table}"',))
            held = dict(cursor.fetchall())
        _COLUMN_TYPES[key] = [held[n] for n in names]
    return _COLUMN_TYPES[key]


# The most parameters one PostgreSQL statement takes.
MAX_PARAMETERS = 65535


def insert_rows_together(session: Session, inserts: list[tuple[Any, list[str], list[tuple[Any, ...]]]], *,
                         returning: str, update: tuple[str, str, str, str, Any]) -> list[Any]:
    """Several tables' rows, each as `insert_rows` inserts them, and one row's column updated, on PostgreSQL in
    one statement: a round trip instead of one a table (a push holds its lock for these). (table, names, rows)
    for each insert; the first's `returning` column is returned, in the order of its rows. `update` is (table,
    key column, key, column, value). Rows too many for one statement go one insert a table, as `insert_rows`."""
    table_name, key_column, key, column, value = update
    update_sql = f'UPDATE "{table_name}" SET "{column}" = ${{}} WHERE "{key_column}" = ${{}}'
    if sum(len(names) * len(rows) for _table, names, rows in inserts) + 2 > MAX_PARAMETERS or any(
            not rows for _table, _names, rows in inserts):
        returned = insert_rows(session, *inserts[0], returning=returning) or []
        for table, names, rows in inserts[1:]:
            insert_rows(session, table, names, rows)
        _execute(session, update_sql.format(1, 2), [value, key], returning=False)
        return returned
    parts: list[str] = []
    values: list[Any] = []
    for at, (table, names, rows) in enumerate(inserts):
        columns = ", ".join(f'"{n}"' for n in names)
        suffix = f' RETURNING "{returning}"' if at == 0 else ""
        marks = _marks(len(rows), len(names), len(values))
        parts.append(f'i{at} AS (INSERT INTO "{table.name}" ({columns}) VALUES {marks}{suffix})')
        values += _flat(table, names, rows)
    parts.append("u AS (" + update_sql.format(len(values) + 1, len(values) + 2) + ")")
    values += [value, key]
    statement = f'WITH {", ".join(parts)} SELECT "{returning}" FROM i0 ORDER BY "{returning}"'  # noqa: S608
    return [r[0] for r in _execute(session, statement, values, returning=True)]


def numbers_for(session: Session, table: Any, column: str, n: int, *,
                update: tuple[str, str, str, str, Any]) -> list[int]:
    """`n` new numbers from the serial `column` of `table` (PostgreSQL), in order, for rows `copy_rows` then
    inserts; and, in the same statement, one row's column updated (as `insert_rows_together` takes it).

    The numbers are drawn as one range, the sequence moved past them at once (drawing them one by one cost ~3 us
    each in PostgreSQL). The caller holds the lock every writer of the table holds, so no other number is drawn
    meanwhile; were one drawn, its row and one of these would meet on the table's key, and the insert fail whole,
    never a number held twice."""
    table_name, key_column, key, updated, value = update
    statement = (f'WITH u AS (UPDATE "{table_name}" SET "{updated}" = $1 WHERE "{key_column}" = $2) '  # noqa: S608
                 "SELECT setval(s, nextval(s) + $3::bigint - 1) FROM pg_get_serial_sequence($4, $5) AS s")
    last = _execute(session, statement, [value, key, n, table.name, column], returning=True)[0][0]
    return list(range(last - n + 1, last + 1))


def _flat(table: Any, names: list[str], rows: list[tuple[Any, ...]]) -> list[Any]:
    """The rows' values in one list, each date and time as the column's type binds it (replaced in the flat list:
    rebuilding every row around its one or two dates cost as much as the rest of an insert)."""
    width = len(names)
    values = [v for row in rows for v in row]
    for i, name in enumerate(names):
        if isinstance(table.c[name].type, UTCDateTime):
            values[i::width] = [_moment(v) for v in values[i::width]]
    return values


def _bound(table: Any, names: list[str], rows: list[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
    """The rows with each date and time as the column's type binds it: the rows themselves when every one is in UTC
    already (almost all are: they were made by `utcnow`, or parsed and checked), else made again from `_flat`."""
    for i, name in enumerate(names):
        if isinstance(table.c[name].type, UTCDateTime):
            for row in rows:
                value = row[i]
                if value is not None and value.tzinfo is not UTC:
                    return zip(*[iter(_flat(table, names, rows))] * len(names), strict=True)
    return rows


def _execute(session: Session, statement: str, values: list[Any], *, returning: bool) -> list[tuple[Any, ...]]:
    try:
        with psycopg.RawCursor(psycopg_connection(session)) as cursor:
            cursor.execute(statement, values)
            return cursor.fetchall() if returning else []
    except psycopg.Error as e:
        raise DBAPIError.instance(statement[:200], None, e, psycopg.Error) from e


@functools.lru_cache(maxsize=64)
def _marks(rows: int, width: int, start: int = 0) -> str:
    """`($1, $2), ($3, $4)` for 2 rows of 2 columns (from `$start + 1`): made once a shape (a push's batches have a
    few shapes, and building the 5,500 placeholders of 500 audit events cost ~1 ms a batch)."""
    return ", ".join("(" + ", ".join(f"${start + r * width + c + 1}" for c in range(width)) + ")"
                     for r in range(rows))


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
