"""Submission keys: one record a form, however often it is sent and by whatever path.

Every form that makes a record (a visit, wishes and feelings, a life-story entry, a care-plan action, a review,
a placement) or carries out a decision (a sign-off, an allocation, a placement's end) is given a key when it is opened: a UUID, kept with the
form's draft, on the page (`data-submission-key`), in the phone's offline copy (as its draft's idempotency
key) and, for a record, in its sync change. Storage holds each key once: on the record it made
(`submission_key`, a unique index) or, for a decision, as a `SubmissionReceipt` (its primary key).

A submission with a key already held answers with what the first one made and changes nothing: a double
tap, a retried request, a form begun online and finished offline. By another worker it is refused, and the
refusal audited. Two submissions racing each other both try to insert; the constraint lets one in, and the
other, its transaction rolled back, reads the winner's record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from storage.hot import Hot
from storage.models import (
    AuditEvent,
    CarePlanAction,
    Child,
    ChildStatement,
    Draft,
    LifeStoryEntry,
    Placement,
    Review,
    SafeguardingFlag,
    SubmissionReceipt,
    Visit,
    WishesAndFeelings,
    Worker,
    table_of,
)
from storage.store import NotAllowed, Store

# The kinds of record a form makes, by the kind sync and the audit trail call them.
KEYED: dict[str, type[SQLModel]] = {"visit": Visit, "wishes_and_feelings": WishesAndFeelings,
                                    "life_story": LifeStoryEntry, "care_plan_action": CarePlanAction,
                                    "child_statement": ChildStatement, "safeguarding_flag": SafeguardingFlag,
                                    "review": Review, "placement": Placement}
# A decision changes a record another form made (ending a placement): its key is held as a receipt.
DECISIONS = ("sign_off", "allocation", "placement_end")
# Offline drafts stored before keys were kept on the records left a receipt among the drafts, of these kinds.
LEGACY_RECEIPTS = {"visit_receipt": "visit", "wishes_receipt": "wishes_and_feelings",
                   "life_story_receipt": "life_story"}
KEY_FIELD = "submission_key"  # the form's field (and the draft's) that carries it
MAX_KEY_LENGTH = 64


class _Record(Protocol):
    id: str
    submission_key: str | None


R = TypeVar("R", bound=_Record)


def new_key() -> str:
    return str(uuid.uuid4())


def key_of(fields: dict[str, Any]) -> str:
    """The key a form carries ("" for none)."""
    value = fields.get(KEY_FIELD)
    return value.strip() if isinstance(value, str) else ""


def checked_key(key: str) -> str:
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError("This form has no submission key Seen can use. Open the form again and resend it.")
    return key


@dataclass(frozen=True)
class Held:
    """What a key already made: the kind, the record (made or decided on), and whose submission it was."""

    kind: str
    record_id: str
    worker_id: str | None
    child_id: str | None = None


def held(store: Store, session: Session, key: str) -> Held | None:
    """What `key` already made, wherever it is held; None for a key not used yet. One query: a union of
    indexed look-ups, so a new submission (the usual case) costs one round trip."""
    text = sa.String()
    parts: list[Any] = []
    for kind, model in KEYED.items():
        table = table_of(model)
        author = table.c.worker_id if "worker_id" in table.c else sa.cast(sa.null(), text)
        parts.append(sa.select(sa.cast(sa.literal(kind), text), table.c.id, author, table.c.child_id)
                     .where(table.c.submission_key == key))
    receipts, drafts = table_of(SubmissionReceipt), table_of(Draft)
    parts.append(sa.select(receipts.c.kind, receipts.c.record_id, receipts.c.worker_id, sa.cast(sa.null(), text))
                 .where(receipts.c.key == key))
    parts.append(sa.select(drafts.c.kind, drafts.c.id, drafts.c.worker_id, drafts.c.child_id)
                 .where(drafts.c.idempotency_key == key, drafts.c.kind.in_(list(LEGACY_RECEIPTS))))
    row = session.execute(sa.union_all(*parts)).first()
    if row is None:
        return None
    kind, record_id, worker_id, child_id = row
    if kind in LEGACY_RECEIPTS:
        legacy = session.get(Draft, record_id)
        assert legacy is not None
        payload = store.open_payload("draft", legacy.id, legacy.sealed)
        # Receipts written before every kind shared this code name the visit as "visit_id".
        return Held(LEGACY_RECEIPTS[kind], payload.get("record_id") or payload.get("visit_id") or "", worker_id,
                    child_id)
    return Held(kind, record_id, worker_id or _author(session, kind, record_id), child_id)


def _author(session: Session, kind: str, record_id: str) -> str | None:
    """Who made a record that does not name its author (a care-plan action): its first audit event does."""
    return session.exec(select(AuditEvent.worker_id).where(
        AuditEvent.kind == kind, AuditEvent.record_id == record_id, col(AuditEvent.action).in_(("create", "sync")))
        .order_by(col(AuditEvent.seq))).first()


def _answer(store: Store, session: Session, worker: Worker, key: str, kind: str) -> Held | None:
    """What `key` made, if this worker made it as this kind; NotAllowed (audited) if someone else did, or
    it was used for another kind of form."""
    found = held(store, session, key)
    if found is None:
        return None
    if found.worker_id != worker.id:
        raise NotAllowed("This form was already sent by another worker, so Seen did not store it again. "
                         "Open the form again to record your own.", kind=found.kind, record_id=found.record_id,
                         worker_id=worker.id, child_id=found.child_id, detail="submission key of another worker")
    if found.kind != kind:
        raise NotAllowed("This form's key was already used for another kind of form, so Seen did not store it. "
                         "Open the form again and resend it.", kind=kind, record_id=found.record_id,
                         worker_id=worker.id, child_id=found.child_id, detail=f"submission key of a {found.kind}")
    return found


def already_made(store: Store, worker: Worker, key: str, kind: str) -> Any | None:
    """The record this worker's submission with `key` made already, if it did (see `_answer` for refusals)."""
    with store.session() as session:
        found = _answer(store, session, worker, key, kind)
        return session.get(KEYED[kind], found.record_id) if found is not None else None


