"""Merging a change into a node's records: the same at both ends, idempotent, in any order.

Mutable records (child, placement, care plan, action, review) merge field by field, the later change stamp
(storage/hlc.py) winning; other records (visits, wishes and feelings, life story, photos) keep the write with
the later stamp. So changes may arrive twice, or in any order, and every node still ends with the same
records. Only the server decides what was a conflict (two edits that crossed), keeps the losing value in the
`Conflict` table and logs the conflict so it reaches the nodes too.
"""

from __future__ import annotations

import json
import operator
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError, create_model
from sqlmodel import Session, SQLModel, col, select

from storage import policy
from storage.hot import Hot
from storage.models import (
    BODY_OF,
    KIND_OF,
    Child,
    ChildBody,
    Conflict,
    MutableRecord,
    Photo,
    RecordStamp,
    record,
    table_of,
)
from storage.photos import image_from_sync
from storage.store import Store, same_value
from storage.sync import bulk
from storage.sync.bulk import copy_rows, insert_rows
from storage.sync.changes import CONFLICT_NS, KIND_RANK, MODEL_OF, aware, child_id_of, clear_fields


def _value(fields: dict[str, Any], body: dict[str, Any] | None, name: str) -> tuple[bool, Any]:
    """(present, value) of a clear field or a `body.` field in a change."""
    if name.startswith("body."):
        if body is None or name[5:] not in body:
            return False, None
        return True, body[name[5:]]
    return (name in fields), fields.get(name)


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
        self.stamps: dict[str, RecordStamp | None] = {}
        self.new: dict[type[SQLModel], dict[str, Any]] = {}
        self.new_stamps: dict[str, tuple[str, str]] = {}  # record id -> (kind, change stamp), not yet inserted

    def load(self, model: type[SQLModel], ids: Iterable[str], *, for_update: bool = False,
             probe: bool = True) -> None:
        """Loads these records (those not loaded already); on PostgreSQL `for_update` locks their rows,
        so two transactions merging into the same record take turns and neither loses the other's fields."""
        wanted = sorted({i for i in ids if isinstance(i, str) and (model, i) not in self.rows})
        table = table_of(model)
        key = table.c.id
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            # Which exist first (most of a push is new records), then only those are read as rows.
            present = sorted(row[0] for row in _probe(table).rows(self.session, {"ids": chunk})) if probe else chunk
            found: dict[str, Any] = {}
            if present:
                query = select(model).where(col(key).in_(present)).order_by(key)
                if for_update:
                    query = query.with_for_update()
                found = {record(row).id: row for row in self.session.exec(query)}
            for record_id in chunk:
                self.rows[(model, record_id)] = found.get(record_id)

    def load_read_only(self, model: type[SQLModel], ids: Iterable[str]) -> None:
        """Loads records the batch only reads (the children its records belong to, not changed by it) as plain
        rows made into snapshots without the ORM's bookkeeping (as `caller_for` makes the device's): a mapped
        row costs ~50 µs to make. A snapshot is never saved; one the batch changes is loaded by `load`."""
        wanted = sorted({i for i in ids if isinstance(i, str) and (model, i) not in self.rows})
        if not wanted:
            return
        hot = _read_rows(model)
        names = ["id", *(c.name for c in table_of(model).columns if c.name != "id")]  # as `_read_rows` reads them
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found = {row[0]: model.model_construct(**dict(zip(names, row, strict=True)))
                     for row in hot.rows(self.session, {"ids": chunk})}
            for record_id in chunk:
                self.rows[(model, record_id)] = found.get(record_id)

    def load_stamps(self, ids: Iterable[str]) -> None:
        wanted = sorted({i for i in ids if i not in self.stamps})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            # Which have one first (a new record has none), then only those are read as rows.
            present = [row[0] for row in _probe(table_of(RecordStamp)).rows(self.session, {"ids": chunk})]
            found = {c.record_id: c for c in self.session.exec(
                select(RecordStamp).where(col(RecordStamp.record_id).in_(present)))} if present else {}
            for record_id in chunk:
                self.stamps[record_id] = found.get(record_id)

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

    def stamp_of(self, record_id: str) -> str | None:
        if record_id in self.new_stamps:
            return self.new_stamps[record_id][1]
        if record_id not in self.stamps:
            self.load_stamps([record_id])
        entry = self.stamps[record_id]
        return entry.stamp if entry is not None else None

    def set_stamp(self, record_id: str, kind: str, stamp: str) -> None:
        """The change stamp of a record's write. A record with none yet gets its stamp when the new records are
        written: inserted if it was looked up (`load_stamps`), else by upsert (not read first)."""
        entry = self.stamps.get(record_id)
        if entry is None:
            self.new_stamps[record_id] = (kind, stamp)
        else:
            entry.kind, entry.stamp = kind, stamp
            self.session.add(entry)

    def write_new(self) -> None:
        """Inserts the new records, one multi-row insert a table, parents before children; then flushes
        the changes to records already held."""
        with self.session.no_autoflush:
            for model in sorted(self.new, key=lambda m: KIND_RANK.get(KIND_OF.get(m, ""), 9)):
                table = table_of(model)
                names = [c.name for c in table.columns]
                values = operator.attrgetter(*names)  # a row's values in the columns' order, as a tuple
                copy_rows(self.session, table, names, [values(row) for row in self.new[model].values()])
            # A stamp for a record known to have none is inserted; one for a record not looked up, upserted.
            known: list[tuple[str, str, str]] = []
            unknown: list[tuple[str, str, str]] = []
            for record_id, (kind, stamp) in self.new_stamps.items():
                (known if record_id in self.stamps else unknown).append((record_id, kind, stamp))
            names = ["record_id", "kind", "clock"]  # the columns' names
            copy_rows(self.session, table_of(RecordStamp), names, known)
            insert_rows(self.session, table_of(RecordStamp), names, unknown, upsert="record_id")
            for record_id, _kind, _stamp in known:
                del self.stamps[record_id]  # it has one now: a later write here upserts it
        self.new = {}
        self.new_stamps = {}
        self.session.flush()

    def prefetch(self, changes: list[dict[str, Any]], *, for_update: bool) -> None:
        """Everything merging `changes` will look at: the records, their change stamps and their children."""
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
        self.load_read_only(Child, child_ids)  # the children a batch refers to (those it changes are loaded)
        stamped = [(MODEL_OF[k], i) for k, ids in by_kind.items() if not issubclass(MODEL_OF[k], MutableRecord)
                   for i in ids]
        held = [i for model, i in stamped if self.rows[(model, i)] is not None]
        new = [i for model, i in stamped if self.rows[(model, i)] is None]
        # Those of new records too when there are enough to copy: one known to have none is inserted by COPY, which
        # is cheaper than the upsert they are otherwise given unread (`write_new`).
        self.load_stamps(held + new if len(new) >= bulk.COPY_FROM else held)
        conflicts = [c["record_id"] for c in changes if c["kind"] == "conflict"]
        if conflicts:
            self.load(Conflict, conflicts)


