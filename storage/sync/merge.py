"""Sync's storage: the server's change log and devices, the node's pulled changes and cursor, and the merge.

A change is a plain dict, the same at both ends: `{"change_id", "kind", "record_id", "fields", "body",
"clock", "base_clocks"}` (what `Store.write` puts in the outbox, plus its id; a photo's body is its image,
`{"image": base64}`). Merging is the same at both ends and idempotent: mutable records (child, placement,
care plan, action, review) merge field by field, the later hybrid logical clock winning; other records
(visits, wishes and feelings, life story, photos) keep the write with the later clock. So changes may
arrive twice, or in any order, and every node still ends with the same records. Only the server decides
what was a conflict (two edits that crossed), keeps the losing value in the `Conflict` table and logs the
conflict so it reaches the nodes too.

On the server, each change a device pushes is first put to the policy (storage/policy.py), the same rules
the screens follow, on what the change would actually alter: who may create, change, sign off, allocate and
close what, and which records are final. Its clocks must be clocks no more than a few minutes ahead of the
server's time (storage/hlc.py). A batch with any change refused applies none of it, and each refusal is
audited with its reason.

The server's `ChangeLog` numbers every applied change; pushes are applied one at a time (a PostgreSQL
advisory lock, or SQLite's single writer), so a change is committed before any with a higher number and
a node that pulls by cursor never skips one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from pydantic import BaseModel, ValidationError, create_model
from sqlalchemy import (
    ARRAY,
    String,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    text,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError
from sqlmodel import Session, SQLModel, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from storage import audit, hlc, policy
from storage.cases import cases_for, local_date
from storage.direct_work import image_from_sync, today_in_england
from storage.hot import Hot, psycopg_connection
from storage.models import (
    BODY_OF,
    KIND_OF,
    AuditEvent,
    CarePlan,
    CarePlanAction,
    ChangeLog,
    Child,
    ChildBody,
    Conflict,
    Device,
    Draft,
    EnrolmentCode,
    KeyringEntry,
    LifeStoryEntry,
    ManagedTeam,
    MutableRecord,
    Outbox,
    Photo,
    Placement,
    Review,
    Role,
    SyncClock,
    SyncState,
    Team,
    Visit,
    WishesAndFeelings,
    Worker,
    table_of,
    utcnow,
)
from storage.record_dates import CaseDates, date_problem
from storage.store import SYNCED_KINDS, Store, same_value
from storage.timescales import clocks_and_problems

# A push batch or a pull page stops growing at about this many bytes (photos are big: ~50-400 KB each).
MESSAGE_BYTES = 4 * 1024 * 1024
SYNC_LOCK = 7431002  # PostgreSQL advisory lock: one push applied at a time, so seq order is commit order
CONFLICT_NS = uuid.UUID("0c0f11c7-5ee0-4c0f-a11c-7c0f11c75ee0")
MODEL_OF: dict[str, type[SQLModel]] = {kind: model for model, kind in KIND_OF.items() if kind in SYNCED_KINDS}
# Parents before children, so foreign keys hold whatever order changes arrive in.
KIND_RANK = {"child": 0, "placement": 1, "care_plan": 1, "review": 1, "visit": 1, "wishes_and_feelings": 1,
             "life_story": 1, "photo": 1, "care_plan_action": 2, "conflict": 3}
CHILD_PARTS: tuple[type[SQLModel], ...] = (CarePlanAction, CarePlan, Placement, Visit, WishesAndFeelings,
                                           LifeStoryEntry, Photo, Review, Draft)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud and typed on a phone

# Node-side keys in the sync_state table.
CURSOR = "cursor"
ENROLMENT = "enrolment"
LAST_SYNCED = "last_synced_at"
DIRECTORY_VERSION = "directory_version"
LAST_ERROR = "last_error"
REFUSED_PREFIX = "refused:"
PHOTOS_WHOLE = "photos_sent_whole"  # set once this node has queued its photos with their images
AUDIT_CURSOR = "audit_cursor"  # the last of this node's audit events the server confirmed holding
AUDIT_REFUSED_PREFIX = "refused_audit:"


class SyncRefused(Exception):
    """A request the server will not carry out; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request",
                 change_ids: Iterable[str] = (), wipe: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.change_ids = list(change_ids)
        self.wipe = wipe
        self.reasons: dict[str, str] = {}  # change id -> why it was refused, when changes were
        self.refused: list[Any] = []  # the changes refused (`Refused`), for the audit trail


# ------------------------------------------------------------------------------------------------ helpers


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Keyed by schema too: several Seen databases may share one PostgreSQL without waiting on each other.
        session.execute(text(f"SELECT pg_advisory_xact_lock({SYNC_LOCK}, hashtext(current_schema()))"))


def _child_id_of(kind: str, record_id: str, fields: dict[str, Any]) -> str | None:
    return record_id if kind == "child" else fields.get("child_id")


