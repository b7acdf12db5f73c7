"""Devices: enrolment codes, enrolling and revoking, and who a sync request comes from."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, exists, func, literal_column, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from storage import audit
from storage.hot import Hot
from storage.models import (
    ChangeLog,
    Device,
    EnrolmentCode,
    ManagedTeam,
    Outbox,
    Role,
    Team,
    Worker,
    table_of,
    utcnow,
)
from storage.store import Store
from storage.sync.changes import aware
from storage.sync.refusal import Reason, SyncRefused
from storage.sync.server_log import latest_in

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud and typed on a phone


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        if entry is None or entry.used_at is not None or aware(entry.expires_at) < utcnow():
            audit.refuse(session, audit.Refusal("", kind="enrolment_code", record_id="enrol", detail=(
                "not valid" if entry is None else "used already" if entry.used_at else "expired")
                + (f" from {address[:64]}" if address else "")))
            raise SyncRefused("That enrolment code is not valid: it may be mistyped, used already or expired. "
                              "Ask your manager or an administrator for a new one.", code=Reason.bad_code)
        worker = session.get(Worker, entry.worker_id)
        if worker is None or not worker.active:
            raise SyncRefused("The worker this code was issued for is no longer active.", code=Reason.bad_code)
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
            raise SyncRefused(f"There is no device {device_id}.", code=Reason.not_found)
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
        caller = caller_for(session, token_hash(token))
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
    fingerprint: str | None = None  # the directory's (`pull._directory_fingerprint`), when read with the caller
    visible: set[str] | None = None  # the children the worker may see (`pull.visible_child_ids`), when read already


_DEVICE, _WORKER, _MANAGED = (table_of(model) for model in (Device, Worker, ManagedTeam))
# The directory's fingerprint on PostgreSQL (see `pull._directory_fingerprint`).
FINGERPRINT_SQL = "concat_ws(',', " + ", ".join(
    f"(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM \"{model.__tablename__}\")"
    for model in (Team, Worker, ManagedTeam)) + ")"
# SQLAlchemy's own select: SQLModel's is typed for models and up to four columns, not columns of three tables.
_WHO = (
    core_select(*(c.label(f"device_{c.name}") for c in _DEVICE.c), *(c.label(f"worker_{c.name}") for c in _WORKER.c),
                _MANAGED.c.team_id.label("managed_team"),
                exists(select(table_of(Outbox).c.seq)).label("waiting"),
                select(func.max(table_of(ChangeLog).c.seq)).scalar_subquery().label("latest"))
    .select_from(_DEVICE.outerjoin(_WORKER, _WORKER.c.id == _DEVICE.c.worker_id)
                 .outerjoin(_MANAGED, _MANAGED.c.manager_id == _DEVICE.c.worker_id)))
_WHO_MANY = _WHO.where(_DEVICE.c.token_hash == any_(bindparam("token_hashes", type_=ARRAY(String))))
_WHO = _WHO.where(_DEVICE.c.token_hash == bindparam("token_hash"))
_CALLER = Hot(_WHO)
# For a pull, on PostgreSQL, with the directory's fingerprint as one more column: a device with nothing new
# then costs two statements, this and the children it may see.
_CALLER_PULLING = Hot(_WHO, _WHO.add_columns(literal_column(f"({FINGERPRINT_SQL})").label("fingerprint")))
_SEEN_NOW = Hot(update(_DEVICE).where(_DEVICE.c.id == bindparam("device_id")).values(last_seen_at=bindparam("now")))
# Several devices at once, for a group of pushes (storage/sync/push.py `push_group`), on PostgreSQL.
_CALLERS = Hot(_WHO_MANY.add_columns(literal_column(f"({FINGERPRINT_SQL})").label("fingerprint")))
_SEEN_NOW_MANY = Hot(update(_DEVICE).where(_DEVICE.c.id == any_(bindparam("device_ids", type_=ARRAY(String))))
                     .values(last_seen_at=bindparam("now")))


def _no_token() -> SyncRefused:
    return SyncRefused("This request has no device token. Enrol the device first.", code=Reason.no_token)


_DEVICE_COLUMNS = [c.name for c in _DEVICE.c]
_WORKER_COLUMNS = [c.name for c in _WORKER.c]


def caller_for(session: Session, key: str, *, pulling: bool = False) -> Caller:
    """The device whose token hashes to `key`, its worker and their teams, with one query (every sync
    request's first step); a revoked device is told to wipe itself."""
    if not key:
        raise _no_token()
    rows = (_CALLER_PULLING if pulling else _CALLER).rows(session, {"token_hash": key})
    caller, seen = _caller_of(session, key, rows)
    if seen and caller.device is not None:
        _SEEN_NOW.rows(session, {"device_id": seen, "now": caller.device.last_seen_at})
    return caller


def callers_for(session: Session, keys: list[str]) -> list[Caller | SyncRefused]:
    """`caller_for` of several devices (a group of pushes, on PostgreSQL; each with the directory's fingerprint
    as when pulling), with one query for all and one update of the devices' last sync. For a device unknown or
    revoked, the refusal `caller_for` would raise (noted on the transaction for the audit, as it would be)."""
    rows = _CALLERS.rows(session, {"token_hashes": sorted({key for key in keys if key})})
    token_at = _DEVICE_COLUMNS.index("token_hash")
    by_key: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_key.setdefault(row[token_at], []).append(row)
    callers: list[Caller | SyncRefused] = []
    seen = []
    for key in keys:
        try:
            if not key:
                raise _no_token()
            caller, device_id = _caller_of(session, key, by_key.get(key, []))
        except SyncRefused as refusal:
            callers.append(refusal)
            continue
        callers.append(caller)
        if device_id:
            seen.append(device_id)
    if seen:
        _SEEN_NOW_MANY.rows(session, {"device_ids": sorted(set(seen)), "now": utcnow()})
    return callers


def _caller_of(session: Session, key: str, rows: list[tuple[Any, ...]]) -> tuple[Caller, str | None]:
    """The caller the rows of `_WHO` for one token describe, and its device's id if its last sync is to be
    written now (at most once a minute); a refusal, audited, if there are none or the device is revoked."""
    if not rows:
        # Audited by a fragment of the token's hash: repeated tries with one token read as one caller.
        audit.refuse(session, audit.Refusal("", kind="device_token", record_id=f"token-{key[:12]}",
                                            detail="unknown token"))
        raise SyncRefused("This device is not enrolled with this server.", code=Reason.unknown_device)
    first = rows[0]
    devices, workers = len(_DEVICE_COLUMNS), len(_WORKER_COLUMNS)
    found = dict(zip(_DEVICE_COLUMNS, first[:devices], strict=True))
    owner = dict(zip(_WORKER_COLUMNS, first[devices:devices + workers], strict=True))
    if found["revoked_at"] is not None or owner["id"] is None or not owner["active"]:
        audit.refuse(session, audit.Refusal("", kind="device_token", record_id=found["id"], worker_id=owner["id"],
                                            device_id=found["id"], detail="revoked device"))
        raise SyncRefused("This device has been revoked. Seen has wiped its local records; "
                          "ask an administrator to enrol it again.", code=Reason.revoked, wipe=True)
    now = utcnow()
    seen = None
    if found["last_seen_at"] is None or now - aware(found["last_seen_at"]) > timedelta(minutes=1):
        seen = found["id"]
        found["last_seen_at"] = now
    # Snapshots for this request, made without the ORM's bookkeeping (a mapped row costs ~50 µs to make),
    # so they cannot be changed or added to a session.
    device, worker = Device.model_construct(**found), Worker.model_construct(**owner)
    _managed, waiting, latest, *fingerprint = first[devices + workers:]
    teams = {row[devices + workers] for row in rows if row[0] == device.id} - {None}
    if worker.role == Role.manager and worker.team_id:
        teams.add(worker.team_id)  # as Store.managed_team_ids: a manager sees their own team
    return Caller(device, worker, teams, waiting=bool(waiting), latest=int(latest or 0),
                  fingerprint=fingerprint[0] if fingerprint else None), seen


def given_caller(store: Store, device: Device | None, worker: Worker) -> Any:
    """A caller already known (not looked up by token): its teams and the outbox are read in the transaction."""
    def resolve(session: Session) -> Caller:
        waiting = bool(_OUTBOX_WAITING.rows(session))
        return Caller(device, worker, store.managed_team_ids(session, worker), waiting=waiting,
                      latest=latest_in(session))
    return resolve


_OUTBOX_WAITING = Hot(select(table_of(Outbox).c.seq).limit(1))
