"""A node's side of sync: its enrolment, outbox and cursor, applying pulled pages, its status, and wiping."""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, SQLModel, col, select

from storage import audit
from storage.models import (
    AuditEvent,
    Child,
    Conflict,
    KeyringEntry,
    ManagedTeam,
    Outbox,
    Photo,
    RecordStamp,
    SyncState,
    Team,
    Worker,
    table_of,
    utcnow,
)
from storage.store import Store
from storage.sync.bulk import within_bytes
from storage.sync.changes import CHILD_PARTS, KIND_RANK, MESSAGE_BYTES, aware, child_id_of
from storage.sync.merge import Records, merge_change
from storage.sync.pull import PullPage

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


def pending_changes(store: Store, limit: int = 100, max_bytes: int = MESSAGE_BYTES, *,
                    skip: Collection[str] = ()) -> list[dict[str, Any]]:
    """The oldest local changes not yet pushed (refused ones are kept aside, not re-sent): at most `limit`,
    and no more once they reach `max_bytes` (at least one, however big), so photos make no huge request.
    `skip`: changes sent already and not yet answered (the batch the server is applying)."""
    condition: Any = col(Outbox.sent_at).is_(None)
    if skip:
        condition = condition & col(Outbox.change_id).not_in(list(skip))
    with store.session() as session:
        entries = session.exec(within_bytes(Outbox, condition, limit, max_bytes))
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

    The new changes carry later change stamps, so they fill the empty photos wherever they arrive; the old
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
    A child leaving the node is audited; past the page's `photo_limit`, the oldest photos the server
    holds leave the node (never one still to be sent).
    """
    enrolment = load_enrolment(store) if page.removals else None
    with store.session() as session:
        if page.directory:
            _apply_directory(store, session, page.directory)
        # A child leaves the device only once every change written for them has reached the server (or been
        # discarded by the worker): what is still waiting or set aside keeps them here.
        keep = _children_with_changes(store, session) & set(page.removals) if page.removals else set()
        removed = set(page.removals) - keep
        for child_id in sorted(removed):
            held = session.get(Child, child_id)
            why = (f"the case closed on {held.closed_on:%d %b %Y}" if held is not None and held.closed_on
                   else "no longer on this worker's caseload")
            _remove_child(session, child_id)
            audit.append(session, "left_device", "child", child_id, child_id=child_id,
                         worker_id=enrolment.worker_id if enrolment is not None else None,
                         detail=f"left this device: {why}")
        changes = [c for c in sorted(page.changes, key=lambda c: KIND_RANK.get(c["kind"], 9))
                   if (c["kind"] == "conflict"
                       or child_id_of(c["kind"], c["record_id"], c.get("fields") or {}) not in removed)
                   and not _imageless_photo(c)]
        records = Records(session)
        records.prefetch(changes, for_update=False)
        applied = 0
        for change in changes:
            applied += merge_change(store, session, change, judge_conflicts=False, records=records).changed
        records.write_new()
        if page.photo_limit is not None:
            _keep_newest_photos(store, session, page.photo_limit)
        session.merge(SyncState(key=CURSOR, value=str(page.cursor)))
        session.merge(SyncState(key=LAST_SYNCED, value=utcnow().isoformat()))
        if page.directory and page.directory_version:
            session.merge(SyncState(key=DIRECTORY_VERSION, value=page.directory_version))
    return applied


def _keep_newest_photos(store: Store, session: Session, limit: int) -> int:
    """Drops the photos past the newest `limit` this node holds, except any still to be sent (waiting or set
    aside in the outbox): the server holds the rest. Returns how many left."""
    count = session.exec(select(func.count()).select_from(Photo)).one()
    if count <= limit:
        return 0
    unsent = set(session.exec(select(Outbox.record_id).where(Outbox.kind == "photo")))
    older = [photo_id for photo_id in session.exec(
        select(Photo.id).order_by(col(Photo.created_at).desc(), col(Photo.id).desc()).offset(max(0, limit)))
        if photo_id not in unsent]
    for start in range(0, len(older), 500):
        chunk = older[start:start + 500]
        session.exec(delete(Photo).where(col(Photo.id).in_(chunk)))
        session.exec(delete(RecordStamp).where(col(RecordStamp.record_id).in_(chunk)))
    return len(older)


def _children_with_changes(store: Store, session: Session) -> set[str]:
    """The children this node's outbox (waiting or set aside) holds changes for."""
    out: set[str] = set()
    for entry in session.exec(select(Outbox)):
        change = store.open_payload("outbox", entry.change_id, entry.sealed)
        child_id = child_id_of(entry.kind, entry.record_id, change.get("fields") or {})
        if isinstance(child_id, str):
            out.add(child_id)
    return out


