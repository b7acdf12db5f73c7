"""The audit trail: who read or changed which record, when, from which device.

Append-only and tamper-evident: every event carries the hash of the one before it, and the hash of the
newest event is kept beside the chain, so an event that is changed, deleted or cut off the end is found
by `verify`, which names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, text
from sqlmodel import Session, col, select

from storage.models import AuditEvent, KeyringEntry, new_id, utcnow

GENESIS = "0" * 64
HEAD_KEY = "audit_head"


class Refusal(Exception):
    """A refused read or change. Raised out of a transaction, it is recorded in the audit trail after
    that transaction rolls back (see `storage.db.session_scope`), so the refusal is never lost with it."""

    def __init__(self, message: str, *, kind: str = "", record_id: str = "", worker_id: str | None = None,
                 device_id: str | None = None, child_id: str | None = None) -> None:
        super().__init__(message)
        self.event = dict(action="denied", kind=kind, record_id=record_id, worker_id=worker_id,
                          device_id=device_id, child_id=child_id) if record_id else None


def refuse(session: Session, refusal: Refusal) -> Refusal:
    """Notes a refusal on the transaction, which records it however the transaction ends (even if the
    caller catches the refusal and carries on); returns it for the caller to raise."""
    session.info.setdefault("refusals", []).append(refusal)
    return refusal


def record_refusal(session: Session, refusal: Refusal) -> None:
    if refusal.event is not None:
        event = dict(refusal.event)
        append(session, event.pop("action"), event.pop("kind"), event.pop("record_id"), **event)


def event_hash(event: AuditEvent) -> str:
    fields = {
        "id": event.id,
        "at": event.at.isoformat(),
        "worker_id": event.worker_id,
        "device_id": event.device_id,
        "action": event.action,
        "kind": event.kind,
        "record_id": event.record_id,
        "child_id": event.child_id,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def append(
    session: Session,
    action: str,
    kind: str,
    record_id: str,
    *,
    worker_id: str | None = None,
    device_id: str | None = None,
    child_id: str | None = None,
    detail: str = "",
) -> AuditEvent:
    """Adds an event to the chain inside the caller's transaction.

    The chain's head is read once per transaction and kept on the session, so a transaction that writes
    many records extends the chain without a query per event.
    """
    head = _head(session)
    event = AuditEvent(
        action=action,
        kind=kind,
        record_id=record_id,
        worker_id=worker_id,
        device_id=device_id,
        child_id=child_id,
        detail=detail,
        prev_hash=head.value,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    head.value = event.hash
    session.add(head)
    return event


EVENT_COLUMNS = ("id", "at", "worker_id", "device_id", "action", "kind", "record_id", "child_id", "detail",
                 "prev_hash", "hash")


def append_many(session: Session, events: list[dict[str, str | None]],
                write: Callable[[Session, Any, list[str], list[tuple[Any, ...]]], None] | None = None) -> None:
    """Adds many events (each `append`'s arguments as a dict) to the chain, in order, with one insert.

    The same chain as `append` one at a time; for a sync batch, which audits every change it applies.
    `write(session, table, columns, rows)` inserts the rows in order (by default SQLAlchemy's insert).
    """
    if not events:
        return
    head = _head(session)
    session.flush()  # events `append` left pending come first in the chain, as in the table
    rows = []
    for fields in events:
        event = SimpleNamespace(**{"worker_id": None, "device_id": None, "child_id": None, "detail": "", **fields,
                                   "id": new_id(), "at": utcnow(), "prev_hash": head.value})
        event.hash = event_hash(event)  # type: ignore[arg-type]
        head.value = event.hash
        rows.append(tuple(getattr(event, name) for name in EVENT_COLUMNS))
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    if write is not None:
        write(session, table, list(EVENT_COLUMNS), rows)  # in order: seq follows the chain
    else:
        session.execute(insert(table), [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows])
    session.add(head)


def _head(session: Session) -> KeyringEntry:
    if "audit_head" not in session.info:
        if session.get_bind().dialect.name == "postgresql":
            # Several server processes may append at once: one transaction at a time extends the chain,
            # holding the lock until it commits. (SQLite transactions are BEGIN IMMEDIATE: one writer.)
            # Keyed by schema too, so stores in different schemas of one database do not queue on each other.
            session.execute(text("SELECT pg_advisory_xact_lock(7431001, hashtext(current_schema()))"))
        head = session.get(KeyringEntry, HEAD_KEY)
        if head is None:
            head = KeyringEntry(name=HEAD_KEY, value=GENESIS)
        session.info["audit_head"] = head
    return session.info["audit_head"]


@dataclass
class Verdict:
    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"Audit chain intact: {self.events} events."
        return f"Audit chain broken (checked {self.events} events). First broken link: {self.reason}"


def verify(session: Session) -> Verdict:
    """Walks the whole chain in order and names the first broken link."""
    prev = GENESIS
    count = 0
    last: AuditEvent | None = None
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))):
        count += 1
        if event_hash(event) != event.hash:
            return Verdict(False, count, event.seq,
                           f"{_name(event)}: its contents were changed after it was written")
        if event.prev_hash != prev:
            return Verdict(False, count, event.seq, f"{_name(event)}: {_missing_before(event, last)}")
        prev = event.hash
        last = event
    head = session.get(KeyringEntry, HEAD_KEY)
    if (head.value if head else GENESIS) != prev:
        where = f"{_name(last)} is now the last" if last else "no event is left"
        return Verdict(False, count, last.seq if last else None,
                       f"after the last event: events at the end of the chain were deleted ({where}; the chain's recorded head is missing)")
    return Verdict(True, count)


def _name(event: AuditEvent) -> str:
    """An event as a person tracing it needs it: its number, when, what and which record."""
    return f"event #{event.seq} ({event.at:%Y-%m-%d %H:%M:%S} UTC, {event.action} {event.kind} {event.record_id})"


def _missing_before(event: AuditEvent, last: AuditEvent | None) -> str:
    before = f"event #{last.seq}" if last else "the start of the chain"
    if last is not None and last.seq is not None and event.seq is not None and event.seq - last.seq > 1:
        gap = (f"#{last.seq + 1}" if event.seq - last.seq == 2 else f"#{last.seq + 1} to #{event.seq - 1}")
        return (f"it does not follow {before}: the event(s) between, {gap}, were deleted "
                f"(or {before} was altered)")
    return f"it does not follow {before}: an event between them was deleted, or {before} was altered"


def trail(session: Session, child_id: str) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent).where(AuditEvent.child_id == child_id).order_by(col(AuditEvent.seq).desc())
        )
    )
