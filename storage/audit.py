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
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlmodel import Session, col, select

from storage.hot import Hot
from storage.models import AuditEvent, KeyringEntry, new_id, table_of, utcnow

GENESIS = "0" * 64

# Where an event's device comes from when its caller does not name one: the hosted app registers the
# browser session an event happens in (pwa/auth.py), so a read or change through the web app says which
# browser made it. Devices that sync always name themselves (the server takes the id from the token).
DeviceSource = Callable[[], "str | None"]
_device_source: DeviceSource | None = None


def set_device_source(source: DeviceSource | None) -> None:
    global _device_source
    _device_source = source


def _device(given: str | None) -> str | None:
    if given is not None or _device_source is None:
        return given
    return _device_source()
HEAD_KEY = "audit_head"


@dataclass(frozen=True)
class Denied:
    """The "denied" event a refusal puts in the audit trail: what was asked for, and by whom."""

    kind: str
    record_id: str
    worker_id: str | None
    device_id: str | None
    child_id: str | None
    detail: str = ""  # never identifying: ids and field names only


class Refusal(Exception):
    """A refused read or change. Raised out of a transaction, it is recorded in the audit trail after
    that transaction rolls back (see `storage.db.session_scope`), so the refusal is never lost with it."""

    def __init__(self, message: str, *, kind: str = "", record_id: str = "", worker_id: str | None = None,
                 device_id: str | None = None, child_id: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.event = Denied(kind=kind, record_id=record_id, worker_id=worker_id, device_id=device_id,
                            child_id=child_id, detail=detail) if record_id else None


def refuse(session: Session, refusal: Refusal) -> Refusal:
    """Notes a refusal on the transaction, which records it however the transaction ends (even if the
    caller catches the refusal and carries on); returns it for the caller to raise."""
    session.info.setdefault("refusals", []).append(refusal)
    return refusal


def record_refusal(session: Session, refusal: Refusal) -> None:
    event = refusal.event
    if event is not None:
        append(session, "denied", event.kind, event.record_id, worker_id=event.worker_id,
               device_id=event.device_id, child_id=event.child_id, detail=event.detail)


def event_hash(event: AuditEvent) -> str:
    return _hash({name: getattr(event, name, None) for name in HASHED})


HASHED = ("id", "at", "worker_id", "device_id", "action", "kind", "record_id", "child_id", "detail", "prev_hash",
          "origin")


def _hash(event: dict[str, Any]) -> str:
    """An event's hash, from its fields (`HASHED`) as a dict."""
    fields = {name: event[name] for name in HASHED[:-1]}
    fields["at"] = event["at"].isoformat()
    if event["origin"] is not None:  # hashed only when set: events without one hash as before
        fields["origin"] = event["origin"]
    return hashlib.sha256(_ENCODER.encode(fields).encode()).hexdigest()


_ENCODER = json.JSONEncoder(sort_keys=True)  # json.dumps(fields, sort_keys=True), without an encoder a call


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
        device_id=_device(device_id),
        child_id=child_id,
        detail=detail,
        prev_hash=head.value,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    _move_head(session, head, event.hash)
    return event


EVENT_COLUMNS = ("id", "at", "worker_id", "device_id", "action", "kind", "record_id", "child_id", "detail",
                 "prev_hash", "hash")


def append_many(session: Session, events: list[dict[str, Any]],
                write: Callable[[Session, Any, list[str], list[tuple[Any, ...]]], object] | None = None) -> None:
    """Adds many events (each `append`'s arguments as a dict) to the chain, in order, with one insert.

    The same chain as `append` one at a time; for a sync batch, which audits every change it applies.
    An event may also give `at` (when it happened, in UTC; now by default) and `origin` (see AuditEvent).
    `write(session, table, columns, rows)` inserts the rows in order (by default SQLAlchemy's insert).
    """
    if not events:
        return
    head = _head(session)
    session.flush()  # events `append` left pending come first in the chain, as in the table
    # Only events a device sent have an origin: the column is written only then.
    columns = [*EVENT_COLUMNS, "origin"] if any(e.get("origin") for e in events) else list(EVENT_COLUMNS)
    rows = []
    prev_hash = head.value
    unnamed = _device(None) if any(e.get("device_id") is None for e in events) else None
    for fields in events:
        event = {"worker_id": None, "device_id": None, "child_id": None, "detail": "", "origin": None,
                 **fields, "id": new_id(), "prev_hash": prev_hash}
        if event["device_id"] is None:
            event["device_id"] = unnamed
        if "at" not in fields:
            event["at"] = utcnow()
        prev_hash = event["hash"] = _hash(event)
        rows.append(tuple(event[name] for name in columns))
    table = table_of(AuditEvent)
    if write is not None:
        write(session, table, columns, rows)  # in order: seq follows the chain
    else:
        session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
    _move_head(session, head, prev_hash)


def hold_chain(session: Session, *, locked: bool = False) -> None:
    """Takes the chain for this transaction (others wait to append until it ends): so what it reads of the
    chain, such as which events are held already, stays true until it commits.

    `locked`: the caller has taken `CHAIN_LOCK` itself (with another lock, in one statement): only the
    head is read.
    """
    _head(session, locked=locked)


@dataclass
class _Head:
    """The chain's newest hash as this transaction has it, and whether the keyring holds a row for it yet."""

    value: str
    stored: bool


CHAIN_LOCK = 7431001  # PostgreSQL advisory lock (with the schema's hash): one transaction at a time appends
_KEYRING = table_of(KeyringEntry)
_HEAD_LOCK = Hot(text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK}, hashtext(current_schema()))"))
_HEAD_READ = Hot(select(_KEYRING.c.value).where(_KEYRING.c.name == HEAD_KEY))
_HEAD_WRITE = Hot(update(_KEYRING).where(_KEYRING.c.name == HEAD_KEY).values(value=bindparam("value")))


def _head(session: Session, *, locked: bool = False) -> _Head:
    """The chain's head, read once a transaction (and kept on the session) with plain queries, not the ORM:
    it is read and written on every save and every sync push."""
    if "audit_head" not in session.info:
        if not locked and session.get_bind().dialect.name == "postgresql":
            # Several server processes may append at once: one transaction at a time extends the chain,
            # holding the lock until it commits. (SQLite transactions are BEGIN IMMEDIATE: one writer.)
            # Keyed by schema too, so stores in different schemas of one database do not queue on each other.
            # The head is read by a later statement than the lock's, so it is read as the last holder left it.
            _HEAD_LOCK.rows(session)
        value = _HEAD_READ.value(session)
        session.info["audit_head"] = _Head(value if value is not None else GENESIS, stored=value is not None)
    return session.info["audit_head"]


def _move_head(session: Session, head: _Head, value: str) -> None:
    """The chain's new head, written at once in the caller's transaction."""
    head.value = value
    if head.stored:
        _HEAD_WRITE.rows(session, {"value": value})
    else:
        session.execute(insert(_KEYRING), {"name": HEAD_KEY, "value": value})
        head.stored = True


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
    head = _HEAD_READ.value(session)
    if (head if head is not None else GENESIS) != prev:
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
