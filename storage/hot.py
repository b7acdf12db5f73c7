"""Statements on the hot path of every sync request and save, sent straight to psycopg on PostgreSQL.

A Core statement run through SQLAlchemy costs ~130 µs of CPU on the benchmark machine, the same statement
sent to psycopg ~20 µs: for a device's small sync (a dozen statements) that difference was most of the
server's work. `Hot` compiles a Core statement for PostgreSQL once and sends it on the session's own
connection, inside its transaction; on SQLite it runs as the Core statement it is.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from sqlalchemy import ARRAY, String, any_, bindparam
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

_POSTGRESQL = psycopg_dialect()
TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


class Hot:
    """A statement compiled once for psycopg. `postgresql`, when given, is the form to compile for PostgreSQL
    (an array parameter, `= ANY(...)`, where the Core statement has an IN list of one parameter per value)."""

    def __init__(self, core: Any, postgresql: Any = None) -> None:
        self.core = core
        compiled = (postgresql if postgresql is not None else core).compile(dialect=_POSTGRESQL)
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)  # values the statement holds itself (a LIMIT 1, say)
        self.text_arrays = frozenset(_TEXT_ARRAY.findall(self.sql))  # parameters cast to VARCHAR[] (lists of ids)

    def rows(self, session: Session, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The statement's rows (none for a statement that returns none), in the session's transaction.

        Pending ORM changes are not flushed first, as `session.execute` would: callers run these where
        nothing they read is pending.
        """
        if session.get_bind().dialect.name != "postgresql":
            result = session.execute(self.core, params or {})
            if not isinstance(result, CursorResult):  # what a Core statement gives; an ORM query would not
                raise TypeError(f"Hot runs Core statements, not {type(self.core).__name__}")
            return [tuple(row) for row in result] if result.returns_rows else []
        connection = psycopg_connection(session)
        params = {**self.defaults, **params} if params else self.defaults
        if self.text_arrays:
            params = {name: _array_text(value) if name in self.text_arrays else value for name, value in params.items()}
        try:
            with connection.cursor() as cursor:
                cursor.execute(self.sql, params)
                # Whether it returned rows, from the result's status: `cursor.description` would build a
                # Column object per column first (~110 µs for the caller's 40 columns).
                done = cursor.pgresult
                return cursor.fetchall() if done is not None and done.status == TUPLES_OK else []
        except psycopg.Error as e:
            raise DBAPIError.instance(self.sql, params, e, psycopg.Error) from e

    @classmethod
    def one_of(cls, query: Any, column: Any, name: str) -> Hot:
        """`query` for the rows whose `column` is one of the list parameter `name`: an IN list of one parameter a
        value where the Core statement runs (SQLite), one array parameter with `= ANY` on PostgreSQL."""
        return cls(query.where(column.in_(bindparam(name, expanding=True))),
                   query.where(column == any_(bindparam(name, type_=ARRAY(String)))))

    def value(self, session: Session, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        rows = self.rows(session, params)
        return rows[0][0] if rows else None


# A parameter the statement casts to an array of text: `= ANY (%(ids)s::VARCHAR[])`, the form of an IN list here.
_TEXT_ARRAY = re.compile(r"%\((\w+)\)s::VARCHAR\[\]")


def _array_text(value: Any) -> Any:
    """A list of strings as PostgreSQL's text for an array of them, each quoted (`{"a","b\\"c"}`), which the
    statement casts to VARCHAR[] as it would the list. psycopg writes a list one element at a time in Python
    (~1.5 us an id: the 500 change ids and 500 record ids of a push's batch, a pull's children). Anything else
    (None among the ids, say) is left for psycopg."""
    if not isinstance(value, list) or not all(type(item) is str for item in value):
        return value
    return "{" + ",".join(['"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in value]) + "}"


def psycopg_connection(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under the session's own, for statements sent inside its transaction."""
    connection = session.connection().connection.driver_connection
    if not isinstance(connection, psycopg.Connection):
        raise TypeError(f"expected a psycopg connection on PostgreSQL, got {type(connection).__name__}")
    return connection
