"""The server's side of a push: a device's batch judged and applied whole, or refused whole.

Each change a device pushes is first put to the policy (storage/policy.py), the same rules the screens
follow, on what the change would actually alter: who may create, change, sign off, allocate and close what,
and which records are final. Its change stamps must be stamps no more than a few minutes ahead of the
server's time (storage/hlc.py). A refused change never blocks the rest: the batch is applied again without it, and
the device is told why for each change refused (when every change is refused, the whole batch is, as before). Each
refusal is audited with its reason.

A change for a child who has left the device's worker (reallocated, or the case closed) is never dropped: written
while they were allocated, it is taken as theirs; written after, it is held for a manager (storage/allocations.py,
storage/sync/moved.py). Either way a manager of the child's team sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from sqlmodel import Session, col, select

from storage import audit, hlc, policy
from storage.allocations import late_outcome
from storage.cases import cases_for, local_date
from storage.models import (
    AuditEvent,
    ChangeLog,
    Child,
    Device,
    LateChange,
    Placement,
    Review,
    Role,
    Worker,
    table_of,
    utcnow,
)
from storage.record_dates import CaseDates, date_problem
from storage.returns.rules import placement_problems, review_problems
from storage.store import Store
from storage.submissions import KEYED, key_holders, key_refusal
from storage.sync import bulk
from storage.sync.bulk import copy_rows, insert_rows, insert_rows_together, numbers_for
from storage.sync.changes import MODEL_OF, child_id_of, conflict_as_change
from storage.sync.devices import Caller, caller_for, callers_for, given_caller
from storage.sync.merge import Judge, NotPermitted, Records, merge_change
from storage.sync.pull import visible_to_each
from storage.sync.refusal import Reason, SyncRefused
from storage.sync.server_log import (
    LOG_COLUMNS,
    LOGGED,
    absorb_local_changes,
    latest_in,
    lock_log,
    lock_log_and_chain,
    log_row,
)
from storage.timescales import clocks_and_problems
from storage.timescales.calendar import today_in_england


@dataclass
class PushOutcome:
    applied: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    outdated: list[str] = field(default_factory=list)  # held, but changing nothing: later writes won
    conflicts: int = 0
    cursor: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # change id -> why: set aside on the device
    held: dict[str, str] = field(default_factory=dict)  # change id -> why: held for a manager (the server keeps it)
    then: Any = None  # what `then` gave, when a push was given one (the pull of the same request)


# Run in a push's transaction once its batch is merged and numbered, under the push lock: (the session, the
# caller, the outcome so far, audit events to append with the batch's). The pull of a request that pushes and
# pulls at once (`pull.page_for`), so the two share one transaction and one lookup of the device.
Then = Callable[[Session, Caller, PushOutcome, list[dict[str, Any]]], Any]


def push(store: Store, key: str, batch_id: str, changes: list[dict[str, Any]],
         encoded: list[bytes] | None = None, *, then: Then | None = None) -> PushOutcome:
    """Applies the batch of the device whose token hashes to `key` (found in the batch's own transaction)
    in one transaction. A change the policy refuses is left out, with its reason in `refused` (the device
    sets it aside), and the rest applied; only a batch whose every change is refused raises SyncRefused.

    The batch is merged without the push lock, and the lock is taken only to number its change-log rows
    and extend the audit chain, as the transaction's last step, so pushes overlap but commit one at a
    time in the order they are numbered. If another push held some of the same records or changes at the
    same time (a unique key or a deadlock stops this one), the batch is applied again with the lock taken
    first, as one push at a time: then what the other applied counts as duplicates.

    `encoded`, when given, is each change as its canonical JSON (what the device signed): the change log
    seals those bytes rather than dumping the change to JSON again. `then`, when given, runs in the same
    transaction once the batch is merged (see `Then`); what it gives is the outcome's `then`.
    """
    return _apply(store, lambda session: caller_for(session, key, pulling=then is not None), batch_id, changes,
                  encoded, then)


def push_as(store: Store, device: Device, worker: Worker, batch_id: str, changes: list[dict[str, Any]]) -> PushOutcome:
    """`push` for a device and worker already known (a held change a manager accepted, storage/sync/moved.py)."""
    return _apply(store, given_caller(store, device, worker), batch_id, changes)


def _apply(store: Store, resolve: Any, batch_id: str, changes: list[dict[str, Any]],
           encoded: list[bytes] | None = None, then: Then | None = None) -> PushOutcome:
    """Applies the batch; a change the policy refuses is left out and the rest applied again, each refusal
    answered with its reason. Only when every change is refused is the batch refused."""
    refused: dict[str, str] = {}
    while True:
        try:
            outcome = _apply_whole(store, resolve, batch_id, changes, encoded, then)
        except SyncRefused as refusal:
            named = set(refusal.change_ids)
            rest = [i for i, c in enumerate(changes) if c["change_id"] not in named]
            if refusal.code != Reason.not_allowed or not named or not rest:
                if refused and refusal.code == Reason.not_allowed:
                    refusal.reasons = {**refused, **refusal.reasons}
                    refusal.change_ids = [*refused, *refusal.change_ids]
                raise
            refused.update(refusal.reasons or {i: refusal.message for i in named})
            changes = [changes[i] for i in rest]
            encoded = [encoded[i] for i in rest] if encoded is not None else None
            continue
        outcome.refused = refused
        return outcome


def _apply_whole(store: Store, resolve: Any, batch_id: str, changes: list[dict[str, Any]],
                 encoded: list[bytes] | None = None, then: Then | None = None) -> PushOutcome:
    if store.engine.dialect.name != "postgresql":
        absorb_local_changes(store)
    callers: list[Caller] = []  # who pushed, once known: a refusal is audited in their name

    def identified(session: Session) -> Caller:
        callers.append(resolve(session))
        return callers[-1]

    try:
        for lock_first in (False, True, True):
            try:
                return _apply_batch(store, identified, batch_id, changes, encoded, then, lock_first=lock_first)
            except IntegrityError:
                if lock_first:
                    raise
            except OperationalError as e:
                if not _deadlock(e):
                    raise
        return _apply_batch(store, identified, batch_id, changes, encoded, then, lock_first=True)
    except SyncRefused as refusal:
        if refusal.code == Reason.not_allowed and callers and callers[-1].device is not None:
            _audit_refusal(store, callers[-1].worker, callers[-1].device, batch_id, refusal)
        raise
    except IntegrityError as e:
        raise SyncRefused("A change in this batch refers to a record the server does not have (or repeats "
                          "one with different contents). Nothing in the batch was applied.",
                          code=Reason.integrity) from e
    except (StatementError, UnicodeError, OverflowError) as e:
        # A value the database (or its driver: SQLite's date adapter) cannot take, such as a date past the
        # calendar's end; any other database failure is the server's, and stays a 500.
        if isinstance(e, StatementError) and not (isinstance(e, DataError) or isinstance(
                e.orig, OverflowError | UnicodeError | ValueError)):
            raise
        raise SyncRefused("A change in this batch holds a value the database cannot store (a date past the "
                          "calendar's end, say). Nothing in the batch was applied.", code=Reason.invalid) from e
    except ValueError as e:
        raise SyncRefused(f"{e} Nothing in the batch was applied.", code=Reason.invalid) from e


def _deadlock(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "40P01"


@dataclass
class _Batch:
    """One device's batch in a transaction: the changes not held already, and what merging them gave, until
    it is numbered."""

    caller: Caller
    batch_id: str
    todo: list[dict[str, Any]]
    plain: dict[str, bytes]  # change id -> its canonical JSON, as the device signed it
    outcome: PushOutcome
    then: Then | None = None
    log_rows: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    late: list[LateChange] = field(default_factory=list)
    prepared: audit.Prepared | None = None  # `events` made ready for the chain before its lock is taken


def _new_changes(caller: Caller, batch_id: str, changes: list[dict[str, Any]], encoded: list[bytes] | None,
                 seen_ids: set[str], then: Then | None) -> _Batch:
    """The batch with the changes the server holds already (`seen_ids`, the change log's) counted as duplicates."""
    batch = _Batch(caller, batch_id, [], {}, PushOutcome(), then)
    for i, change in enumerate(changes):
        if change["change_id"] in seen_ids:
            batch.outcome.duplicates.append(change["change_id"])
            continue
        seen_ids.add(change["change_id"])
        batch.todo.append(change)
        if encoded is not None:
            batch.plain[change["change_id"]] = encoded[i]
    return batch


def _timed(changes: list[dict[str, Any]]) -> set[str]:
    """The children whose clocks these changes could leave unworkable (their own record, or a placement)."""
    return {i for i in (c["record_id"] if c["kind"] == "child" else (c.get("fields") or {}).get("child_id")
                        for c in changes if c["kind"] in ("child", "placement")) if isinstance(i, str)}


def _apply_batch(store: Store, identified: Any, batch_id: str, changes: list[dict[str, Any]],
                 encoded: list[bytes] | None, then: Then | None, *, lock_first: bool) -> PushOutcome:
    with store.session() as session:
        caller = identified(session)  # refused here (unknown or revoked device) before anything is read
        assert caller.device is not None  # a push always comes from a device
        if caller.waiting and store.engine.dialect.name == "postgresql":
            absorb_local_changes(store)  # writes made on the server itself reach the log first
        if lock_first:
            lock_log(session)
        seen_ids = {row[0] for row in LOGGED.rows(session, {"change_ids": [c["change_id"] for c in changes]})}
        batch = _new_changes(caller, batch_id, changes, encoded, seen_ids, then)
        records = Records(session)
        records.prefetch(batch.todo, for_update=True)
        held = _held_keys(session, batch.todo)
        # Children whose clocks this batch could leave unworkable, and whether they could be worked out before.
        timed = _timed(batch.todo)
        unworkable_before = _unworkable(session, timed, today_in_england()) if timed else {}
        now = utcnow()
        refused = _merge_batch(store, session, records, batch, now, {}, held)
        if refused:
            raise _refusal(refused)
        _write(session, records, [batch])
        if timed:
            _refuse_unworkable(session, batch.todo, timed, unworkable_before)
        _number(session, [batch], now, lock_first=lock_first)
    return batch.outcome


def _merge_batch(store: Store, session: Session, records: Records, batch: _Batch, now: datetime,
                 keys: dict[str, str], held: dict[tuple[str, str], str]) -> list[Refused]:
    """Judges and merges a device's batch into `records`, filling its outcome, change-log rows, audit events
    and late changes; returns the changes refused (then nothing of the batch may be written).
    `keys` (submission key -> the record that carries it) is shared by the batches of one transaction; `held` is
    which of their submission keys the server held already (`_held_keys`)."""
    device, worker, teams, outcome = batch.caller.device, batch.caller.worker, batch.caller.teams, batch.outcome
    assert device is not None
    device_id, worker_id = device.id, worker.id  # read once: each read of a model's attribute costs ~1 µs
    refused: list[Refused] = []
    who = policy.actor(worker, teams)
    births: dict[str, date | None] = {}
    server_ms = int(now.timestamp() * 1000)
    judge = _judge(who, records, session, now)
    for change in batch.todo:
        child_id = child_id_of(change["kind"], change["record_id"], change.get("fields") or {})
        no = _may_make(records, who, change)
        moved = late_outcome(session, change, child_id, worker_id) if isinstance(child_id, str) and (
            no is _NOT_SEEN or no is None and _closed(records, child_id)) else None
        if moved is not None and isinstance(child_id, str):
            row = _late_row(store, change, child_id, worker, device, moved)
            if moved[0] == "held":
                if session.get(LateChange, row.change_id) is None:
                    session.add(row)
                outcome.held[change["change_id"]] = moved[1]
                batch.events.append({"action": "held", "kind": change["kind"], "record_id": change["record_id"],
                                     "worker_id": worker_id, "device_id": device_id, "child_id": child_id,
                                     "detail": "the child had left this worker: held for a manager"})
                continue
            no = None
            batch.late.append(row)
        no = no or (_stamp_refusal(change, server_ms)
                    or _date_refusal(store, records, change, births) or _returns_refusal(store, records, change, births)
                    or _key_refusal(records, change, keys, held))
        if no is None:
            try:
                merged = merge_change(store, session, change, judge_conflicts=True, records=records, judge=judge)
            except NotPermitted as e:
                no = e.no
        if no is not None:
            refused.append(Refused(change["change_id"], change["kind"], change["record_id"],
                                   child_id if isinstance(child_id, str) else None, no))
            continue
        batch.log_rows.append(log_row(store, change, batch_id=batch.batch_id, device_id=device_id,
                                      child_id=child_id, at=now, encoded=batch.plain.get(change["change_id"])))
        for conflict in merged.conflicts:
            batch.log_rows.append(log_row(store, conflict_as_change(store, conflict), batch_id=batch.batch_id,
                                          device_id=device_id, child_id=conflict.child_id, at=now))
        outcome.conflicts += len(merged.conflicts)
        if not (merged.changed or merged.conflicts):
            # Logged (so it is held once), but it changed nothing: the server holds a later write of all it
            # carries. The device is told so, not that it was applied.
            outcome.outdated.append(change["change_id"])
            continue
        batch.events.append({"action": "sync", "kind": change["kind"], "record_id": change["record_id"],
                             "worker_id": worker_id, "device_id": device_id, "child_id": child_id})
        outcome.applied.append(change["change_id"])
    return refused


def _write(session: Session, records: Records, batches: list[_Batch]) -> None:
    """The batches' late changes taken, the records they made or changed written, and their audit events made
    ready for the chain (all but linking them, which waits for the lock: `_number`)."""
    for batch in batches:
        for row in batch.late:
            if session.get(LateChange, row.change_id) is None:
                session.add(row)
        batch.prepared = audit.prepare_many(batch.events)
    records.write_new()


def _number(session: Session, batches: list[_Batch], now: datetime, *, lock_first: bool) -> None:
    """The transaction's last step before commit, under the lock: numbering the batches' changes (in order)
    and extending the audit chain. Seq order is then commit order, so a node pulling by cursor never skips a
    change. Then each batch's pull, if it has one, and the audit events of all, in order."""
    if not lock_first:
        lock_log_and_chain(session)
    rows = [row for batch in batches for row in batch.log_rows]
    # With no pull to run between the numbering and the audit, on PostgreSQL: both in one statement.
    together = (session.get_bind().dialect.name == "postgresql"
                and all(batch.then is None for batch in batches))
    if together:
        seqs = _log_and_audit(session, batches, rows)
    else:
        seqs = insert_rows(session, table_of(ChangeLog), list(LOG_COLUMNS), rows, returning="seq") or []
    # Under the lock, the last number is the log's latest.
    latest = max(seqs) if seqs else latest_in(session)
    at = 0
    for batch in batches:
        own = seqs[at:at + len(batch.log_rows)]
        at += len(batch.log_rows)
        batch.outcome.cursor = max(own) if own else latest
    if not together:
        events = audit.prepare_many([])
        for batch in batches:
            ready = batch.prepared or audit.prepare_many(batch.events)
            if batch.then is not None:
                # After the numbering, so the pull holds what this batch did (its conflicts too), as a pull sent
                # after the push would. The outbox was absorbed as the batch began, and is not looked at again.
                batch.caller.latest, batch.caller.waiting = latest, False
                batch.outcome.then = batch.then(session, batch.caller, batch.outcome, batch.events)
                ready += audit.prepare_many(batch.events[len(ready.events):])  # what the pull added
            events += ready
        audit.append_many(session, events, write=copy_rows)
    session.flush()


def _log_and_audit(session: Session, batches: list[_Batch], rows: list[tuple[Any, ...]]) -> list[int]:
    """The change log's rows (their numbers returned, in order), the batches' audit events linked into the chain
    and the chain's head moved. A few rows go in one statement: a round trip where there were three, each a wait
    for the interpreter while another push merges. Many (a laptop's batch) are copied: their numbers drawn and the
    head moved in one statement, then the rows of each table in one binary COPY, which costs both ends far less
    than a statement of thousands of values. For batches with no pull to run between the numbering and the audit."""
    events = audit.prepare_many([])
    for batch in batches:
        events += batch.prepared or audit.prepare_many(batch.events)
    if rows and events.rows:
        linked, head = audit.link(session, events)
        moved = audit.head_moved_with(session, head)
        if moved is not None and len(rows) >= bulk.COPY_FROM:
            seqs = numbers_for(session, table_of(ChangeLog), "seq", len(rows), update=moved)
            copy_rows(session, table_of(ChangeLog), ["seq", *LOG_COLUMNS],
                      [(seq, *row) for seq, row in zip(seqs, rows, strict=True)])
            copy_rows(session, table_of(AuditEvent), events.columns, linked)
            return seqs
        if moved is not None:  # else the chain's first events: its head has no row yet
            return insert_rows_together(
                session, [(table_of(ChangeLog), list(LOG_COLUMNS), rows), (table_of(AuditEvent), events.columns, linked)],
                returning="seq", update=moved)
    seqs = insert_rows(session, table_of(ChangeLog), list(LOG_COLUMNS), rows, returning="seq") or []
    audit.append_many(session, events, write=copy_rows)
    return seqs


class _Alone(Exception):
    """A group that cannot go in as one transaction: rolled back. `index`, when known, is the batch at fault (it is
    applied alone and the rest grouped again); without it, every batch is applied alone."""

    def __init__(self, index: int | None = None, *, after: bool = False) -> None:
        super().__init__(index)
        self.index = index
        self.after = after  # applied alone once the rest has gone in (a repeat of a change of an earlier batch)


@dataclass
class Pushed:
    """A device's batch for `push_group`: what `push` takes."""

    key: str
    batch_id: str
    changes: list[dict[str, Any]]
    encoded: list[bytes] | None = None
    then: Then | None = None


def push_group(store: Store, pushed: list[Pushed]) -> list[PushOutcome | Exception]:
    """Several devices' batches, each as `push` applies it alone, in one transaction: one lock, one numbering,
    one extension of the audit chain and one commit for all, which is what a server under many devices' syncs
    spends most on. Each batch's outcome, or what `push` raises for it (a refusal, or the server's own failure),
    in order.

    Only batches that go in as they are share a transaction. A batch with a change refused, held for a manager or
    touching a child's clocks (a child or a placement), from a device unknown or revoked, or repeating a change
    of another batch of the group, is applied alone by `push` (with its refusals, retries and audit) and the
    rest grouped again; if the group meets anything else (a unique key, a deadlock), it is rolled back and every
    batch applied alone. So each device gets what `push` gives it, and the audit trail holds what it would.
    """
    out: dict[int, PushOutcome | Exception] = {}
    rest = list(range(len(pushed)))
    later: list[int] = []
    while len(rest) > 1 and store.engine.dialect.name == "postgresql":
        try:
            out.update(zip(rest, _apply_group(store, [pushed[i] for i in rest]), strict=True))
            rest = []
        except _Alone as alone:
            if alone.index is None:
                break
            at = rest.pop(alone.index)
            if alone.after:
                later.append(at)
            else:
                out[at] = _alone(store, pushed[at])
    for at in [*rest, *later]:
        out[at] = _alone(store, pushed[at])
    return [out[i] for i in range(len(pushed))]


def _alone(store: Store, one: Pushed) -> PushOutcome | Exception:
    try:
        return push(store, one.key, one.batch_id, one.changes, one.encoded, then=one.then)
    except Exception as e:  # noqa: BLE001 - that batch's answer; the others are still applied
        return e


def _apply_group(store: Store, pushed: list[Pushed]) -> list[PushOutcome]:
    """The group in one transaction, or `_Alone` (rolled back, and nothing audited: `push` audits each batch's
    refusals as it applies it alone)."""
    with store.session() as session:
        try:
            return _group_in(store, session, pushed)
        except Exception as e:
            session.info.pop("refusals", None)
            raise e if isinstance(e, _Alone) else _Alone() from e


def _group_in(store: Store, session: Session, pushed: list[Pushed]) -> list[PushOutcome]:
    callers: list[Caller] = []
    for at, caller in enumerate(callers_for(session, [one.key for one in pushed])):
        if isinstance(caller, SyncRefused):
            raise _Alone(at)  # unknown or revoked: refused (and audited) alone
        callers.append(caller)
    if any(caller.waiting for caller in callers):
        raise _Alone()  # writes made on the server itself join the log first: `push` does that
    held_by: dict[str, int] = {}
    for at, one in enumerate(pushed):
        for change in one.changes:
            if held_by.setdefault(change["change_id"], at) != at:
                raise _Alone(at, after=True)  # a change of an earlier batch of the group: told it is a duplicate
    seen_ids = {row[0] for row in LOGGED.rows(session, {"change_ids": list(held_by)})}
    batches = [_new_changes(caller, one.batch_id, one.changes, one.encoded, seen_ids, one.then)
               for caller, one in zip(callers, pushed, strict=True)]
    for at, batch in enumerate(batches):
        if _timed(batch.todo):
            raise _Alone(at)  # a child's clocks are checked before and after its batch
    records = Records(session)
    records.prefetch([change for batch in batches for change in batch.todo], for_update=True)
    held = _held_keys(session, [change for batch in batches for change in batch.todo])
    now = utcnow()
    keys: dict[str, str] = {}
    for at, batch in enumerate(batches):
        if _merge_batch(store, session, records, batch, now, keys, held) or batch.outcome.held or batch.late:
            raise _Alone(at)
    _write(session, records, batches)
    pulling = [batch.caller for batch in batches if batch.then is not None]
    if pulling:
        visible_to_each(session, pulling)  # the children each may see, read once for the group's pulls
    _number(session, batches, now, lock_first=False)
    return [batch.outcome for batch in batches]


def _closed(records: Records, child_id: str) -> bool:
    child = records.get(Child, child_id)
    return child is not None and child.closed_on is not None


def _late_row(store: Store, change: dict[str, Any], child_id: str, worker: Worker, device: Device,
              moved: tuple[str, str]) -> LateChange:
    row = LateChange(change_id=change["change_id"], child_id=child_id, worker_id=worker.id, device_id=device.id,
                     kind=change["kind"], record_id=change["record_id"], outcome=moved[0], reason=moved[1])
    if moved[0] == "held":  # the server keeps the change itself until a manager decides
        row.sealed = store.seal_payload("late_change", row.change_id, change)
    return row


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
    error = SyncRefused(f"This change is not allowed: {first}{more} None of the batch was applied.",
                        code=Reason.not_allowed, change_ids=[r.change_id for r in refused])
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
                "life_story": ("on", "life-story entry"), "care_plan_action": ("due", "action's due"),
                "missing_episode": ("start", "missing episode")}


def _child_born(store: Store, records: Records, fields: dict[str, Any],
                births: dict[str, date | None]) -> Child | None:
    """The child a change's record belongs to (None if the server holds no such child), its date of birth opened
    once a batch into `births`."""
    child_id = fields.get("child_id")
    child = records.get(Child, child_id) if isinstance(child_id, str) else None
    if child is not None and child.id not in births:
        births[child.id] = store.opened(child).body.date_of_birth
    return child


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
            moment = datetime.fromisoformat(str(fields[name]))
            # Its day in England is no earlier than the day before the one it gives (its offset is under a day):
            # a moment whose day is after the birth needs no time zone worked out (~2 us a visit).
            soonest = moment.date() - timedelta(days=1)
        else:
            soonest = date.fromisoformat(str(fields[name])[:10])
    except (KeyError, ValueError):
        return None  # no date, or not one: the merge says what is wrong with the record

    def day() -> date:  # the exact day, in England: worked out only when needed
        return local_date(moment) if name == "visited_at" else soonest

    held = records.get(MODEL_OF[kind], record_id)
    if held is not None and getattr(held, name) is not None and _day_of(getattr(held, name)) == day():
        return None
    child = _child_born(store, records, fields, births)
    born = births[child.id] if child is not None else None
    if born is None or soonest >= born:
        return None
    problem = date_problem(day(), CaseDates(born=born), what)
    if problem is None:
        return None
    return policy.No("before_birth", f"The {kind.replace('_', ' ')} {record_id} cannot be taken: {problem.message}")


def _returns_refusal(store: Store, records: Records, change: dict[str, Any],
                     births: dict[str, date | None]) -> policy.No | None:
    """A review whose participation code is wrong for the child's age that day (SSDA903 440, 441), or a placement
    that ends in custody before the child was ten (234), is refused, as the child page's forms refuse them
    (storage/reviews.py, storage/placements.py); one the server holds unchanged is not judged again. (The
    placement's rules that need no date of birth are the policy's, storage/policy.py.)"""
    if change["kind"] == "placement":
        return _placement_age_refusal(store, records, change, births)
    if change["kind"] != "review":
        return None
    fields = change.get("fields") or {}
    try:
        held_on = date.fromisoformat(str(fields["held_on"])[:10]) if fields.get("held_on") else None
    except ValueError:
        return None  # not a date: the merge says what is wrong with the record
    participation = fields.get("participation")
    held = records.get(MODEL_OF["review"], change["record_id"])
    if held is not None and (held.held_on, held.participation) == (held_on, participation):
        return None
    child = _child_born(store, records, fields, births) if held_on is not None else None
    if child is None or held_on is None:
        return None
    review = Review(child_id=child.id, kind=str(fields.get("kind") or ""), held_on=held_on,
                    participation=participation if isinstance(participation, str) else None,
                    cancelled=fields.get("cancelled") is True)
    blocking = [p for p in review_problems(review, births[child.id]) if p.blocks]
    if not blocking:
        return None
    return policy.No("invalid", f"The review {change['record_id']} cannot be taken: {blocking[0].words}")


def _placement_age_refusal(store: Store, records: Records, change: dict[str, Any],
                           births: dict[str, date | None]) -> policy.No | None:
    fields = change.get("fields") or {}
    if fields.get("change_reason") != "CUSTOD" or not fields.get("end"):
        return None
    try:
        start, end = (date.fromisoformat(str(fields[name])[:10]) for name in ("start", "end"))
    except (KeyError, ValueError):
        return None  # not dates: the merge says what is wrong with the record
    held = records.get(MODEL_OF["placement"], change["record_id"])
    if held is not None and (held.end, held.change_reason) == (end, "CUSTOD"):
        return None
    child = _child_born(store, records, fields, births)
    if child is None:
        return None
    placement = Placement(child_id=child.id, placement_type=str(fields.get("placement_type") or ""), start=start,
                          end=end, change_reason="CUSTOD")
    blocking = [p for p in placement_problems(placement, births[child.id], followed=False) if p.code == "234"]
    return policy.No("invalid", f"The placement {change['record_id']} cannot be taken: {blocking[0].words}") \
        if blocking else None


def _key_refusal(records: Records, change: dict[str, Any], keys: dict[str, str],
                 held: dict[tuple[str, str], str]) -> policy.No | None:
    """A record made by a form holds its submission key as the screens' records do: a second record with a key
    the server holds already is the same form stored twice, and is refused (storage/submissions.py)."""
    kind = change["kind"]
    if kind not in KEYED:
        return None
    fields = change.get("fields") or {}
    row = records.get(MODEL_OF[kind], change["record_id"])
    why = key_refusal(records.session, kind, change["record_id"], fields.get("submission_key"), row, keys, held)
    return policy.No("submission_key", why) if why else None


def _held_keys(session: Session, changes: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """The submission keys of these changes' records that the server holds already, looked up together (a form's
    records each carry one: a visit, wishes and feelings...)."""
    wanted: dict[str, set[str]] = {}
    for change in changes:
        key = (change.get("fields") or {}).get("submission_key")
        if change["kind"] in KEYED and isinstance(key, str):
            wanted.setdefault(change["kind"], set()).add(key)
    return key_holders(session, wanted) if wanted else {}


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


def _stamp_refusal(change: dict[str, Any], server_ms: int) -> policy.No | None:
    """A change whose change stamps are not stamps, or run more than a few minutes ahead of the server's time:
    taken, its version would win over every honest edit made until then. (The wire's names for the stamps
    are `clock` and `field_clocks`; the refusal codes keep theirs.)"""
    stamps = [change["clock"]] if change.get("clock") else []
    field_stamps = (change.get("fields") or {}).get("field_clocks")
    if isinstance(field_stamps, str):
        try:
            parsed = json.loads(field_stamps)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return policy.No("bad_clock", "The change's field change stamps are not valid.")
        stamps += [c if isinstance(c, str) else "" for c in parsed.values()]
    for stamp in stamps:
        why = hlc.check(stamp, server_ms)
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