_PROBES: dict[Any, Hot] = {}


def _probe(table: Any) -> Hot:
    """Which of some ids a table holds (in its key: `id`, or a stamp's `record_id`), as a plain statement
    (prefetching runs before anything is pending)."""
    if table not in _PROBES:
        (key,) = table.primary_key.columns
        _PROBES[table] = Hot.one_of(select(key), key, "ids")
    return _PROBES[table]


_READS: dict[Any, Hot] = {}


def _read_rows(model: type[SQLModel]) -> Hot:
    """A table's rows with some ids, every column, the id first, as a plain statement."""
    if model not in _READS:
        table = table_of(model)
        columns = [table.c.id, *(c for c in table.columns if c.name != "id")]
        _READS[model] = Hot.one_of(select(*columns), table.c.id, "ids")
    return _READS[model]


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
    # The body as JSON values, dumped once: the policy's list of what would change and the new record's seal
    # both need it (~3 us a visit each time, timeit).
    new_body = (incoming_body.model_dump(mode="json") if incoming_body is not None and (judge is not None or row is None)
                else None)
    if judge is not None:
        judge(change, row, incoming, _changed_fields(store, records, change, row, incoming, new_body, image))
    if row is None:
        if incoming_body is not None:
            assert new_body is not None
            incoming.sealed = store.sealed_body(kind, incoming, new_body)
        if image is not None:
            incoming.sealed = store.sealer.seal_bytes(kind, record_id, image)
        _rehash_child(store, incoming, incoming_body)
        records.add(model, incoming)
        if not issubclass(model, MutableRecord):
            records.set_stamp(record_id, kind, change.get("clock") or "")
        _observe(store, change, incoming)
        return Merged(changed=True)
    if isinstance(row, MutableRecord):
        return _merge_fields(store, session, records, change, row, incoming, incoming_body, body, judge_conflicts)
    # Records without per-field stamps: the write with the later change stamp is kept whole.
    held = records.stamp_of(record_id)
    stamp = change.get("clock") or ""
    if held is not None and stamp <= held:
        return Merged()
    for name in type(row).model_fields:
        if name not in ("id", "sealed"):
            setattr(row, name, getattr(incoming, name))
    if incoming_body is not None:
        store.seal(row, incoming_body)
    if image is not None:
        row.sealed = store.sealer.seal_bytes(kind, record_id, image)
    records.touch(row)
    records.set_stamp(record_id, kind, stamp)
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
    incoming_clear = clear_fields(incoming)
    our_clear = clear_fields(row)
    for name, their_stamp in sorted(theirs.items()):
        our_stamp = ours.get(name, "")
        if their_stamp == our_stamp:
            continue
        present, their_value = _value(incoming_clear, body, name)
        if not present:
            continue
        _, our_value = _value(our_clear, new_body, name)
        crossed = judge_conflicts and name in base and base[name] != our_stamp and our_stamp != ""
        if crossed and their_value != our_value:
            won = their_stamp > our_stamp
            result.conflicts.append(_log_conflict(
                store, session, records, kind, row, name,
                winner=(their_stamp, their_value) if won else (our_stamp, our_value),
                loser=(our_stamp, our_value) if won else (their_stamp, their_value)))
        if their_stamp < our_stamp:
            continue
        ours[name] = their_stamp
        result.changed = True
        if name.startswith("body."):
            assert new_body is not None
            new_body[name[5:]] = getattr(incoming_body, name[5:])
        else:
            setattr(row, name, getattr(incoming, name))
    if result.changed:
        row.field_clocks = json.dumps(ours, sort_keys=True)
        row.revision = max(row.revision, incoming.revision)
        row.updated_at = max(aware(row.updated_at), aware(incoming.updated_at))
        if new_body is not None:
            body_value = BODY_OF[type(row)].model_validate(new_body)
            store.seal(row, body_value)
            _rehash_child(store, row, body_value)
        records.touch(row)
        _observe(store, change, row)
    return result