@dataclass
class SetAside:
    """A change the server refused, kept on this node with the reason, until its worker sends it again or
    discards it."""

    change_id: str
    kind: str
    record_id: str
    child_id: str | None
    reason: str
    written_at: datetime


def set_aside(store: Store) -> list[SetAside]:
    """The changes set aside on this node, oldest first."""
    with store.session() as session:
        reasons = {k.removeprefix(REFUSED_PREFIX): v for k, v in session.exec(
            select(SyncState.key, SyncState.value).where(col(SyncState.key).startswith(REFUSED_PREFIX)))}
        entries = session.exec(select(Outbox).where(col(Outbox.change_id).in_(sorted(reasons)))
                               .order_by(col(Outbox.seq))) if reasons else []
        out = []
        for entry in entries:
            fields = store.open_payload("outbox", entry.change_id, entry.sealed).get("fields") or {}
            child_id = child_id_of(entry.kind, entry.record_id, fields)
            out.append(SetAside(entry.change_id, entry.kind, entry.record_id,
                                child_id if isinstance(child_id, str) else None, reasons[entry.change_id],
                                entry.created_at))
        return out


def send_again(store: Store, change_id: str) -> None:
    """A set-aside change goes back in the queue (its record fixed, or the reason gone): sent at the next sync."""
    with store.session() as session:
        entry = session.exec(select(Outbox).where(Outbox.change_id == change_id)).first()
        if entry is not None:
            entry.sent_at = None
            session.add(entry)
        session.exec(delete(SyncState).where(col(SyncState.key) == REFUSED_PREFIX + change_id))


def discard_set_aside(store: Store, worker_id: str, change_id: str) -> None:
    """The worker discards a set-aside change: it leaves the node, and the node's audit trail (which reaches the
    server) says who discarded what, and why it had been refused."""
    aside = {a.change_id: a for a in set_aside(store)}.get(change_id)
    if aside is None:
        return
    with store.session() as session:
        session.exec(delete(Outbox).where(col(Outbox.change_id) == change_id))
        session.exec(delete(SyncState).where(col(SyncState.key) == REFUSED_PREFIX + change_id))
        audit.append(session, "discard", aside.kind, aside.record_id, worker_id=worker_id, child_id=aside.child_id,
                     detail=f"set-aside change {change_id} discarded; it had been refused: {aside.reason[:300]}")


def holds(store: Store, taking: Iterable[str] = ()) -> dict[str, Any]:
    """What this node still holds, reported to the server as it syncs (storage/sync/behind.py); as it will
    once the server takes the changes `taking` (the batch sent with this report)."""
    others = col(Outbox.change_id).not_in(list(taking))
    with store.session() as session:
        waiting = session.exec(select(func.count()).select_from(Outbox).where(col(Outbox.sent_at).is_(None), others)
                               ).one()
        aside = session.exec(select(func.count()).select_from(SyncState)
                             .where(col(SyncState.key).startswith(REFUSED_PREFIX))).one()
        conflicts = session.exec(select(func.count()).select_from(Conflict)
                                 .where(col(Conflict.resolved_at).is_(None))).one()
        oldest = session.exec(select(func.min(Outbox.created_at)).where(others)).one()
    return {"waiting": int(waiting), "set_aside": int(aside), "conflicts": int(conflicts),
            "waiting_since": aware(oldest).isoformat() if oldest is not None else None}


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
        table = table_of(model)
        ids = list(session.exec(select(table.c.id).where(table.c.child_id == child_id)))
        record_ids += ids
        if ids:
            session.exec(delete(model).where(table.c.child_id == child_id))
    session.exec(delete(Conflict).where(col(Conflict.child_id) == child_id))
    session.exec(delete(RecordStamp).where(col(RecordStamp.record_id).in_(record_ids)))
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
