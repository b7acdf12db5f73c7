"""The server's side of a pull: a page of what a worker's device should hold, and the directory."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, func, text
from sqlmodel import Session, SQLModel, col, select

from storage import audit
from storage.config import settings
from storage.hot import Hot
from storage.models import (
    ChangeLog,
    Child,
    Conflict,
    Draft,
    ManagedTeam,
    MutableRecord,
    Photo,
    RecordStamp,
    Team,
    Worker,
    child_part,
    record,
    table_of,
)
from storage.store import Store
from storage.sync.behind import record_holds
from storage.sync.changes import CHILD_PARTS, MESSAGE_BYTES, conflict_as_change, record_as_change
from storage.sync.devices import FINGERPRINT_SQL, Caller, caller_for, given_caller
from storage.sync.refusal import Reason, SyncRefused
from storage.sync.server_log import absorb_local_changes, latest_in
from storage.timescales.calendar import today_in_england


@dataclass
class PullPage:
    changes: list[dict[str, Any]]
    removals: list[str]
    directory: dict[str, list[dict[str, Any]]]
    cursor: int
    more: bool
    directory_version: str = ""
    photo_limit: int | None = None  # the most photos the device keeps (None: a server that sets none)


def pull_page(store: Store, worker: Worker, *, cursor: int, held: Iterable[str], child_ids: list[str] | None,
              limit: int = 200, children_per_page: int = 10, directory_version: str = "",
              max_bytes: int = MESSAGE_BYTES, today: date | None = None) -> PullPage:
    """One page of what this worker's device should hold: children it lacks whole, then the log after `cursor`.

    `held` is the children the device holds now; any it may no longer see are returned as removals.
    A page of whole children carries the log's latest number as its cursor (they are read after it, so
    they hold every change up to it), unless the log has changes the device still lacks for children it
    holds: then the cursor stays, and the log is read from there once every child is on the device.
    The directory (teams and workers) is sent only when it differs from `directory_version`, the version
    the device last received. A page stops at `max_bytes` (photos make records big) as well as at its
    counts, but always holds at least one child or change.
    A closed case the device holds stays on it for `SEEN_CLOSED_CASE_DAYS` after the day it closed (England's
    date, `today`), then is a removal; of the device's children's photos only the newest `SEEN_DEVICE_PHOTOS`
    are sent, and the page tells the device that number (`photo_limit`), so it drops older ones it holds.
    """
    return _pull(store, given_caller(store, None, worker), cursor=cursor, held=held,
                 child_ids=child_ids, limit=limit, children_per_page=children_per_page,
                 directory_version=directory_version, max_bytes=max_bytes, today=today)


def pull(store: Store, key: str, *, cursor: int, held: Iterable[str], child_ids: list[str] | None,
         limit: int = 200, directory_version: str = "", holds: dict[str, Any] | None = None) -> PullPage:
    """`pull_page` for the device whose token hashes to `key`, found in the page's own transaction; `holds`,
    when given, is what the device still holds (storage/sync/behind.py)."""
    return _pull(store, lambda session: caller_for(session, key, pulling=True), cursor=cursor, held=held,
                 child_ids=child_ids,
                 limit=limit, directory_version=directory_version, holds=holds)


def after_push(store: Store, batch_size: int, *, cursor: int, held: Iterable[str], limit: int = 200,
               directory_version: str = "", holds: dict[str, Any] | None = None) -> Any:
    """The pull of a request that also pushes a batch of `batch_size` changes: run in the push's transaction
    (`push.push(..., then=...)`), with the device it found. `holds` is what the device holds once this batch
    is taken (the node counts the batch as sent); a change of the batch refused is counted as set aside."""
    def then(session: Session, caller: Caller, outcome: Any, events: list[dict[str, Any]]) -> PullPage:
        after = holds
        if holds is not None:
            taken = len(outcome.applied) + len(outcome.duplicates) + len(outcome.outdated) + len(outcome.held)
            after = {**holds, "set_aside": int(holds.get("set_aside") or 0) + max(0, batch_size - taken)}
        return page_for(store, session, caller, cursor=cursor, held=held, child_ids=None, limit=limit,
                        directory_version=directory_version, holds=after, reads=events)
    return then


def _pull(store: Store, resolve: Any, *, cursor: int, held: Iterable[str], child_ids: list[str] | None,
          limit: int = 200, children_per_page: int = 10, directory_version: str = "",
          max_bytes: int = MESSAGE_BYTES, holds: dict[str, Any] | None = None,
          today: date | None = None) -> PullPage:
    # A device with nothing new costs four plain queries: who it is (with the log's latest number), which
    # children it may see, the log after its cursor for them, and the directory's fingerprint.
    if store.engine.dialect.name != "postgresql":
        absorb_local_changes(store)
    with store.session() as session:
        caller: Caller = resolve(session)
        reads: list[dict[str, Any]] = []
        page = page_for(store, session, caller, cursor=cursor, held=held, child_ids=child_ids, limit=limit,
                        children_per_page=children_per_page, directory_version=directory_version,
                        max_bytes=max_bytes, holds=holds, reads=reads, today=today)
        audit.append_many(session, reads)
        return page


def page_for(store: Store, session: Session, caller: Caller, *, cursor: int, held: Iterable[str],
             child_ids: list[str] | None, limit: int = 200, children_per_page: int = 10,
             directory_version: str = "", max_bytes: int = MESSAGE_BYTES, holds: dict[str, Any] | None = None,
             reads: list[dict[str, Any]], today: date | None = None) -> PullPage:
    """`pull_page` in the caller's transaction, for a caller already found (a pull, or the pull that
    follows a push in the same request). The audit events of the page (each child downloaded whole is a
    read) are added to `reads`, for the caller to append to the chain with its own."""
    held = set(held)
    if caller.waiting and store.engine.dialect.name == "postgresql":
        absorb_local_changes(store)
        caller.latest = latest_in(session)
    worker = caller.worker
    if holds is not None and caller.device is not None:
        record_holds(session, caller.device.id, holds)
    visible = caller.visible if caller.visible is not None else visible_child_ids(session, worker, caller.teams)
    if child_ids is not None:
        refused = [c for c in child_ids if c not in visible]
        if refused:
            for child_id in refused:
                # Noted on the transaction: recorded after it rolls back with the refusal below.
                audit.refuse(session, audit.Refusal(
                    "not this worker's child", kind="child", record_id=child_id, worker_id=worker.id,
                    device_id=caller.device.id if caller.device is not None else None))
            raise SyncRefused("That child is not on this worker's caseload or team, or does not exist.",
                              code=Reason.not_allowed)
        scope = set(child_ids)
        removals: list[str] = []
    else:
        # A closed case stays a while on the device that holds it, for its worker to finish recording.
        gone = held - visible
        staying = _closed_within(session, worker, caller.teams, gone, today or today_in_england()) if gone else set()
        scope = visible | staying
        removals = sorted(gone - staying)
    latest = caller.latest
    changes: list[dict[str, Any]] = []
    new_children = sorted(scope - held)
    whole = _children_within(session, new_children[:children_per_page], max_bytes)
    more = len(new_children) > len(whole)
    next_cursor = cursor
    photo_limit = settings().device_photos
    newest: set[str] | None = None
    if whole:
        newest = _newest_photos(session, sorted(scope), photo_limit)
        changes.extend(_whole_children(store, session, whole, newest))
        # A device taking a child's whole record is a read the trail keeps: who, which child, which
        # device. (Later pages carry only changes to children the device already holds.)
        device_id = caller.device.id if caller.device is not None else None
        reads.extend({"action": "read", "kind": "child", "record_id": child_id, "worker_id": worker.id,
                      "device_id": device_id, "child_id": child_id, "detail": "downloaded to the device"}
                     for child_id in whole)
        if not _log_waiting(session, cursor, latest, sorted(scope & held)):
            next_cursor = latest
    elif scope and latest > cursor:
        rows = _LOG_PAGE.rows(session, {"cursor": cursor, "latest": latest, "scope": sorted(scope),
                                        "limit": limit, "max_bytes": max_bytes})
        changes.extend(store.open_payload("change_log", change_id, sealed) for _seq, change_id, sealed in rows)
        if any(change["kind"] == "photo" for change in changes):  # only the newest photos go to a device
            newest = _newest_photos(session, sorted(scope), photo_limit)
            changes = [c for c in changes if c["kind"] != "photo" or c["record_id"] in newest]
        more = len(rows) == limit or sum(len(sealed) for _seq, _id, sealed in rows) >= max_bytes
        next_cursor = rows[-1][0] if more else latest
    else:
        next_cursor = latest
    fingerprint = caller.fingerprint if caller.fingerprint is not None else _directory_fingerprint(session)
    directory, version = _directory(store, session, worker, directory_version, fingerprint)
    return PullPage(changes=changes, removals=removals, directory=directory,
                    cursor=int(next_cursor or 0), more=more, directory_version=version, photo_limit=photo_limit)


_CHILD = table_of(Child)
_LOG = table_of(ChangeLog)


def visible_child_ids(session: Session, worker: Worker, teams: set[str]) -> set[str]:
    """The ids of `Store.visible_children`: open children on the worker's caseload or in their teams."""
    return _visible_to(session, [(worker.id, teams)])[0]


