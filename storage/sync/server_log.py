"""The server's change log: every applied change numbered, in commit order.

Pushes are applied one at a time (a PostgreSQL advisory lock, or SQLite's single writer), so a change is
committed before any with a higher number and a node that pulls by cursor never skips one. Writes made on
the server itself (the hosted app) join the log from its outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from storage import audit
from storage.hot import Hot
from storage.models import ChangeLog, MutableRecord, Outbox, RecordStamp, table_of
from storage.store import Store
from storage.sync.changes import MODEL_OF, child_id_of

SYNC_LOCK = 7431002  # PostgreSQL advisory lock: one push applied at a time, so seq order is commit order


def lock_log(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Keyed by schema too: several Seen databases may share one PostgreSQL without waiting on each other.
        session.execute(text(f"SELECT pg_advisory_xact_lock({SYNC_LOCK}, hashtext(current_schema()))"))


LOG_COLUMNS = ("change_id", "batch_id", "device_id", "kind", "record_id", "child_id", "applied_at", "sealed")


def log_row(store: Store, change: dict[str, Any], *, batch_id: str, device_id: str | None,
            child_id: str | None, at: datetime, encoded: bytes | None = None) -> tuple[Any, ...]:
    """A change-log row; `encoded` is the change as JSON already (as `seal_payload` would dump it), if known."""
    sealed = (store.sealer.seal_bytes("change_log", change["change_id"], encoded) if encoded is not None
              else store.seal_payload("change_log", change["change_id"], change))
    return (change["change_id"], batch_id, device_id, change["kind"], change["record_id"], child_id, at, sealed)


_CHANGE_ID = table_of(ChangeLog).c.change_id
LOGGED = Hot.one_of(select(_CHANGE_ID), _CHANGE_ID, "change_ids")


def _log(store: Store, session: Session, change: dict[str, Any], *, batch_id: str, device_id: str | None,
         child_id: str | None) -> None:
    entry = ChangeLog(change_id=change["change_id"], batch_id=batch_id, device_id=device_id, kind=change["kind"],
                      record_id=change["record_id"], child_id=child_id)
    entry.sealed = store.seal_payload("change_log", entry.change_id, change)
    session.add(entry)


def latest_in(session: Session) -> int:
    return int(_LATEST.value(session) or 0)


_LATEST = Hot(select(func.max(table_of(ChangeLog).c.seq)))


def absorb_local_changes(store: Store) -> int:
    """Moves changes written on the server itself (the hosted app) from its outbox into the change log."""
    with store.session() as session:
        if session.exec(select(Outbox.seq).limit(1)).first() is None:
            return 0
        lock_log(session)
        entries = list(session.exec(select(Outbox).order_by(col(Outbox.seq)).limit(1000)))
        for entry in entries:
            change = {"change_id": entry.change_id, **store.open_payload("outbox", entry.change_id, entry.sealed)}
            if session.exec(select(ChangeLog.seq).where(ChangeLog.change_id == entry.change_id)).first() is None:
                if change["kind"] in MODEL_OF and not issubclass(MODEL_OF[change["kind"]], MutableRecord):
                    session.merge(RecordStamp(record_id=change["record_id"], kind=change["kind"],
                                            stamp=change.get("clock") or ""))
                _log(store, session, change, batch_id="local", device_id=None,
                     child_id=child_id_of(change["kind"], change["record_id"], change.get("fields") or {}))
            session.delete(entry)
        return len(entries)


_LOCK_LOG_AND_CHAIN = Hot(text(f"SELECT pg_advisory_xact_lock({SYNC_LOCK}, hashtext(current_schema())), "
                               f"pg_advisory_xact_lock({audit.CHAIN_LOCK}, hashtext(current_schema()))"))


def lock_log_and_chain(session: Session) -> None:
    """The push lock and the audit chain's, in one statement (a round trip fewer while pushes queue), and
    the chain's head, read once both are held."""
    if session.get_bind().dialect.name == "postgresql":
        _LOCK_LOG_AND_CHAIN.rows(session)
    audit.hold_chain(session, locked=True)


def latest_seq(store: Store) -> int:
    with store.session() as session:
        return latest_in(session)
