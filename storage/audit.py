"""The audit trail: who read or changed which record, when, from which device.

Append-only and tamper-evident: every event carries the hash of the one before it, and the hash of the
newest event is kept beside the chain, so an event that is changed, deleted or cut off the end is found
by `verify`, which names the first broken link.

The hashes are keyed: HMAC-SHA256 under a key derived from the store's data key (`sealing.audit_key`),
which the store registers here when it is unlocked. Someone with the database but not the key cannot
recompute the chain after deleting or changing an event. A chain begun before the hashes were keyed keeps
its plain SHA-256 events as they are: the first unlock by this version records, under the key, where
the keyed part begins (`KEYED_AFTER_KEY`) with an event saying so; that keyed event binds the plain ones
before it (it carries the last plain hash), so they cannot be changed unseen either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import operator
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

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
KEYED_AFTER_KEY = "audit_keyed_after"  # where the keyed chain begins: {"seq", "hash", "mac"} (see `adopt_key`)

# Each open store's audit key, by its engine: registered when the store is unlocked, gone when it locks.
_keys: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


class Unkeyed(Exception):
    """The audit chain cannot be written or checked without the store's key (the store is locked)."""

    def __init__(self) -> None:
        super().__init__("The audit trail cannot be written or checked while Seen is locked: unlock it first "
                         "(the server key, or the node's passphrase).")


def set_key(engine: Engine, key: bytes | None) -> None:
    """The audit key for a store's engine (None when the store locks)."""
    if key is None:
        _keys.pop(engine, None)
    else:
        _keys[engine] = key


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _key(session: Session) -> bytes:
    key = _keys.get(_engine(session))
    if key is None:
        raise Unkeyed()
    return key


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


def event_hash(event: AuditEvent, key: bytes | None) -> str:
    """An event's hash: keyed (HMAC-SHA256) with the audit key, or plain SHA-256 for `key=None` (events
    written before the chain was keyed)."""
    return _hash({name: getattr(event, name, None) for name in HASHED}, key)


HASHED = ("id", "at", "worker_id", "device_id", "action", "kind", "record_id", "child_id", "detail", "prev_hash",
          "origin", "received_at")
_OPTIONAL = ("origin", "received_at")  # hashed only when set: events without them hash as before


def _hash(event: dict[str, Any], key: bytes | None) -> str:
    """An event's hash, from its fields (`HASHED`) as a dict."""
    encoded = _encoded(event).encode()
    if key is None:
        return hashlib.sha256(encoded).hexdigest()
    return hmac.digest(key, encoded, "sha256").hex()  # hmac.new(...).hexdigest() in one call to OpenSSL


def _encoded(event: dict[str, Any]) -> str:
    """The text an event's hash is made of: its fields (`HASHED`, the optional ones only when set), `at` and
    `received_at` in ISO 8601, as `json.dumps(fields, sort_keys=True)` writes them."""
    if event.get("origin") is None and event.get("received_at") is None:
        # Most events (every one a sync push appends): the same text from a template in json's sorted order,
        # each value written as json writes text and None (~40% of the hash's time, with the HMAC's call).
        # A value of any other type takes json's own way below.
        values = []
        for name in _PLAIN:
            value = event[name]
            if name == "at":
                value = value.isoformat()
            if value is None:
                values.append("null")
            elif isinstance(value, str):
                values.append(_json_text(value))
            else:
                break
        else:
            return _PLAIN_TEMPLATE % tuple(values)
    fields = {name: event[name] for name in HASHED if name not in _OPTIONAL}
    fields["at"] = event["at"].isoformat()
    if event.get("origin") is not None:
        fields["origin"] = event["origin"]
    if event.get("received_at") is not None:
        fields["received_at"] = event["received_at"].isoformat()
    return _ENCODER.encode(fields)


_ENCODER = json.JSONEncoder(sort_keys=True)  # json.dumps(fields, sort_keys=True), without an encoder a call
_json_text = encode_basestring_ascii  # a string as _ENCODER writes it (ensure_ascii, quoted)
_PLAIN = tuple(sorted(name for name in HASHED if name not in _OPTIONAL))
_PLAIN_TEMPLATE = "{" + ", ".join(f'"{name}": %s' for name in _PLAIN) + "}"  # _ENCODER's separators


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
    key = _key(session)
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
    event.hash = event_hash(event, key)
    session.add(event)
    _move_head(session, head, event.hash)
    return event


EVENT_COLUMNS = ("id", "at", "worker_id", "device_id", "action", "kind", "record_id", "child_id", "detail",
                 "prev_hash", "hash")


@dataclass
class Prepared:
    """Events made ready to join the chain (`prepare_many`), all but their place in it: each event's row with its
    `prev_hash` and `hash` still to fill, and the text its hash is made of, split where its `prev_hash` goes."""

    columns: list[str]
    rows: list[list[Any]]
    texts: list[tuple[str, str] | None]  # (before, after) its prev_hash; None: made whole once it is known
    events: list[dict[str, Any]]

    def __add__(self, other: Prepared) -> Prepared:
        if other.columns != self.columns:
            return prepare_many([*self.events, *other.events])
        return Prepared(self.columns, [*self.rows, *other.rows], [*self.texts, *other.texts],
                        [*self.events, *other.events])