def visible_to_each(session: Session, callers: list[Caller]) -> None:
    """`visible_child_ids` of several callers (a group of pushes with their pulls), with one query for all: kept
    on each caller (`Caller.visible`)."""
    for caller, visible in zip(callers, _visible_to(session, [(c.worker.id, c.teams) for c in callers]), strict=True):
        caller.visible = visible


def _visible_to(session: Session, who: list[tuple[str, set[str]]]) -> list[set[str]]:
    """For each (worker id, their teams), the open children on the worker's caseload or in those teams: one query."""
    workers = sorted({worker_id for worker_id, _teams in who})
    teams = sorted({team for _worker_id, of in who for team in of})
    by_worker: dict[str, set[str]] = {}
    by_team: dict[str, set[str]] = {}
    for child_id, worker_id, team_id in _VISIBLE_TO_ANY.rows(session, {"worker_ids": workers, "teams": teams}):
        by_worker.setdefault(worker_id, set()).add(child_id)
        by_team.setdefault(team_id, set()).add(child_id)
    return [set(by_worker.get(worker_id, ())).union(*(by_team.get(team, ()) for team in of)) for worker_id, of in who]


_VISIBLE_TO_ANY = Hot(*(select(_CHILD.c.id, _CHILD.c.worker_id, _CHILD.c.team_id).where(
    _CHILD.c.closed_on.is_(None), mine | in_teams) for mine, in_teams in (
        (_CHILD.c.worker_id.in_(bindparam("worker_ids", expanding=True)),
         _CHILD.c.team_id.in_(bindparam("teams", expanding=True))),
        (_CHILD.c.worker_id == any_(bindparam("worker_ids", type_=ARRAY(String))),
         _CHILD.c.team_id == any_(bindparam("teams", type_=ARRAY(String)))))))