def make_once(store: Store, worker: Worker, child_id: str, key: str, kind: str,
              make: Callable[[Session, Child], R], *, device_id: str | None = None) -> R:
    """Runs `make` (which stores one record of `kind` for the child, carrying `key`) once per key.

    A submission with a key already held returns the record stored the first time and changes nothing; two
    racing each other store one record (the loser's insert fails on the unique key, and it reads the winner's).
    NotAllowed for a child the worker may not see, or a key another worker used.
    """
    key = checked_key(key)
    try:
        with store.session() as session:
            found = _answer(store, session, worker, key, kind)
            if found is not None:
                return session.get(KEYED[kind], found.record_id)
            child = store.child_for(session, worker, child_id, device_id=device_id)
            record = make(session, child)
            if record.submission_key != key:
                raise AssertionError(f"The {kind} was made without its submission key.")
            session.flush()
            return record
    except IntegrityError:
        existing = already_made(store, worker, key, kind)
        if existing is None:
            raise
        return existing


def decide_once(store: Store, worker: Worker, key: str, kind: str, record_id: str,
                decide: Callable[[Session], None]) -> bool:
    """Runs `decide` (a sign-off, an allocation of `record_id`) once per key; False if it had run already.

    The receipt is written in the decision's own transaction, so two racing store one decision.
    """
    if kind not in DECISIONS:
        raise ValueError(f"A {kind} makes a record: use make_once.")
    key = checked_key(key)
    with store.session() as session:
        if _answer(store, session, worker, key, kind) is not None:
            return False
    try:
        with store.session() as session:
            decide(session)
            session.add(SubmissionReceipt(key=key, worker_id=worker.id, kind=kind, record_id=record_id))
            session.flush()
            return True
    except IntegrityError:
        with store.session() as session:
            if _answer(store, session, worker, key, kind) is None:
                raise
        return False


def key_holders(session: Session, wanted: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """Which of these keys (by kind) a record of that kind holds already: (kind, key) -> the record's id. One indexed
    query a kind, for a sync batch's records together (one a record cost ~0.2 ms each)."""
    held: dict[tuple[str, str], str] = {}
    for kind, keys in sorted(wanted.items()):
        if kind in KEYED and keys:
            for key, record_id in _holders(KEYED[kind]).rows(session, {"keys": sorted(keys)}):
                held[(kind, key)] = record_id
    return held


_HOLDERS: dict[Any, Hot] = {}


def _holders(model: Any) -> Hot:
    if model not in _HOLDERS:
        table = table_of(model)
        columns = (table.c.submission_key, table.c.id)
        _HOLDERS[model] = Hot.one_of(sa.select(*columns), table.c.submission_key, "keys")
    return _HOLDERS[model]


def key_refusal(session: Session, kind: str, record_id: str, key: Any, row: Any,
                taken: dict[str, str], held: dict[tuple[str, str], str] | None = None) -> str | None:
    """Why a record sync brings (`kind`, `record_id`, carrying `key`; `row` the record held, or None) cannot be
    taken, or None.

    A key is held once: a different record with a key the server holds already (or one earlier in the same
    batch, in `taken`: key -> record id, which this adds to) would be the same submission stored twice. A
    record's key never changes. `held`, when given, is `key_holders` of every key of the batch: else the key is
    looked up here.
    """
    if kind not in KEYED:
        return None
    what = f"The {kind.replace('_', ' ')} {record_id}"
    if row is not None and key is not None and key != row.submission_key:
        return f"{what} cannot change the key it was submitted with."
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        return f"{what} carries a submission key that is not one."
    if row is not None:
        return None  # the record held already, with this key
    holder = taken.get(key)
    if holder is None and held is not None:
        holder = held.get((kind, key)) or record_id
    if holder is None:
        # One indexed look-up of the record's own kind: the unique index another record would collide with.
        model: Any = KEYED[kind]
        holder = session.exec(select(model.id).where(col(model.submission_key) == key)).first() or record_id
    if holder != record_id:
        return (f"{what} was submitted with a key the server already holds for record {holder}: it is the same "
                "form sent twice, so it was not stored again.")
    taken[key] = record_id
    return None