def _changed_fields(store: Store, records: Records, change: dict[str, Any], row: Any, incoming: Any,
                    incoming_body: dict[str, Any] | None, image: bytes | None) -> set[str]:
    """The fields (clear names, and `body.<name>`) whose value merging this change would alter.
    `incoming_body` is the change's body validated and dumped as JSON values (None when it carries none)."""
    new_body = incoming_body if incoming_body is not None else {}
    if row is None:
        # Every clear field of a new record: the names `clear_fields` gives, without dumping the values (~5 us),
        # and those of its body (the same few sets of names, made once: ~8 us a visit each time).
        names = _new_names(type(incoming), tuple(new_body))
        return set(names | {"body.image"}) if image is not None else set(names)
    incoming_clear = clear_fields(incoming)
    body = change.get("body")
    stored_body = store.opened(row).body.model_dump(mode="json") if type(row) in BODY_OF else {}
    if isinstance(row, MutableRecord):
        ours = json.loads(row.field_clocks or "{}")
        theirs = json.loads(incoming.field_clocks or "{}")
        out = set()
        for name, their_stamp in theirs.items():
            present, _ = _value(incoming_clear, body, name)
            if not present or their_stamp <= ours.get(name, ""):
                continue
            if name.startswith("body."):
                if new_body.get(name[5:]) != stored_body.get(name[5:]):
                    out.add(name)
            elif name in type(row).model_fields and not same_value(getattr(row, name), getattr(incoming, name)):
                out.add(name)
        return out
    held = records.stamp_of(row.id)
    if held is not None and (change.get("clock") or "") <= held:
        return set()  # an older write: merging it changes nothing
    out = {n for n in type(row).model_fields if n not in ("id", "sealed") and not same_value(
        getattr(row, n), getattr(incoming, n))}
    out |= {f"body.{n}" for n in set(new_body) | set(stored_body) if new_body.get(n) != stored_body.get(n)}
    if image is not None and (not row.sealed or store.sealer.open_bytes(KIND_OF[type(row)], row.id,
                                                                        row.sealed) != image):
        out.add("body.image")
    return out