def closed_case_days() -> int:
    """Days a closed case stays on its worker's devices after the day it closed (`SEEN_CLOSED_CASE_DAYS`)."""
    return max(0, settings().closed_case_days)


def _closed_within(session: Session, worker: Worker, teams: set[str], child_ids: set[str], today: date) -> set[str]:
    """Of these children (held by the device, no longer visible), the closed cases the worker (or their teams)
    had, closed no more than `closed_case_days()` before `today`: they stay on the device till then."""
    since = today - timedelta(days=closed_case_days())
    theirs = col(Child.worker_id) == worker.id
    if teams:
        theirs = theirs | col(Child.team_id).in_(sorted(teams))
    return set(session.exec(select(Child.id).where(col(Child.id).in_(sorted(child_ids)),
                                                   col(Child.closed_on).is_not(None),
                                                   col(Child.closed_on) >= since, theirs)))


def _newest_photos(session: Session, child_ids: list[str], limit: int) -> set[str]:
    """The ids of the newest `limit` photos (with their images) of these children: those a device holds."""
    if not child_ids or limit <= 0:
        return set()
    return set(session.exec(select(Photo.id).where(col(Photo.child_id).in_(child_ids),
                                                   func.length(col(Photo.sealed)) > 0)
                            .order_by(col(Photo.created_at).desc(), col(Photo.id).desc()).limit(limit)))