def _dump(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(mode="json", exclude={"sealed"})


def _value(fields: dict[str, Any], body: dict[str, Any] | None, name: str) -> tuple[bool, Any]:
    """(present, value) of a clear field or a `body.` field in a change."""
    if name.startswith("body."):
        if body is None or name[5:] not in body:
            return False, None
        return True, body[name[5:]]
    return (name in fields), fields.get(name)


def record_as_change(store: Store, session: Session, row: SQLModel,
                     clocks: dict[str, str] | None = None) -> dict[str, Any]:
    """A stored record as a change: how a node that never held it receives it whole.

    `clocks` (record id -> clock), when given, holds the clocks of records without field clocks.
    """
    kind = KIND_OF[type(row)]
    body = store.opened(row).body.model_dump(mode="json") if type(row) in BODY_OF else None
    if isinstance(row, Photo):
        body = {"image": base64.b64encode(store.sealer.open_bytes(kind, row.id, row.sealed)).decode()}
    clock = ""
    if not isinstance(row, MutableRecord) and clocks is not None:
        clock = clocks.get(row.id, "")  # type: ignore[attr-defined]
    elif not isinstance(row, MutableRecord):
        entry = session.get(SyncClock, row.id)  # type: ignore[attr-defined]
        clock = entry.clock if entry else ""
    return {"change_id": str(uuid.uuid5(CONFLICT_NS, f"snapshot:{kind}:{row.id}:{clock}")),  # type: ignore[attr-defined]
            "kind": kind, "record_id": row.id, "fields": _dump(row), "body": body,  # type: ignore[attr-defined]
            "clock": clock, "base_clocks": {}}


def conflict_as_change(store: Store, conflict: Conflict) -> dict[str, Any]:
    return {"change_id": str(uuid.uuid5(CONFLICT_NS, f"conflict:{conflict.id}")), "kind": "conflict",
            "record_id": conflict.id, "fields": _dump(conflict),
            "body": store.open_payload("conflict", conflict.id, conflict.sealed), "clock": "", "base_clocks": {}}


# ------------------------------------------------------------------------------------------------ merging


@dataclass
class Merged:
    """What merging one change did."""

    changed: bool = False
    conflicts: list[Conflict] = field(default_factory=list)


class Records:
    """The records a batch or page touches, loaded set-wise (one `IN` query a kind) and kept by id.

    `get` answers from what was loaded, including "not there" and records made earlier in the same batch,
    so merging a batch costs no query a change. Records new to this node are not added to the session
    one by one: `write_new` inserts them in bulk, parents first, when the batch has been merged.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: dict[tuple[type[SQLModel], str], Any] = {}
        self.clocks: dict[str, SyncClock | None] = {}
        self.new: dict[type[SQLModel], dict[str, Any]] = {}
        self.new_clocks: dict[str, tuple[str, str]] = {}  # record id -> (kind, clock), not yet inserted

    def load(self, model: type[SQLModel], ids: Iterable[str], *, for_update: bool = False,
             probe: bool = True) -> None:
        """Loads these records (those not loaded already); on PostgreSQL `for_update` locks their rows,
        so two transactions merging into the same record take turns and neither loses the other's fields."""
        wanted = sorted({i for i in ids if isinstance(i, str) and (model, i) not in self.rows})
        key = model.id  # type: ignore[attr-defined]
        table = table_of(model)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            # Which exist first (most of a push is new records), then only those are read as rows.
            present = (sorted(self.session.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars())
                       if probe else chunk)
            found: dict[str, Any] = {}
            if present:
                query = select(model).where(col(key).in_(present)).order_by(key)
                if for_update:
                    query = query.with_for_update()
                found = {row.id: row for row in self.session.exec(query)}  # type: ignore[attr-defined]
            for record_id in chunk:
                self.rows[(model, record_id)] = found.get(record_id)

    def load_clocks(self, ids: Iterable[str]) -> None:
        wanted = sorted({i for i in ids if i not in self.clocks})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found = {c.record_id: c for c in self.session.exec(
                select(SyncClock).where(col(SyncClock.record_id).in_(chunk)))}
            for record_id in chunk:
                self.clocks[record_id] = found.get(record_id)

    def get(self, model: type[SQLModel], record_id: str) -> Any:
        key = (model, record_id)
        if key not in self.rows:
            self.rows[key] = self.session.get(model, record_id)
        row = self.rows[key]
        if row is not None and not isinstance(row, model):
            # A new record's validated values, merged into again in the same batch: now as the model.
            row = model.model_validate(row.model_dump())
            self.rows[key] = self.new[model][record_id] = row
        return row

    def add(self, model: type[SQLModel], row: Any) -> None:
        """A record this node did not hold (the model, or its `_values` twin): inserted by `write_new`."""
        self.rows[(model, row.id)] = row
        self.new.setdefault(model, {})[row.id] = row

    def touch(self, row: Any) -> None:
        """A record changed in place: one held already is saved by the session's flush."""
        if row.id not in self.new.get(type(row), {}):
            self.session.add(row)

    def clock_of(self, record_id: str) -> str | None:
        if record_id in self.new_clocks:
            return self.new_clocks[record_id][1]
        if record_id not in self.clocks:
            self.load_clocks([record_id])
        entry = self.clocks[record_id]
        return entry.clock if entry is not None else None

    def set_clock(self, record_id: str, kind: str, clock: str) -> None:
        """The clock of a record's write; a record new here gets its clock by upsert (not read first)."""
        entry = self.clocks.get(record_id)
        if entry is None:
            self.new_clocks[record_id] = (kind, clock)
        else:
            entry.kind, entry.clock = kind, clock
            self.session.add(entry)

    def write_new(self) -> None:
        """Inserts the new records, one multi-row insert a table, parents before children; then flushes
        the changes to records already held."""
        with self.session.no_autoflush:
            for model in sorted(self.new, key=lambda m: KIND_RANK.get(KIND_OF.get(m, ""), 9)):
                table = table_of(model)
                names = [c.name for c in table.columns]
                insert_rows(self.session, table, names, [tuple(getattr(row, n) for n in names)
                                                         for row in self.new[model].values()])
            insert_rows(self.session, table_of(SyncClock), ["record_id", "kind", "clock"],
                        [(record_id, kind, clock) for record_id, (kind, clock) in self.new_clocks.items()],
                        upsert="record_id")
        self.new = {}
        self.new_clocks = {}
        self.session.flush()

    def prefetch(self, changes: list[dict[str, Any]], *, for_update: bool) -> None:
        """Everything merging `changes` will look at: the records, their clocks and their children."""
        by_kind: dict[str, set[str]] = {}
        child_ids: set[str] = set()
        for change in changes:
            kind = change["kind"]
            if kind in MODEL_OF:
                by_kind.setdefault(kind, set()).add(change["record_id"])
                child_id = (change.get("fields") or {}).get("child_id")
                if isinstance(child_id, str):
                    child_ids.add(child_id)
        for kind in sorted(by_kind, key=lambda k: KIND_RANK.get(k, 9)):
            self.load(MODEL_OF[kind], by_kind[kind], for_update=for_update)
        self.load(Child, child_ids, probe=False)  # the children a batch refers to are there, as a rule
        self.load_clocks(i for k, ids in by_kind.items() if not issubclass(MODEL_OF[k], MutableRecord) for i in ids
                         if self.rows[(MODEL_OF[k], i)] is not None)
        conflicts = [c["record_id"] for c in changes if c["kind"] == "conflict"]
        if conflicts:
            self.load(Conflict, conflicts)


# Asked, on the server, whether a change may be made, once it is known what it would change: (the change,
# the record held or None, the record as the change would leave it, the fields it would alter). Raises
# `NotPermitted` to refuse it.
Judge = Callable[[dict[str, Any], Any, Any, set[str]], None]


class NotPermitted(Exception):
    """The policy (storage/policy.py) refuses this change."""

    def __init__(self, no: policy.No) -> None:
        super().__init__(no.message)
        self.no = no


def merge_change(store: Store, session: Session, change: dict[str, Any], *, judge_conflicts: bool,
                 records: Records | None = None, judge: Judge | None = None) -> Merged:
    """Applies one change to this node's records: idempotent, and the same result in any order.

    With `records`, looks records up there and leaves new ones to `records.write_new`; without, works
    on the session alone. With `judge` (the server, for a device's push), the change is first put to the
    policy. Raises ValueError (a change that does not describe a valid record), NotPermitted, and lets
    IntegrityError through.
    """
    if records is None:
        records = Records(session)
        merged = merge_change(store, session, change, judge_conflicts=judge_conflicts, records=records,
                              judge=judge)
        records.write_new()
        return merged
    kind, record_id = change["kind"], change["record_id"]
    fields: dict[str, Any] = dict(change.get("fields") or {})
    body: dict[str, Any] | None = change.get("body")
    if kind == "conflict":
        return _merge_conflict(store, session, records, record_id, fields, body)
    model = MODEL_OF.get(kind)
    if model is None:
        raise ValueError(f"Seen does not sync records of kind {kind!r}.")
    fields["id"] = record_id
    fields.pop("sealed", None)
    body_model = BODY_OF.get(model)
    row = records.get(model, record_id)
    try:
        # The model's fields validated as the model validates them, without building a mapped row.
        incoming: Any = _values(model).model_validate(fields)  # the model's fields, on a twin made at run time
        # A change to some clear fields of a record held (an allocation) may carry no body: it changes none.
        incoming_body = (body_model.model_validate(body or {})
                         if body_model and (body is not None or row is None or not isinstance(row, MutableRecord))
                         else None)
    except ValidationError as e:
        raise ValueError(f"The {kind} {record_id} is not a valid record: {_first_error(e)}") from e
    # A photo's change carries its image whole (checked even when held: a bad one is refused either way).
    image = image_from_sync(record_id, incoming.mime, (body or {}).get("image")) if model is Photo else None
    if judge is not None:
        judge(change, row, incoming, _changed_fields(store, records, change, row, incoming, incoming_body, image))
    if row is None:
        if incoming_body is not None:
            incoming.sealed = store.sealed_body(kind, incoming, incoming_body.model_dump(mode="json"))
        if image is not None:
            incoming.sealed = store.sealer.seal_bytes(kind, record_id, image)
        _rehash_child(store, incoming, incoming_body)
        records.add(model, incoming)
        if not issubclass(model, MutableRecord):
            records.set_clock(record_id, kind, change.get("clock") or "")
        _observe(store, change, incoming)
        return Merged(changed=True)
    if isinstance(row, MutableRecord):
        return _merge_fields(store, session, records, change, row, incoming, incoming_body, body, judge_conflicts)
    # Records without field clocks: the write with the later clock is kept whole.
    held = records.clock_of(record_id)
    clock = change.get("clock") or ""
    if held is not None and clock <= held:
        return Merged()
    for name in type(row).model_fields:
        if name not in ("id", "sealed"):
            setattr(row, name, getattr(incoming, name))
    if incoming_body is not None:
        store.seal(row, incoming_body)
    if image is not None:
        row.sealed = store.sealer.seal_bytes(kind, record_id, image)
    records.touch(row)
    records.set_clock(record_id, kind, clock)
    _observe(store, change, row)
    return Merged(changed=True)


def _merge_fields(store: Store, session: Session, records: Records, change: dict[str, Any], row: Any,
                  incoming: Any, incoming_body: Any, body: dict[str, Any] | None, judge_conflicts: bool) -> Merged:
    kind = change["kind"]
    ours = json.loads(row.field_clocks or "{}")
    theirs = json.loads(incoming.field_clocks or "{}")
    base: dict[str, str] = change.get("base_clocks") or {}
    current_body = store.opened(row).body if type(row) in BODY_OF else None
    result = Merged()
    new_body: dict[str, Any] | None = current_body.model_dump(mode="json") if current_body is not None else None
    incoming_clear = _dump(incoming)
    our_clear = _dump(row)
    for name, their_clock in sorted(theirs.items()):
        our_clock = ours.get(name, "")
        if their_clock == our_clock:
            continue
        present, their_value = _value(incoming_clear, body, name)
        if not present:
            continue
        _, our_value = _value(our_clear, new_body, name)
        crossed = judge_conflicts and name in base and base[name] != our_clock and our_clock != ""
        if crossed and their_value != our_value:
            won = their_clock > our_clock
            result.conflicts.append(_log_conflict(
                store, session, records, kind, row, name,
                winner=(their_clock, their_value) if won else (our_clock, our_value),
                loser=(our_clock, our_value) if won else (their_clock, their_value)))
        if their_clock < our_clock:
            continue
        ours[name] = their_clock
        result.changed = True
        if name.startswith("body."):
            assert new_body is not None
            new_body[name[5:]] = getattr(incoming_body, name[5:])
        else:
            setattr(row, name, getattr(incoming, name))
    if result.changed:
        row.field_clocks = json.dumps(ours, sort_keys=True)
        row.revision = max(row.revision, incoming.revision)
        row.updated_at = max(_aware(row.updated_at), _aware(incoming.updated_at))
        if new_body is not None:
            body_value = BODY_OF[type(row)].model_validate(new_body)
            store.seal(row, body_value)
            _rehash_child(store, row, body_value)
        records.touch(row)
        _observe(store, change, row)
    return result


def _changed_fields(store: Store, records: Records, change: dict[str, Any], row: Any, incoming: Any,
                    incoming_body: Any, image: bytes | None) -> set[str]:
    """The fields (clear names, and `body.<name>`) whose value merging this change would alter."""
    incoming_clear = _dump(incoming)
    new_body = incoming_body.model_dump(mode="json") if incoming_body is not None else {}
    if row is None:
        return ({n for n in incoming_clear if n != "id"} | {f"body.{n}" for n in new_body}
                | ({"body.image"} if image is not None else set()))
    body = change.get("body")
    stored_body = store.opened(row).body.model_dump(mode="json") if type(row) in BODY_OF else {}
    if isinstance(row, MutableRecord):
        ours = json.loads(row.field_clocks or "{}")
        theirs = json.loads(incoming.field_clocks or "{}")
        out = set()
        for name, their_clock in theirs.items():
            present, _ = _value(incoming_clear, body, name)
            if not present or their_clock <= ours.get(name, ""):
                continue
            if name.startswith("body."):
                if new_body.get(name[5:]) != stored_body.get(name[5:]):
                    out.add(name)
            elif name in type(row).model_fields and not same_value(getattr(row, name), getattr(incoming, name)):
                out.add(name)
        return out
    held = records.clock_of(row.id)
    if held is not None and (change.get("clock") or "") <= held:
        return set()  # an older write: merging it changes nothing
    out = {n for n in type(row).model_fields if n not in ("id", "sealed") and not same_value(
        getattr(row, n), getattr(incoming, n))}
    out |= {f"body.{n}" for n in set(new_body) | set(stored_body) if new_body.get(n) != stored_body.get(n)}
    if image is not None and (not row.sealed or store.sealer.open_bytes(KIND_OF[type(row)], row.id,
                                                                        row.sealed) != image):
        out.add("body.image")
    return out


def _utc(value: datetime) -> datetime | None:
    """A moment in UTC; None for one that cannot be (the last hours of year 9999 in a zone behind UTC)."""
    try:
        return _aware(value).astimezone(UTC)
    except OverflowError:
        return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _observe(store: Store, change: dict[str, Any], row: Any) -> None:
    clocks = [change.get("clock") or ""]
    if getattr(row, "field_clocks", None) is not None:  # a mutable record (or its values)
        clocks += list(json.loads(row.field_clocks or "{}").values())
    latest = max(clocks)
    if latest:
        store.clock.observe(latest)


def _rehash_child(store: Store, row: Any, body: Any) -> None:
    # The keyed hash of the council's id is keyed by each node's own data key: recompute it here.
    if isinstance(body, ChildBody):
        row.ref_hash = store.ref_hash(body.external_ref) if body.external_ref else ""


def _log_conflict(store: Store, session: Session, records: Records, kind: str, row: Any, name: str, *,
                  winner: tuple[str, Any], loser: tuple[str, Any]) -> Conflict:
    conflict_id = str(uuid.uuid5(CONFLICT_NS, f"{row.id}|{name}|{loser[0]}"))
    existing = records.get(Conflict, conflict_id)
    if existing is not None:
        return existing
    conflict = Conflict(id=conflict_id, kind=kind, record_id=row.id, child_id=_child_id_of(kind, row.id, {
        "child_id": getattr(row, "child_id", None)}), field=name, winner_clock=winner[0], loser_clock=loser[0])
    conflict.sealed = store.seal_payload("conflict", conflict_id, {"winner": winner[1], "loser": loser[1]})
    session.add(conflict)
    records.rows[(Conflict, conflict_id)] = conflict
    return conflict


def _merge_conflict(store: Store, session: Session, records: Records, record_id: str, fields: dict[str, Any],
                    body: dict[str, Any] | None) -> Merged:
    if records.get(Conflict, record_id) is not None:
        return Merged()
    fields = {**fields, "id": record_id}
    fields.pop("sealed", None)
    try:
        conflict = Conflict.model_validate(fields)
    except ValidationError as e:
        raise ValueError(f"The conflict {record_id} is not valid: {_first_error(e)}") from e
    conflict.sealed = store.seal_payload("conflict", record_id, body or {})
    session.add(conflict)
    records.rows[(Conflict, record_id)] = conflict
    return Merged(changed=True)


_VALUES: dict[type[SQLModel], type[BaseModel]] = {}


def _values(model: type[SQLModel]) -> type[BaseModel]:
    """A plain pydantic twin of a table model: the same fields, validated the same way, ~25x faster to make
    than a mapped row (which a record new to this node does not need: it is inserted in bulk)."""
    if model not in _VALUES:
        _VALUES[model] = create_model(f"{model.__name__}Values", **{  # type: ignore[call-overload]
            name: (info.annotation, info) for name, info in model.model_fields.items()})
    return _VALUES[model]


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
    if moments:
        rows = [tuple(_moment(v) if i in moments else v for i, v in enumerate(row)) for row in rows]
    conflict = ""
    if upsert:
        conflict = f' ON CONFLICT ("{upsert}") DO UPDATE SET ' + ", ".join(
            f'"{n}" = excluded."{n}"' for n in names if n != upsert)
    suffix = f' RETURNING "{returning}"' if returning else ""
    returned: list[Any] = []
    raw = psycopg_connection(session)
    per_statement = max(1, min(1000, 30000 // len(names)))
    try:
        # One multi-row VALUES a chunk (rows keep their order, and serial numbers follow it), with
        # PostgreSQL's own $n placeholders: a raw cursor does not parse the long statement in Python.
        with psycopg.RawCursor(raw) as cursor:
            for start in range(0, len(rows), per_statement):
                chunk = rows[start:start + per_statement]
                width = len(names)
                marks = ", ".join("(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
                                  for r in range(len(chunk)))
                statement = f'INSERT INTO "{table.name}" ({columns}) VALUES {marks}{conflict}{suffix}'  # noqa: S608
                cursor.execute(statement, [v for row in chunk for v in row])
                if returning:
                    returned += [r[0] for r in cursor.fetchall()]
    except psycopg.Error as e:
        raise DBAPIError.instance(f'INSERT INTO "{table.name}"', None, e, psycopg.Error) from e
    return returned if returning else None


def _moment(value: datetime | None) -> datetime | None:
    # As the column's SQLAlchemy type binds it: UTCDateTime takes only aware datetimes, kept in UTC.
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError("A date and time in this batch has no time zone.")
    return value.astimezone(UTC)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "the record"
    return f"{where}: {first.get('msg', 'not valid')}"


# ------------------------------------------------------------------------------------------------ devices


def issue_enrolment_code(store: Store, worker_id: str, issued_by: str, *, hours: int = 24) -> str:
    """A one-time code that enrols one device for `worker_id`. Only its hash is kept."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
    code = f"{code[:5]}-{code[5:]}"
    with store.session() as session:
        worker = session.get(Worker, worker_id)
        if worker is None or not worker.active:
            raise SyncRefused("There is no active worker with that id.")
        session.add(EnrolmentCode(code_hash=_code_hash(code), worker_id=worker_id, issued_by=issued_by,
                                  expires_at=utcnow() + timedelta(hours=hours)))
        audit.append(session, "issue_enrolment", "device", worker_id, worker_id=issued_by)
    return code


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace(" ", "").encode()).hexdigest()


def enrol_device(store: Store, code: str, name: str, address: str | None = None) -> tuple[Device, Worker, str]:
    """Spends an enrolment code: a new device for the code's worker, and its token (shown once). A code that
    is not valid (a guess) is refused and audited, with the client's `address` when known."""
    with store.session() as session:
        entry = session.get(EnrolmentCode, _code_hash(code))
        if entry is None or entry.used_at is not None or _aware(entry.expires_at) < utcnow():
            audit.refuse(session, audit.Refusal("", kind="enrolment_code", record_id="enrol", detail=(
                "not valid" if entry is None else "used already" if entry.used_at else "expired")
                + (f" from {address[:64]}" if address else "")))
            raise SyncRefused("That enrolment code is not valid: it may be mistyped, used already or expired. "
                              "Ask your manager or an administrator for a new one.", code="bad_code")
        worker = session.get(Worker, entry.worker_id)
        if worker is None or not worker.active:
            raise SyncRefused("The worker this code was issued for is no longer active.", code="bad_code")
        token = secrets.token_urlsafe(32)
        device = Device(worker_id=worker.id, name=name.strip()[:80] or "Unnamed device", token_hash=token_hash(token))
        entry.used_at = utcnow()
        session.add(entry)
        session.add(device)
        audit.append(session, "enrol", "device", device.id, worker_id=worker.id, device_id=device.id)
    return device, worker, token


def revoke_device(store: Store, device_id: str, *, by: str | None = None) -> Device:
    with store.session() as session:
        device = session.get(Device, device_id)
        if device is None:
            raise SyncRefused(f"There is no device {device_id}.", status=404, code="not_found")
        if device.revoked_at is None:
            device.revoked_at = utcnow()
            session.add(device)
            audit.append(session, "revoke", "device", device.id, worker_id=by, device_id=device.id)
    return device


def devices(store: Store) -> list[tuple[Device, Worker]]:
    with store.session() as session:
        rows = session.exec(select(Device, Worker).where(Device.worker_id == Worker.id)
                            .order_by(col(Device.enrolled_at)))
        return [(d, w) for d, w in rows]


def device_for_token(store: Store, token: str) -> tuple[Device, Worker]:
    """The device a token belongs to; a revoked device is told to wipe itself."""
    if not token:
        raise _no_token()
    with store.session() as session:
        caller = _caller(session, token_hash(token))
    assert caller.device is not None
    return caller.device, caller.worker


@dataclass
class Caller:
    """Who a sync request comes from, read with one query in the request's own transaction.

    `device` and `worker` are what the tables held as the request began, not attached to any session.
    """

    device: Device | None  # None when a page is pulled for a worker, not a device (tests, the hosted app)
    worker: Worker
    teams: set[str]  # the teams whose children the worker may see besides their own (Store.managed_team_ids)
    waiting: bool = False  # whether the server's outbox holds writes not yet in the change log
    latest: int = 0  # the change log's latest number, as the request began
    fingerprint: str | None = None  # the directory's (`_directory_fingerprint`), when read with the caller


_DEVICE, _WORKER, _MANAGED = (table_of(model) for model in (Device, Worker, ManagedTeam))
# The directory's fingerprint on PostgreSQL (see `_directory_fingerprint`).
_FINGERPRINT_SQL = "concat_ws(',', " + ", ".join(
    f"(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM \"{model.__tablename__}\")"
    for model in (Team, Worker, ManagedTeam)) + ")"
# SQLAlchemy's own select: SQLModel's is typed for models and up to four columns, not columns of three tables.
_WHO = (
    core_select(*(c.label(f"device_{c.name}") for c in _DEVICE.c), *(c.label(f"worker_{c.name}") for c in _WORKER.c),
                _MANAGED.c.team_id.label("managed_team"),
                exists(select(table_of(Outbox).c.seq)).label("waiting"),
                select(func.max(table_of(ChangeLog).c.seq)).scalar_subquery().label("latest"))
    .select_from(_DEVICE.outerjoin(_WORKER, _WORKER.c.id == _DEVICE.c.worker_id)
                 .outerjoin(_MANAGED, _MANAGED.c.manager_id == _DEVICE.c.worker_id))
    .where(_DEVICE.c.token_hash == bindparam("token_hash")))
_CALLER = Hot(_WHO)
# For a pull, on PostgreSQL, with the directory's fingerprint as one more column: a device with nothing new
# then costs two statements, this and the children it may see.
_CALLER_PULLING = Hot(_WHO, _WHO.add_columns(literal_column(f"({_FINGERPRINT_SQL})").label("fingerprint")))
_SEEN_NOW = Hot(update(_DEVICE).where(_DEVICE.c.id == bindparam("device_id")).values(last_seen_at=bindparam("now")))


def _no_token() -> SyncRefused:
    return SyncRefused("This request has no device token. Enrol the device first.", status=401, code="no_token")


_DEVICE_COLUMNS = [c.name for c in _DEVICE.c]
_WORKER_COLUMNS = [c.name for c in _WORKER.c]


def _caller(session: Session, key: str, *, pulling: bool = False) -> Caller:
    """The device whose token hashes to `key`, its worker and their teams, with one query (every sync
    request's first step); a revoked device is told to wipe itself."""
    if not key:
        raise _no_token()
    rows = (_CALLER_PULLING if pulling else _CALLER).rows(session, {"token_hash": key})
    if not rows:
        # Audited by a fragment of the token's hash: repeated tries with one token read as one caller.
        audit.refuse(session, audit.Refusal("", kind="device_token", record_id=f"token-{key[:12]}",
                                            detail="unknown token"))
        raise SyncRefused("This device is not enrolled with this server.", status=401, code="unknown_device")
    first = rows[0]
    devices, workers = len(_DEVICE_COLUMNS), len(_WORKER_COLUMNS)
    found = dict(zip(_DEVICE_COLUMNS, first[:devices], strict=True))
    owner = dict(zip(_WORKER_COLUMNS, first[devices:devices + workers], strict=True))
    if found["revoked_at"] is not None or owner["id"] is None or not owner["active"]:
        audit.refuse(session, audit.Refusal("", kind="device_token", record_id=found["id"], worker_id=owner["id"],
                                            device_id=found["id"], detail="revoked device"))
        raise SyncRefused("This device has been revoked. Seen has wiped its local records; "
                          "ask an administrator to enrol it again.", status=403, code="revoked", wipe=True)
    now = utcnow()
    if found["last_seen_at"] is None or now - _aware(found["last_seen_at"]) > timedelta(minutes=1):
        _SEEN_NOW.rows(session, {"device_id": found["id"], "now": now})
        found["last_seen_at"] = now
    # Snapshots for this request, made without the ORM's bookkeeping (a mapped row costs ~50 µs to make),
    # so they cannot be changed or added to a session.
    device, worker = Device.model_construct(**found), Worker.model_construct(**owner)
    _managed, waiting, latest, *fingerprint = first[devices + workers:]
    teams = {row[devices + workers] for row in rows if row[0] == device.id} - {None}
    if worker.role == Role.manager and worker.team_id:
        teams.add(worker.team_id)  # as Store.managed_team_ids: a manager sees their own team
    return Caller(device, worker, teams, waiting=bool(waiting), latest=int(latest or 0),
                  fingerprint=fingerprint[0] if fingerprint else None)


def _given(store: Store, device: Device | None, worker: Worker) -> Any:
    """A caller already known (not looked up by token): its teams and the outbox are read in the transaction."""
    def resolve(session: Session) -> Caller:
        waiting = bool(_OUTBOX_WAITING.rows(session))
        return Caller(device, worker, store.managed_team_ids(session, worker), waiting=waiting,
                      latest=_latest_seq(session))
    return resolve


_OUTBOX_WAITING = Hot(select(table_of(Outbox).c.seq).limit(1))


# ------------------------------------------------------------------------------------------------ server: push


@dataclass
class PushOutcome:
    applied: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    outdated: list[str] = field(default_factory=list)  # held, but changing nothing: later writes won
    conflicts: int = 0
    cursor: int = 0


def apply_batch(store: Store, device: Device, worker: Worker, batch_id: str,
                changes: list[dict[str, Any]]) -> PushOutcome:
    """Applies a device's batch in one transaction: all of it, or (if any change is refused) none of it.

    The batch is merged without the push lock, and the lock is taken only to number its change-log rows
    and extend the audit chain, as the transaction's last step, so pushes overlap but commit one at a
    time in the order they are numbered. If another push held some of the same records or changes at the
    same time (a unique key or a deadlock stops this one), the batch is applied again with the lock taken
    first, as one push at a time: then what the other applied counts as duplicates.
    """
    return _apply(store, _given(store, device, worker), batch_id, changes)


def push(store: Store, key: str, batch_id: str, changes: list[dict[str, Any]],
         encoded: list[bytes] | None = None) -> PushOutcome:
    """`apply_batch` for the device whose token hashes to `key`, found in the batch's own transaction.

    `encoded`, when given, is each change as its canonical JSON (what the device signed): the change log
    seals those bytes rather than dumping the change to JSON again.
    """
    return _apply(store, lambda session: _caller(session, key), batch_id, changes, encoded)


def _apply(store: Store, resolve: Any, batch_id: str, changes: list[dict[str, Any]],
           encoded: list[bytes] | None = None) -> PushOutcome:
    if store.engine.dialect.name != "postgresql":
        absorb_local_changes(store)
    callers: list[Caller] = []  # who pushed, once known: a refusal is audited in their name

    def identified(session: Session) -> Caller:
        callers.append(resolve(session))
        return callers[-1]

    try:
        for lock_first in (False, True, True):
            try:
                return _apply_batch(store, identified, batch_id, changes, encoded, lock_first=lock_first)
            except IntegrityError:
                if lock_first:
                    raise
            except OperationalError as e:
                if not _deadlock(e):
                    raise
        return _apply_batch(store, identified, batch_id, changes, encoded, lock_first=True)
    except SyncRefused as refusal:
        if refusal.code == "not_allowed" and callers and callers[-1].device is not None:
            _audit_refusal(store, callers[-1].worker, callers[-1].device, batch_id, refusal)
        raise
    except IntegrityError as e:
        raise SyncRefused("A change in this batch refers to a record the server does not have (or repeats "
                          "one with different contents). Nothing in the batch was applied.", status=409,
                          code="integrity") from e
    except (StatementError, UnicodeError, OverflowError) as e:
        # A value the database (or its driver: SQLite's date adapter) cannot take, such as a date past the
        # calendar's end; any other database failure is the server's, and stays a 500.
        if isinstance(e, StatementError) and not (isinstance(e, DataError) or isinstance(
                e.orig, OverflowError | UnicodeError | ValueError)):
            raise
        raise SyncRefused("A change in this batch holds a value the database cannot store (a date past the "
                          "calendar's end, say). Nothing in the batch was applied.", status=422, code="invalid") from e
    except ValueError as e:
        raise SyncRefused(f"{e} Nothing in the batch was applied.", status=422, code="invalid") from e


def _deadlock(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "40P01"


def _apply_batch(store: Store, identified: Any, batch_id: str, changes: list[dict[str, Any]],
                 encoded: list[bytes] | None, *, lock_first: bool) -> PushOutcome:
    outcome = PushOutcome()
    with store.session() as session:
        caller = identified(session)  # refused here (unknown or revoked device) before anything is read
        device, worker, teams = caller.device, caller.worker, caller.teams
        assert device is not None  # a push always comes from a device
        if caller.waiting and store.engine.dialect.name == "postgresql":
            absorb_local_changes(store)  # writes made on the server itself reach the log first
        if lock_first:
            _lock(session)
        seen_ids = {row[0] for row in _LOGGED.rows(session, {"change_ids": [c["change_id"] for c in changes]})}
        todo: list[dict[str, Any]] = []
        plain: dict[str, bytes] = {}
        for i, change in enumerate(changes):
            if change["change_id"] in seen_ids:
                outcome.duplicates.append(change["change_id"])
                continue
            seen_ids.add(change["change_id"])
            todo.append(change)
            if encoded is not None:
                plain[change["change_id"]] = encoded[i]
        records = Records(session)
        records.prefetch(todo, for_update=True)
        # Children whose clocks this batch could leave unworkable, and whether they could be worked out before.
        timed = {i for i in (c["record_id"] if c["kind"] == "child" else (c.get("fields") or {}).get("child_id")
                             for c in todo if c["kind"] in ("child", "placement")) if isinstance(i, str)}
        unworkable_before = _unworkable(session, timed, today_in_england()) if timed else {}
        refused: list[Refused] = []
        log_rows: list[tuple[Any, ...]] = []
        events: list[dict[str, str | None]] = []
        now = utcnow()
        who = policy.actor(worker, teams)
        births: dict[str, date | None] = {}
        wall_ms = int(now.timestamp() * 1000)
        judge = _judge(who, records, session, now)
        for change in todo:
            child_id = _child_id_of(change["kind"], change["record_id"], change.get("fields") or {})
            no = (_may_make(records, who, change) or _clock_refusal(change, wall_ms)
                  or _date_refusal(store, records, change, births))
            if no is None:
                try:
                    merged = merge_change(store, session, change, judge_conflicts=True, records=records, judge=judge)
                except NotPermitted as e:
                    no = e.no
            if no is not None:
                refused.append(Refused(change["change_id"], change["kind"], change["record_id"],
                                       child_id if isinstance(child_id, str) else None, no))
                continue
            log_rows.append(_log_row(store, change, batch_id=batch_id, device_id=device.id, child_id=child_id,
                                     at=now, encoded=plain.get(change["change_id"])))
            for conflict in merged.conflicts:
                log_rows.append(_log_row(store, conflict_as_change(store, conflict), batch_id=batch_id,
                                         device_id=device.id, child_id=conflict.child_id, at=now))
            outcome.conflicts += len(merged.conflicts)
            if not (merged.changed or merged.conflicts):
                # Logged (so it is held once), but it changed nothing: the server holds a later write of all it
                # carries. The device is told so, not that it was applied.
                outcome.outdated.append(change["change_id"])
                continue
            events.append({"action": "sync", "kind": change["kind"], "record_id": change["record_id"],
                           "worker_id": worker.id, "device_id": device.id, "child_id": child_id})
            outcome.applied.append(change["change_id"])
        if refused:
            raise _refusal(refused)
        records.write_new()
        if timed:
            _refuse_unworkable(session, todo, timed, unworkable_before)
        # The last step before commit, under the lock: numbering the changes and extending the audit
        # chain. Seq order is then commit order, so a node pulling by cursor never skips a change.
        if not lock_first:
            _lock_log_and_chain(session)
        seqs = insert_rows(session, table_of(ChangeLog), list(LOG_COLUMNS), log_rows,
                           returning="seq")
        audit.append_many(session, events, write=insert_rows)
        session.flush()
        # Under the lock, the batch's last number is the log's latest.
        outcome.cursor = max(seqs) if seqs else _latest_seq(session)
    return outcome


_LOCK_LOG_AND_CHAIN = Hot(text(f"SELECT pg_advisory_xact_lock({SYNC_LOCK}, hashtext(current_schema())), "
                               f"pg_advisory_xact_lock({audit.CHAIN_LOCK}, hashtext(current_schema()))"))


def _lock_log_and_chain(session: Session) -> None:
    """The push lock and the audit chain's, in one statement (a round trip fewer while pushes queue), and
    the chain's head, read once both are held."""
    if session.get_bind().dialect.name == "postgresql":
        _LOCK_LOG_AND_CHAIN.rows(session)
    audit.hold_chain(session, locked=True)


@dataclass(frozen=True)
class Refused:
    """One change of a push the policy refused, and why."""

    change_id: str
    kind: str
    record_id: str
    child_id: str | None
    no: policy.No


def _refusal(refused: list[Refused]) -> SyncRefused:
    reasons = {r.change_id: r.no.message for r in refused}
    first = refused[0].no.message
    more = f" ({len(refused) - 1} more change(s) refused too.)" if len(refused) > 1 else ""
    error = SyncRefused(f"This change is not allowed: {first}{more} None of the batch was applied.", status=403,
                        code="not_allowed", change_ids=[r.change_id for r in refused])
    error.reasons = reasons
    error.refused = refused
    return error


def _audit_refusal(store: Store, worker: Worker, device: Device, batch_id: str, refusal: SyncRefused) -> None:
    # The batch's own transaction was rolled back; the refusal is still worth a trace: one event a change
    # refused, naming the record, the child and the rule, with the batch's id.
    refused = refusal.refused or [Refused(change_id, "sync", batch_id, None, policy.No("not_allowed", ""))
                                  for change_id in refusal.change_ids]
    with store.session() as session:
        audit.append_many(session, [{
            "action": "denied", "kind": r.kind, "record_id": r.record_id, "worker_id": worker.id,
            "device_id": device.id, "child_id": r.child_id,
            "detail": f"sync {batch_id} change {r.change_id}: {r.no.rule}"} for r in refused[:100]])


def record_tampered(store: Store, device: Device, worker: Worker, batch_id: str, what: str, reason: str) -> None:
    """A batch or upload refused as altered on the way (its signature does not match, or it repeats a change):
    audited in the device's name."""
    with store.session() as session:
        audit.append(session, "denied", what, batch_id, worker_id=worker.id, device_id=device.id, detail=reason)


_NOT_SEEN = policy.No("not_this_workers_child", "The change is for a child who is not on this worker's caseload "
                                                "or team, or who does not exist.")


def _may_make(records: Records, who: policy.Actor, change: dict[str, Any]) -> policy.No | None:
    """Only changes to children the device's worker may see now (as the server sees them)."""
    kind, record_id = change["kind"], change["record_id"]
    fields = change.get("fields") or {}
    worker = who.worker
    if kind not in MODEL_OF:
        return policy.No("not_synced", f"Seen does not take records of kind {kind!r} from a device.")
    if worker.role == Role.admin.value and not who.teams:
        return policy.No("admin", "An administrator's device records no case work.")
    if kind == "child":
        child = records.get(Child, record_id)
        if child is None:
            return None  # a new child: the policy decides, on the whole record (`_judge`)
        return None if who.may_see(child) else _NOT_SEEN
    child_id = fields.get("child_id")
    existing = records.get(MODEL_OF[kind], record_id)
    if existing is not None and getattr(existing, "child_id", None) != child_id:
        return policy.No("moved", "A record cannot be moved to another child.")
    child = records.get(Child, child_id) if isinstance(child_id, str) else None
    return None if child is not None and who.may_see(child) else _NOT_SEEN


# The date of each kind of record a device may send that cannot be before the child's birth.
DATED_FIELDS = {"visit": ("visited_at", "visit"), "wishes_and_feelings": ("on", "direct work"),
                "life_story": ("on", "life-story entry"), "care_plan_action": ("due", "action's due")}


def _date_refusal(store: Store, records: Records, change: dict[str, Any],
                  births: dict[str, date | None]) -> policy.No | None:
    """A record dated before its child's birth is refused, as the screens refuse one (storage/record_dates.py);
    a date the server already holds for the record is not judged again."""
    kind, record_id = change["kind"], change["record_id"]
    if kind not in DATED_FIELDS:
        return None
    name, what = DATED_FIELDS[kind]
    fields = change.get("fields") or {}
    try:
        if name == "visited_at":
            day = local_date(datetime.fromisoformat(str(fields[name])))
        else:
            day = date.fromisoformat(str(fields[name])[:10])
    except (KeyError, ValueError):
        return None  # no date, or not one: the merge says what is wrong with the record
    held = records.get(MODEL_OF[kind], record_id)
    if held is not None and getattr(held, name) is not None and _day_of(getattr(held, name)) == day:
        return None
    child_id = fields.get("child_id")
    child = records.get(Child, child_id) if isinstance(child_id, str) else None
    if child is None:
        return None
    if child.id not in births:
        births[child.id] = store.opened(child).body.date_of_birth
    problem = date_problem(day, CaseDates(born=births[child.id]), what)
    if problem is None:
        return None
    return policy.No("before_birth", f"The {kind.replace('_', ' ')} {record_id} cannot be taken: {problem.message}")


def _day_of(value: date | datetime) -> date:
    return local_date(value) if isinstance(value, datetime) else value


def _unworkable(session: Session, child_ids: set[str], today: date) -> dict[str, str]:
    """Of these children (as the transaction sees them), those whose clocks cannot be worked out, and why."""
    children = list(session.exec(select(Child).where(col(Child.id).in_(sorted(child_ids)))))
    return clocks_and_problems(cases_for(session, children), today)[1]


def _refuse_unworkable(session: Session, changes: list[dict[str, Any]], child_ids: set[str],
                       before: dict[str, str]) -> None:
    """Refuses the child and placement changes that leave a child's clocks impossible to work out (as the
    import refuses such a row): one such child would otherwise show nothing due, and tell no one. A child
    whose record was already so (an old import) is not held against later edits."""
    after = _unworkable(session, child_ids, today_in_england())
    newly = {child_id: why for child_id, why in after.items() if child_id not in before}
    if not newly:
        return
    refused = []
    for change in changes:
        child_id = change["record_id"] if change["kind"] == "child" else (change.get("fields") or {}).get("child_id")
        if change["kind"] in ("child", "placement") and child_id in newly:
            refused.append(Refused(change["change_id"], change["kind"], change["record_id"], child_id, policy.No(
                "unworkable", f"Seen could not work out what is due for this child: {newly[child_id]}. Send the "
                              "child with what their clocks need (a child in care with their placement).")))
    raise _refusal(refused)


def _clock_refusal(change: dict[str, Any], wall_ms: int) -> policy.No | None:
    """A change whose clocks are not clocks, or run more than a few minutes ahead of the server's time: taken,
    its version would win over every honest edit made until then."""
    clocks = [change["clock"]] if change.get("clock") else []
    field_clocks = (change.get("fields") or {}).get("field_clocks")
    if isinstance(field_clocks, str):
        try:
            parsed = json.loads(field_clocks)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return policy.No("bad_clock", "The change's field clocks are not valid.")
        clocks += [c if isinstance(c, str) else "" for c in parsed.values()]
    for clock in clocks:
        why = hlc.check(clock, wall_ms)
        if why:
            return policy.No("clock_ahead" if "ahead" in why else "bad_clock", f"The change was not taken: {why}.")
    return None


def _judge(who: policy.Actor, records: Records, session: Session, now: datetime) -> Judge:
    """The policy's judgement of each change of a device's push, with what it needs looked up in `records`."""
    workers: dict[str, Worker | None] = {}

    def worker(worker_id: str) -> Worker | None:
        if worker_id not in workers:
            workers[worker_id] = session.get(Worker, worker_id)
        return workers[worker_id]

    look = policy.Lookup(child=lambda child_id: records.get(Child, child_id),
                         record=lambda model, record_id: records.get(model, record_id) if record_id else None,
                         worker=worker, now=now)

    def judge(change: dict[str, Any], row: Any, incoming: Any, changed: set[str]) -> None:
        no = policy.why_not_change(who, change["kind"], row, incoming, changed, look)
        if no is not None:
            raise NotPermitted(no)

    return judge


LOG_COLUMNS = ("change_id", "batch_id", "device_id", "kind", "record_id", "child_id", "applied_at", "sealed")


def _log_row(store: Store, change: dict[str, Any], *, batch_id: str, device_id: str | None,
             child_id: str | None, at: datetime, encoded: bytes | None = None) -> tuple[Any, ...]:
    """A change-log row; `encoded` is the change as JSON already (as `seal_payload` would dump it), if known."""
    sealed = (store.sealer.seal_bytes("change_log", change["change_id"], encoded) if encoded is not None
              else store.seal_payload("change_log", change["change_id"], change))
    return (change["change_id"], batch_id, device_id, change["kind"], change["record_id"], child_id, at, sealed)


_CHANGE_ID = table_of(ChangeLog).c.change_id
_LOGGED = Hot(select(_CHANGE_ID).where(_CHANGE_ID.in_(bindparam("change_ids", expanding=True))),
              select(_CHANGE_ID).where(_CHANGE_ID == any_(bindparam("change_ids", type_=ARRAY(String)))))


def _log(store: Store, session: Session, change: dict[str, Any], *, batch_id: str, device_id: str | None,
         child_id: str | None) -> None:
    entry = ChangeLog(change_id=change["change_id"], batch_id=batch_id, device_id=device_id, kind=change["kind"],
                      record_id=change["record_id"], child_id=child_id)
    entry.sealed = store.seal_payload("change_log", entry.change_id, change)
    session.add(entry)


def _latest_seq(session: Session) -> int:
    return int(_LATEST.value(session) or 0)


_LATEST = Hot(select(func.max(table_of(ChangeLog).c.seq)))


def absorb_local_changes(store: Store) -> int:
    """Moves changes written on the server itself (the hosted app) from its outbox into the change log."""
    with store.session() as session:
        if session.exec(select(Outbox.seq).limit(1)).first() is None:
            return 0
        _lock(session)
        entries = list(session.exec(select(Outbox).order_by(col(Outbox.seq)).limit(1000)))
        for entry in entries:
            change = {"change_id": entry.change_id, **store.open_payload("outbox", entry.change_id, entry.sealed)}
            if session.exec(select(ChangeLog.seq).where(ChangeLog.change_id == entry.change_id)).first() is None:
                if change["kind"] in MODEL_OF and not issubclass(MODEL_OF[change["kind"]], MutableRecord):
                    session.merge(SyncClock(record_id=change["record_id"], kind=change["kind"],
                                            clock=change.get("clock") or ""))
                _log(store, session, change, batch_id="local", device_id=None,
                     child_id=_child_id_of(change["kind"], change["record_id"], change.get("fields") or {}))
            session.delete(entry)
        return len(entries)


# ------------------------------------------------------------------------------------------------ server: audit


@dataclass
class AuditOutcome:
    recorded: list[str] = field(default_factory=list)  # by the events' ids on the node
    duplicates: list[str] = field(default_factory=list)


def record_device_audit(store: Store, device: Device, worker: Worker, batch_id: str,
                        events: list[dict[str, Any]]) -> AuditOutcome:
    """Appends audit events a device's node wrote to the server's own chain, in their order, each once.

    Each is recorded as the node wrote it (when, what) but with the sending device's id and its worker (an
    event naming no worker is the device's worker's: a device acts for no one else), with its origin (the
    device and the node's event id, unique: an upload sent again is held once) and when the server received
    it (an event received long after its time shows as backdated). The device speaks only for its own
    worker and the children they may see: if any event names another worker, or a child the worker may not
    see (other than a refusal on the node), none of the upload is recorded, and the refusal is audited.
    """
    with store.session() as session:
        visible = _visible_child_ids(session, worker, store.managed_team_ids(session, worker))
    foreign = [e["id"] for e in events if e.get("worker_id") not in (None, worker.id)]
    latest = utcnow() + policy.CLOCK_SLACK
    future = [e["id"] for e in events if (at := _utc(e["at"])) is None or at > latest]
    unseen = [e["id"] for e in events if e["id"] not in foreign and e.get("action") != "denied"
              and (child := e.get("child_id") or (e["record_id"] if e.get("kind") == "child" else None))
              and child not in visible]
    if foreign or unseen or future:
        refused = foreign + unseen + future
        with store.session() as session:
            audit.append(session, "denied", "audit", batch_id, worker_id=worker.id, device_id=device.id,
                         detail=",".join(refused[:20]))
        why = " and ".join(part for part in (
            f"{len(foreign)} name another worker" if foreign else "",
            f"{len(unseen)} concern a child this worker may not see" if unseen else "",
            f"{len(future)} are dated in the future (check the device's date and time)" if future else "") if part)
        raise SyncRefused(f"Of the audit events in this upload, {why}; a device sends only its own worker's, about "
                          "children they may see, as they happened. None of the upload was recorded.", status=403,
                          code="not_allowed", change_ids=refused)
    outcome = AuditOutcome()
    with store.session() as session:
        audit.hold_chain(session)  # from here no other upload appends: what is held stays as read
        origins = {f"{device.id}:{e['id']}": e for e in events}
        held = set(session.exec(select(AuditEvent.origin).where(col(AuditEvent.origin).in_(list(origins)))))
        new: list[dict[str, Any]] = []
        now = utcnow()
        for origin, event in origins.items():
            if origin in held:
                outcome.duplicates.append(event["id"])
                continue
            new.append({"at": _utc(event["at"]), "worker_id": worker.id,
                        "device_id": device.id, "action": event["action"], "kind": event["kind"],
                        "record_id": event["record_id"], "child_id": event.get("child_id"),
                        "detail": event.get("detail") or "", "origin": origin, "received_at": now})
            outcome.recorded.append(event["id"])
        audit.append_many(session, new, write=insert_rows)
    return outcome


# ------------------------------------------------------------------------------------------------ server: pull


@dataclass
class PullPage:
    changes: list[dict[str, Any]]
    removals: list[str]
    directory: dict[str, list[dict[str, Any]]]
    cursor: int
    more: bool
    directory_version: str = ""


def pull_page(store: Store, worker: Worker, *, cursor: int, held: Iterable[str], child_ids: list[str] | None,
              limit: int = 200, children_per_page: int = 10, directory_version: str = "",
              max_bytes: int = MESSAGE_BYTES) -> PullPage:
    """One page of what this worker's device should hold: children it lacks whole, then the log after `cursor`.

    `held` is the children the device holds now; any it may no longer see are returned as removals.
    A page of whole children carries the log's latest number as its cursor (they are read after it, so
    they hold every change up to it), unless the log has changes the device still lacks for children it
    holds: then the cursor stays, and the log is read from there once every child is on the device.
    The directory (teams and workers) is sent only when it differs from `directory_version`, the version
    the device last received. A page stops at `max_bytes` (photos make records big) as well as at its
    counts, but always holds at least one child or change.
    """
    return _pull(store, _given(store, None, worker), cursor=cursor, held=held,
                 child_ids=child_ids, limit=limit, children_per_page=children_per_page,
                 directory_version=directory_version, max_bytes=max_bytes)


def pull(store: Store, key: str, *, cursor: int, held: Iterable[str], child_ids: list[str] | None,
         limit: int = 200, directory_version: str = "") -> PullPage:
    """`pull_page` for the device whose token hashes to `key`, found in the page's own transaction."""
    return _pull(store, lambda session: _caller(session, key, pulling=True), cursor=cursor, held=held,
                 child_ids=child_ids,
                 limit=limit, directory_version=directory_version)


def _pull(store: Store, resolve: Any, *, cursor: int, held: Iterable[str], child_ids: list[str] | None,
          limit: int = 200, children_per_page: int = 10, directory_version: str = "",
          max_bytes: int = MESSAGE_BYTES) -> PullPage:
    # A device with nothing new costs four plain queries: who it is (with the log's latest number), which
    # children it may see, the log after its cursor for them, and the directory's fingerprint.
    if store.engine.dialect.name != "postgresql":
        absorb_local_changes(store)
    held = set(held)
    with store.session() as session:
        caller: Caller = resolve(session)
        if caller.waiting and store.engine.dialect.name == "postgresql":
            absorb_local_changes(store)
            caller.latest = _latest_seq(session)
        worker = caller.worker
        visible = _visible_child_ids(session, worker, caller.teams)
        if child_ids is not None:
            refused = [c for c in child_ids if c not in visible]
            if refused:
                for child_id in refused:
                    # Noted on the transaction: recorded after it rolls back with the refusal below.
                    audit.refuse(session, audit.Refusal(
                        "not this worker's child", kind="child", record_id=child_id, worker_id=worker.id,
                        device_id=caller.device.id if caller.device is not None else None))
                raise SyncRefused("That child is not on this worker's caseload or team, or does not exist.",
                                  status=403, code="not_allowed")
            scope = set(child_ids)
            removals: list[str] = []
        else:
            scope = visible
            removals = sorted(held - visible)
        latest = caller.latest
        changes: list[dict[str, Any]] = []
        new_children = sorted(scope - held)
        whole = _children_within(session, new_children[:children_per_page], max_bytes)
        more = len(new_children) > len(whole)
        next_cursor = cursor
        if whole:
            changes.extend(_whole_children(store, session, whole))
            # A device taking a child's whole record is a read the trail keeps: who, which child, which
            # device. (Later pages carry only changes to children the device already holds.)
            device_id = caller.device.id if caller.device is not None else None
            audit.append_many(session, [{"action": "read", "kind": "child", "record_id": child_id,
                                         "worker_id": worker.id, "device_id": device_id, "child_id": child_id,
                                         "detail": "downloaded to the device"} for child_id in whole])
            if not _log_waiting(session, cursor, latest, sorted(scope & held)):
                next_cursor = latest
        elif scope and latest > cursor:
            rows = _LOG_PAGE.rows(session, {"cursor": cursor, "latest": latest, "scope": sorted(scope),
                                            "limit": limit, "max_bytes": max_bytes})
            changes.extend(store.open_payload("change_log", change_id, sealed) for _seq, change_id, sealed in rows)
            more = len(rows) == limit or sum(len(sealed) for _seq, _id, sealed in rows) >= max_bytes
            next_cursor = rows[-1][0] if more else latest
        else:
            next_cursor = latest
        fingerprint = caller.fingerprint if caller.fingerprint is not None else _directory_fingerprint(session)
        directory, version = _directory(store, session, worker, directory_version, fingerprint)
        return PullPage(changes=changes, removals=removals, directory=directory,
                        cursor=int(next_cursor or 0), more=more, directory_version=version)


_CHILD = table_of(Child)
_LOG = table_of(ChangeLog)


def _visible_child_ids(session: Session, worker: Worker, teams: set[str]) -> set[str]:
    """The ids of `Store.visible_children`: open children on the worker's caseload or in their teams."""
    if teams:
        return {row[0] for row in _VISIBLE_IN_TEAMS.rows(session, {"worker_id": worker.id, "teams": sorted(teams)})}
    return {row[0] for row in _VISIBLE_OWN.rows(session, {"worker_id": worker.id})}


_VISIBLE_OWN = Hot(select(_CHILD.c.id).where(_CHILD.c.closed_on.is_(None),
                                             _CHILD.c.worker_id == bindparam("worker_id")))
_VISIBLE_IN_TEAMS = Hot(*(select(_CHILD.c.id).where(_CHILD.c.closed_on.is_(None),
                                                    (_CHILD.c.worker_id == bindparam("worker_id")) | in_teams)
                          for in_teams in (_CHILD.c.team_id.in_(bindparam("teams", expanding=True)),
                                           _CHILD.c.team_id == any_(bindparam("teams", type_=ARRAY(String))))))


def _log_page_query(in_scope: Any) -> Any:
    # `_within_bytes` for the change log, as a Core query of the three columns a page needs.
    first = (select(_LOG.c.seq, func.length(_LOG.c.sealed).label("size"))
             .where(_LOG.c.seq > bindparam("cursor"), _LOG.c.seq <= bindparam("latest"), in_scope)
             .order_by(_LOG.c.seq).limit(bindparam("limit")).subquery())
    sized = select(first.c.seq, (func.sum(first.c.size).over(order_by=first.c.seq) - first.c.size)
                   .label("before")).subquery()
    return (select(_LOG.c.seq, _LOG.c.change_id, _LOG.c.sealed).join(sized, sized.c.seq == _LOG.c.seq)
            .where(sized.c.before < bindparam("max_bytes")).order_by(_LOG.c.seq))


_LOG_PAGE = Hot(_log_page_query(_LOG.c.child_id.in_(bindparam("scope", expanding=True))),
                _log_page_query(_LOG.c.child_id == any_(bindparam("scope", type_=ARRAY(String)))))


def _within_bytes(model: type[Outbox] | type[ChangeLog], condition: Any, limit: int, max_bytes: int) -> Any:
    """The rows of `model` (the outbox or the change log) meeting `condition`, in `seq` order: at most `limit`,
    and none after their sealed contents reach `max_bytes` (the first is taken however big it is).

    The sizes are summed in the database, so rows left for the next message are not read.
    """
    seq, size = col(model.seq), func.length(col(model.sealed))
    first = select(seq.label("seq"), size.label("size")).where(condition).order_by(seq).limit(limit).subquery()
    before = (func.sum(first.c.size).over(order_by=first.c.seq) - first.c.size).label("before")
    sized = select(first.c.seq, before).subquery()
    return (select(model).join(sized, sized.c.seq == seq).where(sized.c.before < max_bytes).order_by(seq))


def _children_within(session: Session, child_ids: list[str], max_bytes: int) -> list[str]:
    """The first of these children whose photos (the bulk of a child's records) fit in `max_bytes`; at least one."""
    if len(child_ids) <= 1:
        return child_ids
    sizes = dict(session.exec(select(Photo.child_id, func.sum(func.length(col(Photo.sealed))))
                              .where(col(Photo.child_id).in_(child_ids)).group_by(Photo.child_id)).all())
    taken: list[str] = []
    total = 0
    for child_id in child_ids:
        total += int(sizes.get(child_id) or 0) * 4 // 3  # base64 on the wire
        if taken and total > max_bytes:
            break
        taken.append(child_id)
    return taken


def _log_waiting(session: Session, cursor: int, latest: int, child_ids: list[str]) -> bool:
    """Whether the log holds changes after `cursor` (up to `latest`) for these children."""
    return bool(child_ids) and session.exec(
        select(ChangeLog.seq).where(col(ChangeLog.seq) > cursor, col(ChangeLog.seq) <= latest,
                                    col(ChangeLog.child_id).in_(child_ids)).limit(1)).first() is not None


def _whole_children(store: Store, session: Session, child_ids: list[str]) -> list[dict[str, Any]]:
    """These children with every record about them, as changes: one query a table for all of them."""
    children = {c.id: c for c in session.exec(select(Child).where(col(Child.id).in_(child_ids)))}
    parts: dict[str, list[SQLModel]] = {child_id: [] for child_id in child_ids}
    for model in CHILD_PARTS:
        if model is Draft:
            continue  # drafts stay on the device that typed them
        for row in session.exec(select(model).where(col(model.child_id).in_(child_ids))):  # type: ignore[attr-defined]
            if model is Photo and not row.sealed:  # type: ignore[attr-defined]
                continue  # a photo whose image never arrived (sent by a Seen that did not send images)
            parts[row.child_id].append(row)  # type: ignore[attr-defined]
    unclocked = [row.id for rows in parts.values() for row in rows  # type: ignore[attr-defined]
                 if not isinstance(row, MutableRecord)]
    clocks: dict[str, str] = {}
    for start in range(0, len(unclocked), 500):
        clocks.update(session.exec(select(SyncClock.record_id, SyncClock.clock).where(
            col(SyncClock.record_id).in_(unclocked[start:start + 500]))).all())
    conflicts: dict[str, list[Conflict]] = {}
    for conflict in session.exec(select(Conflict).where(col(Conflict.child_id).in_(child_ids))):
        conflicts.setdefault(conflict.child_id or "", []).append(conflict)
    out: list[dict[str, Any]] = []
    for child_id in child_ids:
        child = children.get(child_id)
        if child is None:
            continue
        out.append(record_as_change(store, session, child, clocks))
        out.extend(record_as_change(store, session, row, clocks) for row in parts[child_id])
        out.extend(conflict_as_change(store, conflict) for conflict in conflicts.get(child_id, []))
    return out


_directories: dict[int, tuple[str, dict[str, list[dict[str, Any]]], dict[str, str], str]] = {}
_directories_lock = threading.Lock()


def _directory(store: Store, session: Session, worker: Worker, held_version: str,
               fingerprint: str | None) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Teams and workers, so a node can show who did what; only the device's own worker's password hash.

    With its version: a hash of its contents, which the device sends back (`held_version`) so an
    unchanged directory is not sent again (then the directory returned is empty). On PostgreSQL the
    tables' contents are fingerprinted in the database (`fingerprint`, None elsewhere), and the rows are
    read again only when that fingerprint changes.
    """
    with _directories_lock:
        cached = _directories.get(id(store))
    if cached is None or fingerprint is None or cached[0] != fingerprint:
        def rows(model: type[SQLModel], *order: Any) -> list[dict[str, Any]]:
            table = table_of(model)
            return [dict(r._mapping) for r in session.execute(table.select().order_by(*order))]

        workers = rows(Worker, Worker.id)
        hashes = {row["id"]: row["password_hash"] for row in workers}
        for row in workers:
            row["password_hash"] = ""
        shared = {"teams": rows(Team, Team.id), "workers": workers,
                  "managed_teams": rows(ManagedTeam, ManagedTeam.manager_id, ManagedTeam.team_id)}
        digest = hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()
        cached = (fingerprint or "", shared, hashes, digest)
        if fingerprint is not None:
            with _directories_lock:
                _directories[id(store)] = cached
    _fingerprint, shared, hashes, digest = cached
    own = hashes.get(worker.id, "")
    version = hashlib.sha256(f"{digest}:{worker.id}:{own}".encode()).hexdigest()[:32]
    if version == held_version:
        return {}, version
    return {**shared, "workers": [{**row, "password_hash": own} if row["id"] == worker.id else row
                                  for row in shared["workers"]]}, version


def _directory_fingerprint(session: Session) -> str | None:
    """A fingerprint of the directory's tables that changes whenever a row is inserted, updated or deleted,
    read from PostgreSQL's row versions (None elsewhere).

    Each row's `xmin` is the transaction that wrote its current version: an insert or delete changes a
    table's count, and an update gives the row a new transaction id, which changes the sum. Reading them
    costs a small fraction of hashing the rows' contents (which grows with the number of workers, and every
    pull paid it). A change the fingerprint shows that leaves the contents the same (a row written again
    unchanged) only makes the rows be read again: the version sent to devices is their contents' hash.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    return str(_FINGERPRINT.value(session))


_FINGERPRINT = Hot(text(f"SELECT {_FINGERPRINT_SQL}"))  # noqa: S608 - our own table names


# ------------------------------------------------------------------------------------------------ node


@dataclass
class Enrolment:
    """This node's place in sync: which server, as which device, for which worker."""

    server_url: str
    device_id: str
    token: str
    worker_id: str
    username: str = ""


def save_enrolment(store: Store, enrolment: Enrolment) -> None:
    sealed = store.seal_payload("sync_enrolment", "enrolment", enrolment.__dict__)
    with store.session() as session:
        session.merge(SyncState(key=ENROLMENT, value=base64.b64encode(sealed).decode()))


def load_enrolment(store: Store) -> Enrolment | None:
    with store.session() as session:
        entry = session.get(SyncState, ENROLMENT)
    if entry is None:
        return None
    return Enrolment(**store.open_payload("sync_enrolment", "enrolment", base64.b64decode(entry.value)))


def pending_changes(store: Store, limit: int = 100, max_bytes: int = MESSAGE_BYTES) -> list[dict[str, Any]]:
    """The oldest local changes not yet pushed (refused ones are kept aside, not re-sent): at most `limit`,
    and no more once they reach `max_bytes` (at least one, however big), so photos make no huge request."""
    with store.session() as session:
        entries = session.exec(_within_bytes(Outbox, col(Outbox.sent_at).is_(None), limit, max_bytes))
        return [{"change_id": e.change_id, **store.open_payload("outbox", e.change_id, e.sealed)} for e in entries]


def mark_pushed(store: Store, change_ids: Iterable[str]) -> None:
    """The server holds these changes: they leave the outbox."""
    ids = list(change_ids)
    if ids:
        with store.session() as session:
            session.exec(delete(Outbox).where(col(Outbox.change_id).in_(ids)))


def mark_refused(store: Store, change_ids: Iterable[str], reason: str) -> None:
    """Changes the server will not take stay on the node, set aside and shown, never silently dropped."""
    with store.session() as session:
        for change_id in change_ids:
            entry = session.exec(select(Outbox).where(Outbox.change_id == change_id)).first()
            if entry is not None:
                entry.sent_at = utcnow()
                session.add(entry)
                session.merge(SyncState(key=REFUSED_PREFIX + change_id, value=reason))


def send_photos_whole_once(store: Store) -> int:
    """Queues every photo this node holds with its image, once: earlier versions of Seen pushed photos
    without their images, so the server may hold them empty and this node the only copy. Returns how many.

    The new changes carry later clocks, so they fill the empty photos wherever they arrive; the old
    changes (waiting, or set aside as refused for want of their image) give way to them.
    """
    with store.session() as session:
        if session.get(SyncState, PHOTOS_WHOLE) is not None:
            return 0
        waiting: set[str] = set()  # photos whose change, with its image, is still to be pushed
        for entry in list(session.exec(select(Outbox).where(Outbox.kind == "photo"))):
            if not _imageless_photo(store.open_payload("outbox", entry.change_id, entry.sealed)):
                waiting.add(entry.record_id)
                continue
            session.delete(entry)
            refused = session.get(SyncState, REFUSED_PREFIX + entry.change_id)
            if refused is not None:
                session.delete(refused)
        photos = [p for p in session.exec(select(Photo).order_by(col(Photo.created_at)))
                  if p.sealed and p.id not in waiting]
        for photo in photos:
            store.write(session, photo, action="resend", detail="image",
                        blob=store.sealer.open_bytes("photo", photo.id, photo.sealed))
        session.merge(SyncState(key=PHOTOS_WHOLE, value=utcnow().isoformat()))
        return len(photos)


def pending_audit_events(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    """This node's own audit events the server has not confirmed yet, oldest first (set-aside ones left out)."""
    with store.session() as session:
        entry = session.get(SyncState, AUDIT_CURSOR)
        aside = {key.removeprefix(AUDIT_REFUSED_PREFIX) for key in session.exec(
            select(SyncState.key).where(col(SyncState.key).startswith(AUDIT_REFUSED_PREFIX)))}
        rows = session.exec(select(AuditEvent).where(col(AuditEvent.seq) > int(entry.value if entry else 0))
                            .order_by(col(AuditEvent.seq)).limit(limit + len(aside)))
        return [row.model_dump() for row in rows if row.id not in aside][:limit]


def mark_audit_sent(store: Store, last_seq: int) -> None:
    """The server holds this node's audit events up to `last_seq`: the next upload starts after it."""
    with store.session() as session:
        entry = session.get(SyncState, AUDIT_CURSOR)
        if entry is None or int(entry.value) < last_seq:
            session.merge(SyncState(key=AUDIT_CURSOR, value=str(last_seq)))


def set_audit_aside(store: Store, event_ids: Iterable[str], reason: str) -> None:
    """Audit events the server will not take: kept in this node's chain, shown, and not sent again."""
    with store.session() as session:
        for event_id in event_ids:
            session.merge(SyncState(key=AUDIT_REFUSED_PREFIX + event_id, value=reason))


def cursor(store: Store) -> int:
    with store.session() as session:
        entry = session.get(SyncState, CURSOR)
    return int(entry.value) if entry else 0


def held_children(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.exec(select(Child.id)))


def directory_version(store: Store) -> str:
    """The version of the directory this node last received (sent back so an unchanged one is not resent)."""
    with store.session() as session:
        entry = session.get(SyncState, DIRECTORY_VERSION)
    return entry.value if entry else ""


def apply_pulled(store: Store, page: PullPage) -> int:
    """Applies one pulled page and saves its cursor, in one transaction: the cursor never runs ahead.

    The page's records are looked up set-wise, and those this node does not hold are inserted in bulk.
    """
    with store.session() as session:
        if page.directory:
            _apply_directory(store, session, page.directory)
        for child_id in page.removals:
            _remove_child(session, child_id)
        removed = set(page.removals)
        changes = [c for c in sorted(page.changes, key=lambda c: KIND_RANK.get(c["kind"], 9))
                   if (c["kind"] == "conflict"
                       or _child_id_of(c["kind"], c["record_id"], c.get("fields") or {}) not in removed)
                   and not _imageless_photo(c)]
        records = Records(session)
        records.prefetch(changes, for_update=False)
        applied = 0
        for change in changes:
            applied += merge_change(store, session, change, judge_conflicts=False, records=records).changed
        records.write_new()
        session.merge(SyncState(key=CURSOR, value=str(page.cursor)))
        session.merge(SyncState(key=LAST_SYNCED, value=utcnow().isoformat()))
        if page.directory and page.directory_version:
            session.merge(SyncState(key=DIRECTORY_VERSION, value=page.directory_version))
    return applied


def _imageless_photo(change: dict[str, Any]) -> bool:
    """A photo's change logged before photos carried their images: the server has no image to give."""
    return change["kind"] == "photo" and not (change.get("body") or {}).get("image")


def _apply_directory(store: Store, session: Session, directory: dict[str, list[dict[str, Any]]]) -> None:
    for team in directory.get("teams", []):
        session.merge(Team.model_validate(team))
    session.flush()
    for data in directory.get("workers", []):
        incoming = Worker.model_validate(data)
        existing = session.get(Worker, incoming.id)
        if existing is not None and not incoming.password_hash:
            incoming.password_hash = existing.password_hash  # keep a local sign-in the server does not send
        else:  # the node's own worker's: kept sealed, never in clear on a laptop
            incoming.password_hash = store.seal_password_hash(incoming.id, incoming.password_hash)
        session.merge(incoming)
    session.flush()
    for managed in directory.get("managed_teams", []):
        session.merge(ManagedTeam.model_validate(managed))
    session.flush()


def _remove_child(session: Session, child_id: str) -> None:
    """A child who left this worker's caseload leaves the device, with every record about them."""
    record_ids: list[str] = [child_id]
    for model in CHILD_PARTS:
        ids = list(session.exec(select(model.id).where(model.child_id == child_id)))  # type: ignore[attr-defined]
        record_ids += ids
        if ids:
            session.exec(delete(model).where(model.child_id == child_id))  # type: ignore[attr-defined]
    session.exec(delete(Conflict).where(col(Conflict.child_id) == child_id))
    session.exec(delete(SyncClock).where(col(SyncClock.record_id).in_(record_ids)))
    session.exec(delete(Child).where(col(Child.id) == child_id))


def record_error(store: Store, message: str) -> None:
    with store.session() as session:
        if message:
            session.merge(SyncState(key=LAST_ERROR, value=message))
        else:
            session.exec(delete(SyncState).where(col(SyncState.key) == LAST_ERROR))


def wipe(store: Store) -> None:
    """Deletes every record and the keyring: the data key goes, so nothing left on disk can be opened."""
    with store.session() as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            session.execute(table.delete())
    if store.engine.dialect.name == "sqlite":
        raw = store.engine.raw_connection()
        try:
            driver = raw.driver_connection
            if driver is None:
                raise RuntimeError("the pool gave a connection that is already closed")
            driver.isolation_level = None  # VACUUM needs autocommit
            driver.execute("VACUUM")  # freed pages leave the file too
        finally:
            raw.close()
    store.lock()


def is_wiped(store: Store) -> bool:
    with store.session() as session:
        return session.get(KeyringEntry, "data_key") is None


@dataclass
class SyncStatus:
    """What the sync status widget shows."""

    enrolled: bool
    server_url: str
    last_synced_at: datetime | None
    waiting: int
    conflicts: int
    refused: int
    last_error: str
    audit_refused: int = 0  # this node's audit events the server would not take (kept here)


def sync_status(store: Store) -> SyncStatus:
    with store.session() as session:
        states = {s.key: s.value for s in session.exec(select(SyncState))}
        waiting = session.exec(select(func.count()).select_from(Outbox).where(col(Outbox.sent_at).is_(None))).one()
        conflicts = session.exec(select(func.count()).select_from(Conflict)
                                 .where(col(Conflict.resolved_at).is_(None))).one()
    enrolment = load_enrolment(store) if ENROLMENT in states and not store.locked else None
    last = states.get(LAST_SYNCED)
    return SyncStatus(
        enrolled=ENROLMENT in states,
        server_url=enrolment.server_url if enrolment else "",
        last_synced_at=datetime.fromisoformat(last) if last else None,
        waiting=int(waiting),
        conflicts=int(conflicts),
        refused=sum(1 for k in states if k.startswith(REFUSED_PREFIX)),
        last_error=states.get(LAST_ERROR, ""),
        audit_refused=sum(1 for k in states if k.startswith(AUDIT_REFUSED_PREFIX)),
    )


@dataclass
class ConflictView:
    conflict: Conflict
    winner: Any
    loser: Any


def conflicts(store: Store, session: Session, child_ids: Iterable[str] | None = None) -> list[ConflictView]:
    """Values that lost a concurrent edit, newest first, for the children given (or all)."""
    query = select(Conflict).order_by(col(Conflict.at).desc())
    if child_ids is not None:
        query = query.where(col(Conflict.child_id).in_(list(child_ids)))
    out = []
    for conflict in session.exec(query):
        values = store.open_payload("conflict", conflict.id, conflict.sealed)
        out.append(ConflictView(conflict, values.get("winner"), values.get("loser")))
    return out


def visible_conflicts(store: Store, worker: Worker) -> list[ConflictView]:
    """The conflicts on children this worker may see (their own caseload, or their teams')."""
    with store.session() as session:
        ids = [c.id for c in store.visible_children(session, worker)]
        return conflicts(store, session, ids)



def latest_seq(store: Store) -> int:
    with store.session() as session:
        return _latest_seq(session)