_CLEAR_NAMES: dict[type[BaseModel], frozenset[str]] = {}


def _clear_names(model: type[BaseModel]) -> frozenset[str]:
    """The names of a record's clear fields but its id: the keys of `clear_fields` (every field but `sealed`)."""
    if model not in _CLEAR_NAMES:
        _CLEAR_NAMES[model] = frozenset(model.model_fields) - {"id", "sealed"}
    return _CLEAR_NAMES[model]


_NEW_NAMES: dict[tuple[type[BaseModel], tuple[str, ...]], frozenset[str]] = {}


def _new_names(model: type[BaseModel], body_names: tuple[str, ...]) -> frozenset[str]:
    """What a new record of `model` with a body of these names changes: its clear fields and `body.<name>`s."""
    key = (model, body_names)
    names = _NEW_NAMES.get(key)
    if names is None:
        names = _NEW_NAMES[key] = _clear_names(model) | {f"body.{n}" for n in body_names}
    return names


_CLOCKED: dict[type, bool] = {}


def _observe(store: Store, change: dict[str, Any], row: Any) -> None:
    stamps = [change.get("clock") or ""]
    # Whether the row has per-field stamps (a mutable record, or its values), known by its type: asking a
    # values twin for an attribute it lacks costs a pydantic AttributeError (~3 us a new visit).
    clocked = _CLOCKED.get(type(row))
    if clocked is None:
        clocked = _CLOCKED[type(row)] = "field_clocks" in type(row).model_fields
    if clocked and row.field_clocks is not None:  # a mutable record (or its values)
        stamps += list(json.loads(row.field_clocks or "{}").values())
    latest = max(stamps)
    if latest:
        store.hlc.observe(latest)


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
    conflict = Conflict(id=conflict_id, kind=kind, record_id=row.id, child_id=child_id_of(kind, row.id, {
        "child_id": getattr(row, "child_id", None)}), field=name, winner_clock=winner[0], loser_clock=loser[0])
    conflict.sealed = store.seal_payload("conflict", conflict_id, {"winner": winner[1], "loser": loser[1]})
    session.add(conflict)
    records.rows[(Conflict, conflict_id)] = conflict
    return conflict


def _merge_conflict(store: Store, session: Session, records: Records, record_id: str, fields: dict[str, Any],
                    body: dict[str, Any] | None) -> Merged:
    held = records.get(Conflict, record_id)
    if held is not None:
        # A decision reaches a node that held the conflict undecided: taken once, never undone.
        if held.resolved_at is None and fields.get("resolved_at"):
            decided = Conflict.model_validate({**fields, "id": record_id, "sealed": b""})
            held.resolved_at, held.decided_by, held.kept = decided.resolved_at, decided.decided_by, decided.kept
            session.add(held)
            return Merged(changed=True)
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


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "the record"
    return f"{where}: {first.get('msg', 'not valid')}"