def _log_page_query(in_scope: Any) -> Any:
    # `within_bytes` for the change log, as a Core query of the three columns a page needs.
    first = (select(_LOG.c.seq, func.length(_LOG.c.sealed).label("size"))
             .where(_LOG.c.seq > bindparam("cursor"), _LOG.c.seq <= bindparam("latest"), in_scope)
             .order_by(_LOG.c.seq).limit(bindparam("limit")).subquery())
    sized = select(first.c.seq, (func.sum(first.c.size).over(order_by=first.c.seq) - first.c.size)
                   .label("before")).subquery()
    return (select(_LOG.c.seq, _LOG.c.change_id, _LOG.c.sealed).join(sized, sized.c.seq == _LOG.c.seq)
            .where(sized.c.before < bindparam("max_bytes")).order_by(_LOG.c.seq))


_LOG_PAGE = Hot(_log_page_query(_LOG.c.child_id.in_(bindparam("scope", expanding=True))),
                _log_page_query(_LOG.c.child_id == any_(bindparam("scope", type_=ARRAY(String)))))


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


def _whole_children(store: Store, session: Session, child_ids: list[str],
                    photos: set[str] | None = None) -> list[dict[str, Any]]:
    """These children with every record about them, as changes: one query a table for all of them; of their
    photos, only those in `photos` when given (the newest the device keeps)."""
    children = {c.id: c for c in session.exec(select(Child).where(col(Child.id).in_(child_ids)))}
    parts: dict[str, list[SQLModel]] = {child_id: [] for child_id in child_ids}
    for model in CHILD_PARTS:
        if model is Draft:
            continue  # drafts stay on the device that typed them
        for row in session.exec(select(model).where(table_of(model).c.child_id.in_(child_ids))):
            if model is Photo and not child_part(row).sealed:
                continue  # a photo whose image never arrived (sent by a Seen that did not send images)
            if model is Photo and photos is not None and record(row).id not in photos:
                continue  # older than the newest the device keeps
            parts[child_part(row).child_id].append(row)
    unstamped = [record(row).id for rows in parts.values() for row in rows
                 if not isinstance(row, MutableRecord)]
    stamps: dict[str, str] = {}
    for start in range(0, len(unstamped), 500):
        stamps.update(session.exec(select(RecordStamp.record_id, RecordStamp.stamp).where(
            col(RecordStamp.record_id).in_(unstamped[start:start + 500]))).all())
    conflicts: dict[str, list[Conflict]] = {}
    for conflict in session.exec(select(Conflict).where(col(Conflict.child_id).in_(child_ids))):
        conflicts.setdefault(conflict.child_id or "", []).append(conflict)
    out: list[dict[str, Any]] = []
    for child_id in child_ids:
        child = children.get(child_id)
        if child is None:
            continue
        out.append(record_as_change(store, session, child, stamps))
        out.extend(record_as_change(store, session, row, stamps) for row in parts[child_id])
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


_FINGERPRINT = Hot(text(f"SELECT {FINGERPRINT_SQL}"))  # noqa: S608 - our own table names