def prepare_many(events: list[dict[str, Any]]) -> Prepared:
    """What `append_many` does to each event before it knows the chain's head: its id, time and device, its row
    and the text its hash is made of (all but a few microseconds of an event's cost), so a sync push does this
    before it takes the chain's lock and holds the lock only to link the events."""
    # Only events a device sent have an origin and a time received: those columns are written only then.
    columns = [*EVENT_COLUMNS, "origin", "received_at"] if any(e.get("origin") for e in events) else list(
        EVENT_COLUMNS)
    row_of = operator.itemgetter(*columns)  # an event's values in the columns' order, as a tuple
    unnamed = _device(None) if any(e.get("device_id") is None for e in events) else None
    prepared = Prepared(columns, [], [], [])
    for fields in events:
        event = {"worker_id": None, "device_id": None, "child_id": None, "detail": "", "origin": None,
                 "received_at": None, **fields, "id": new_id(), "prev_hash": _PREV, "hash": ""}
        if event["device_id"] is None:
            event["device_id"] = unnamed
        if "at" not in fields:
            event["at"] = utcnow()
        text = _encoded(event)
        # Split at the one place the stand-in stands: none of the fields hashed after `prev_hash` (a record's id,
        # a worker's id, a time) can hold it, so it is the last; if a field before it also holds it, the text
        # is made whole later.
        before, _, after = text.rpartition(_PREV_TEXT)
        prepared.texts.append((before, after) if text.count(_PREV_TEXT) == 1 else None)
        prepared.rows.append(list(row_of(event)))
        prepared.events.append(event)
    return prepared


# A stand-in for an event's prev_hash while its text is made, before the chain's head is known: no hash is like it.
_PREV = "\x00prev_hash\x00"
_PREV_TEXT = encode_basestring_ascii(_PREV)


def append_many(session: Session, events: list[dict[str, Any]] | Prepared,
                write: Callable[[Session, Any, list[str], list[tuple[Any, ...]]], object] | None = None) -> None:
    """Adds many events (each `append`'s arguments as a dict, or made ready by `prepare_many`) to the chain, in
    order, with one insert.

    The same chain as `append` one at a time; for a sync batch, which audits every change it applies.
    An event may also give `at` (when it happened, in UTC; now by default) and `origin` (see AuditEvent).
    `write(session, table, columns, rows)` inserts the rows in order (by default SQLAlchemy's insert).
    """
    prepared = events if isinstance(events, Prepared) else prepare_many(events)
    if not prepared.rows:
        return
    rows, head_value = link(session, prepared)
    table = table_of(AuditEvent)
    if write is not None:
        write(session, table, prepared.columns, rows)  # in order: seq follows the chain
    else:
        session.execute(insert(table), [dict(zip(prepared.columns, row, strict=True)) for row in rows])
    _move_head(session, _head(session), head_value)


def link(session: Session, prepared: Prepared) -> tuple[list[tuple[Any, ...]], str]:
    """The events' rows linked into the chain after its head (read once a transaction, under the chain's lock),
    and what the head then is: each row's `prev_hash` and `hash` filled in. The caller inserts the rows, in
    order, and moves the head (`append_many`, or `head_moved_with` in the same statement)."""
    key = _key(session)
    head = _head(session)
    session.flush()  # events `append` left pending come first in the chain, as in the table
    columns = prepared.columns
    at_prev, at_hash = columns.index("prev_hash"), columns.index("hash")
    rows = []
    prev_hash = head.value
    for row, around, event in zip(prepared.rows, prepared.texts, prepared.events, strict=True):
        row[at_prev] = prev_hash
        if around is None:
            prev_hash = _hash({**event, "prev_hash": prev_hash}, key)
        else:
            encoded = (around[0] + ("null" if prev_hash is None else _json_text(prev_hash)) + around[1]).encode()
            prev_hash = (hashlib.sha256(encoded).hexdigest() if key is None
                         else hmac.digest(key, encoded, "sha256").hex())
        row[at_hash] = prev_hash
        rows.append(tuple(row))
    return rows, prev_hash


def head_moved_with(session: Session, value: str) -> tuple[str, str, str, str, str] | None:
    """The chain's head moved to `value` by a statement the caller sends with others: the update to send, as
    (table, key column, key, column, value) (`bulk.insert_rows_together`), or None when the head has no row yet
    (then `append_many`'s way). The head is taken as moved once given."""
    head = _head(session)
    if not head.stored:
        return None
    head.value = value
    return _KEYRING.name, _KEYRING.c.name.name, HEAD_KEY, _KEYRING.c.value.name, value


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


def _marker_mac(key: bytes, seq: int, last_hash: str) -> str:
    return hmac.new(key, f"seen-audit-keyed-after:{seq}:{last_hash}".encode(), hashlib.sha256).hexdigest()


def adopt_key(engine: Engine, key: bytes) -> None:
    """Registers the store's audit key and, the first time, records where the keyed chain begins.

    A new store's chain is keyed from its first event. A store whose chain was begun by an earlier Seen
    (plain SHA-256) keeps those events as they are: the mark, under the key, names the last of them and
    its hash, and an event saying so is the first keyed one. Rewriting the old events as they were (no
    event is re-hashed) keeps them checkable as before, and the keyed events after them bind them.
    """
    set_key(engine, key)
    with Session(engine) as session:
        if session.get(KeyringEntry, KEYED_AFTER_KEY) is not None:
            return
        hold_chain(session)  # one process at a time decides (several servers may start at once)
        if session.get(KeyringEntry, KEYED_AFTER_KEY) is not None:
            return
        last = session.exec(select(AuditEvent.seq, AuditEvent.hash).order_by(col(AuditEvent.seq).desc()).limit(1)
                            ).first()
        seq, last_hash = (last[0] or 0, last[1]) if last is not None else (0, GENESIS)
        session.add(KeyringEntry(name=KEYED_AFTER_KEY, value=json.dumps(
            {"seq": seq, "hash": last_hash, "mac": _marker_mac(key, seq, last_hash)})))
        session.flush()
        if last is not None:
            count = session.exec(select(func.count()).select_from(AuditEvent)).one()
            append(session, "key", "audit_chain", "chain", detail=(
                f"the chain is keyed from here; the {count} event(s) up to #{seq} were written before, with plain "
                "hashes, and are checked as they were"))
        session.commit()


@dataclass
class Verdict:
    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str = ""
    head_seq: int | None = None  # the newest event, to keep elsewhere (see `verify`'s `anchor`)
    head_hash: str = ""

    def __str__(self) -> str:
        if self.ok:
            newest = (f" Newest event: #{self.head_seq}, hash {self.head_hash[:HEAD_PREFIX]} (keep this line "
                      f"elsewhere and check it later with --head {self.head_seq}:{self.head_hash[:HEAD_PREFIX]}: "
                      "it proves no event up to it was cut off).") if self.head_seq is not None else ""
            return f"Audit chain intact: {self.events} events.{newest}"
        return f"Audit chain broken (checked {self.events} events). First broken link: {self.reason}"


HEAD_PREFIX = 16  # hex digits of the newest event's hash shown to anchor the chain's end


def verify(session: Session, key: bytes | None = None, *, anchor: tuple[int, str] | None = None) -> Verdict:
    """Walks the whole chain in order and names the first broken link. Needs the audit key (the store's,
    registered when it was unlocked, unless given). `anchor` is a newest event noted earlier (its number
    and the start of its hash): the chain must still hold it, so its end was not cut off before it."""
    key = key if key is not None else _key(session)
    entry = session.get(KeyringEntry, KEYED_AFTER_KEY)
    if entry is None:
        return Verdict(False, 0, None, "the record of where the keyed chain begins is missing (it was deleted)")
    mark = json.loads(entry.value)
    boundary, boundary_hash = int(mark["seq"]), str(mark["hash"])
    if not hmac.compare_digest(str(mark.get("mac", "")), _marker_mac(key, boundary, boundary_hash)):
        return Verdict(False, 0, None, "the record of where the keyed chain begins was altered, or the key is "
                       "not this store's")
    prev = GENESIS
    count = 0
    last: AuditEvent | None = None
    anchored = anchor is None
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))):
        count += 1
        seq = event.seq or 0
        if event_hash(event, key if seq > boundary else None) != event.hash:
            return Verdict(False, count, event.seq,
                           f"{_name(event)}: its contents were changed after it was written")
        if event.prev_hash != prev:
            return Verdict(False, count, event.seq, f"{_name(event)}: {_missing_before(event, last)}")
        if seq > boundary and prev != boundary_hash and (last is None or (last.seq or 0) <= boundary):
            return Verdict(False, count, event.seq, f"{_name(event)}: the events before the chain was keyed "
                           f"(up to #{boundary}) were changed or deleted")
        if anchor is not None and seq == anchor[0]:
            if not event.hash.startswith(anchor[1].lower()):
                return Verdict(False, count, event.seq, f"{_name(event)}: it is not the event noted as the "
                               "newest earlier (--head): the chain was rewritten from there")
            anchored = True
        prev = event.hash
        last = event
    if last is not None and (last.seq or 0) <= boundary and prev != boundary_hash:
        return Verdict(False, count, last.seq, f"{_name(last)}: the events before the chain was keyed "
                       f"(up to #{boundary}) were changed or deleted")
    head = _HEAD_READ.value(session)
    if (head if head is not None else GENESIS) != prev:
        where = f"{_name(last)} is now the last" if last else "no event is left"
        return Verdict(False, count, last.seq if last else None,
                       f"after the last event: events at the end of the chain were deleted ({where}; the chain's recorded head is missing)")
    if not anchored:
        assert anchor is not None
        return Verdict(False, count, last.seq if last else None, f"event #{anchor[0]}, noted as the newest earlier "
                       "(--head), is no longer in the chain: events at its end were deleted")
    return Verdict(True, count, head_seq=last.seq if last else None, head_hash=prev if last else "")


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
