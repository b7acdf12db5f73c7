"""The store: one node's records, sealed at rest, with its keyring, outbox and audit trail.

This is sealing's one entry point. Pages and the sync server ask the store for records and get them
opened (`Opened`: the clear row and its body together); writes are sealed here, with their outbox entry
and audit event in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import bindparam, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from storage import audit, policy, sealing
from storage.db import make_engine, migrate, session_scope
from storage.hlc import HybridClock
from storage.models import (
    BODY_OF,
    KIND_OF,
    CarePlan,
    CarePlanAction,
    Child,
    KeyringEntry,
    LifeStoryEntry,
    ManagedTeam,
    MutableRecord,
    Outbox,
    Placement,
    Review,
    Role,
    Visit,
    WishesAndFeelings,
    Worker,
    new_id,
    table_of,
    utcnow,
)

DATA_KEY = "data_key"
SEALED_PASSWORD = "sealed$"  # a web password hash kept sealed (on a node), not in clear
PASSWORD_KIND = "worker_password"
NODE_ID = "node_id"
ID_NAMESPACE = uuid.UUID("6f1d7c1e-5e3b-4f5a-9a57-5ee05ee05ee0")

R = TypeVar("R", bound=SQLModel)


class Locked(Exception):
    """The store is locked: nothing sealed can be read or written until it is unlocked."""

    def __init__(self) -> None:
        super().__init__("Seen is locked. Unlock it with your passphrase to see or record anything.")


class NotAllowed(audit.Refusal):
    """The signed-in worker may not see or change this record (audited when it names the record)."""


class SignedOff(NotAllowed):
    """A manager has signed this record off: it can no longer be changed."""

    def __init__(self) -> None:
        super().__init__("A manager has signed this record off, so it cannot be changed. "
                         "Record a new one that supersedes it instead.")


# What a worker without the role is told; a refusal reads the same whatever was asked for.
ROLE_REFUSALS = {
    Role.manager.value: "This page is for team managers.",
    Role.admin.value: "This page is for administrators.",
}


@dataclass
class Opened(Generic[R]):
    """A record with its sealed body opened: clear columns and body fields read as one."""

    row: R
    body: Any

    def __getattr__(self, name: str) -> Any:
        row = self.__dict__["row"]
        if name in type(row).model_fields:
            return getattr(row, name)
        return getattr(self.__dict__["body"], name)


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    candidate = hash_password(password, bytes.fromhex(salt_hex)).split("$")[2]
    return hmac.compare_digest(candidate, digest_hex)


class Store:
    """One node's database and its data key."""

    def __init__(self, engine: Engine, *, outbox: bool = True) -> None:
        self.engine = engine
        self.outbox_enabled = outbox
        self._sealer: sealing.Sealer | None = None
        self._ref_key: bytes | None = None
        self._lock = threading.Lock()
        self.clock = HybridClock(self.node_id())

    # ------------------------------------------------------------ opening and keys

    @classmethod
    def open(cls, url: str | None = None, *, outbox: bool = True) -> Store:
        """Connects to the database and brings its schema up to date."""
        engine = make_engine(url)
        migrate(engine)
        return cls(engine, outbox=outbox)

    def node_id(self) -> str:
        with session_scope(self.engine) as session:
            entry = session.get(KeyringEntry, NODE_ID)
            if entry is None:
                entry = KeyringEntry(name=NODE_ID, value=uuid.uuid4().hex[:12])
                session.add(entry)
            return entry.value

    @property
    def locked(self) -> bool:
        return self._sealer is None

    @property
    def sealer(self) -> sealing.Sealer:
        if self._sealer is None:
            raise Locked()
        return self._sealer

    def is_initialised(self) -> bool:
        with session_scope(self.engine) as session:
            return session.get(KeyringEntry, DATA_KEY) is not None

    def key_mode(self) -> str | None:
        with session_scope(self.engine) as session:
            entry = session.get(KeyringEntry, DATA_KEY)
            return sealing.WrappedKey.from_json(entry.value).mode if entry else None

    def _set_data_key(self, data_key: bytes) -> None:
        self._sealer = sealing.Sealer(data_key)
        self._ref_key = hmac.new(data_key, b"seen:external-ref", hashlib.sha256).digest()
        audit.adopt_key(self.engine, sealing.audit_key(data_key))

    def _save_wrapped(self, wrapped: sealing.WrappedKey, *, create: bool = False) -> None:
        with session_scope(self.engine) as session:
            entry = session.get(KeyringEntry, DATA_KEY)
            if entry is None:
                session.add(KeyringEntry(name=DATA_KEY, value=wrapped.to_json()))
            else:
                if create:
                    raise RuntimeError("This store already has a data key.")
                entry.value = wrapped.to_json()
                session.add(entry)

    def _load_wrapped(self) -> sealing.WrappedKey:
        with session_scope(self.engine) as session:
            entry = session.get(KeyringEntry, DATA_KEY)
            if entry is None:
                raise Locked()
            return sealing.WrappedKey.from_json(entry.value)

    def initialise_with_passphrase(self, passphrase: str) -> None:
        """A new personal node: makes a data key and wraps it with the worker's passphrase."""
        data_key = sealing.new_data_key()
        self._save_wrapped(sealing.wrap_with_passphrase(data_key, passphrase), create=True)
        self._set_data_key(data_key)

    def initialise_with_server_key(self, server_key: bytes) -> None:
        data_key = sealing.new_data_key()
        self._save_wrapped(sealing.wrap_with_server_key(data_key, server_key), create=True)
        self._set_data_key(data_key)

    def unlock(self, passphrase: str, now: Callable[[], float] = time.time) -> None:
        """Unlocks a personal node. Wrong passphrases back off, and the back-off survives restarts."""
        with self._lock:
            wrapped = self._load_wrapped()
            try:
                data_key = sealing.unlock_with_passphrase(wrapped, passphrase, now)
            except sealing.WrongPassphrase:
                self._save_wrapped(wrapped)
                raise
            # Wrapped with an older, cheaper scrypt: wrapped again (a new salt) at today's cost.
            self._save_wrapped(sealing.wrap_with_passphrase(data_key, passphrase) if wrapped.outdated else wrapped)
            self._set_data_key(data_key)
            self._seal_password_hashes()

    def password_hash_of(self, worker: Worker) -> str:
        """The worker's web password hash, opened if it is kept sealed (on a node: `seal_password_hash`)."""
        stored = worker.password_hash or ""
        if not stored.startswith(SEALED_PASSWORD):
            return stored
        raw = base64.b64decode(stored[len(SEALED_PASSWORD):])
        return str(self.sealer.open(PASSWORD_KIND, worker.id, raw)["hash"])

    def seal_password_hash(self, worker_id: str, password_hash: str) -> str:
        """A web password hash as a node keeps it: sealed under the data key (the passphrase's, on a laptop),
        so a copy of the laptop's database gives nothing to guess the worker's password from."""
        if not password_hash or password_hash.startswith(SEALED_PASSWORD):
            return password_hash
        sealed = self.sealer.seal(PASSWORD_KIND, worker_id, {"hash": password_hash})
        return SEALED_PASSWORD + base64.b64encode(sealed).decode()

    def _seal_password_hashes(self) -> None:
        # A laptop node set up by an earlier Seen kept its worker's hash in clear: sealed at its next unlock.
        with session_scope(self.engine) as session:
            for worker in session.exec(select(Worker).where(Worker.password_hash != "")):
                if not worker.password_hash.startswith(SEALED_PASSWORD):
                    worker.password_hash = self.seal_password_hash(worker.id, worker.password_hash)
                    session.add(worker)

    def unlock_with_server_key(self, server_key: bytes) -> None:
        self._set_data_key(sealing.unlock_with_server_key(self._load_wrapped(), server_key))

    def change_passphrase(self, old: str, new: str) -> None:
        """Rewraps the data key under a new passphrase; no record is re-sealed."""
        with self._lock:
            wrapped = self._load_wrapped()
            try:
                data_key = sealing.unlock_with_passphrase(wrapped, old)
            except sealing.WrongPassphrase:
                self._save_wrapped(wrapped)
                raise
            self._save_wrapped(sealing.wrap_with_passphrase(data_key, new))
            self._set_data_key(data_key)

    def change_server_key(self, old: bytes, new: bytes) -> None:
        """Rewraps the data key under a new server key, in one transaction with its audit event; no record
        is re-sealed. Refused (`SealError`), changing nothing, unless `old` opens the data key now."""
        with self._lock:
            data_key = sealing.unlock_with_server_key(self._load_wrapped(), old)
            self._set_data_key(data_key)  # the data key is the same: the audit chain's key with it
            with session_scope(self.engine) as session:
                entry = session.get(KeyringEntry, DATA_KEY)
                if entry is None:
                    raise Locked()
                entry.value = sealing.wrap_with_server_key(data_key, new).to_json()
                session.add(entry)
                audit.append(session, "update", "keyring", DATA_KEY, detail="server key changed")

    def lock(self) -> None:
        self._sealer = None
        self._ref_key = None
        audit.set_key(self.engine, None)

    def ref_hash(self, external_ref: str) -> str:
        """A keyed hash of a council's case id: re-imports find the child without the id in clear."""
        if self._ref_key is None:
            raise Locked()
        return hmac.new(self._ref_key, external_ref.strip().encode(), hashlib.sha256).hexdigest()

    def id_for_ref(self, kind: str, *parts: str) -> str:
        """A stable record id from a council's reference, so importing twice finds the same record."""
        return str(uuid.uuid5(ID_NAMESPACE, f"{kind}:{self.ref_hash('|'.join(parts))}"))

    # ------------------------------------------------------------ sealing

    def seal(self, row: SQLModel, body: BaseModel) -> None:
        row.sealed = self.sealed_body(KIND_OF[type(row)], row, body.model_dump(mode="json"))

    def sealed_body(self, kind: str, row: Any, body: dict[str, Any]) -> bytes:
        """A record's body sealed with the clear columns it belongs with (`SEALED_WITH`): moved to another
        child, or given another kind or status, outside Seen, it no longer opens."""
        binding = _binding(row)
        return self.sealer.seal(kind, row.id, {**body, SEALED_WITH: binding} if binding else body)

    def opened(self, row: R) -> Opened[R]:
        """The record with its body opened. A body sealed with other clear columns than the row now has (its
        child, kind or status changed outside Seen) is refused (`SealError`); bodies sealed before Seen
        recorded them open as before."""
        body_type = BODY_OF[type(row)]
        kind = KIND_OF[type(row)]
        raw = self.sealer.open(kind, row.id, row.sealed)  # type: ignore[attr-defined]
        sealed_with = raw.pop(SEALED_WITH, None)
        if sealed_with is not None:
            moved = sorted(name for name, value in sealed_with.items() if _as_loaded(row, name) != value)
            if moved:
                raise sealing.SealError(
                    f"The sealed {kind} {row.id} was sealed with another {' and '.join(moved)} than its record now "  # type: ignore[attr-defined]
                    "shows: it was changed outside Seen, so it was not opened. Tell your administrator.")
        return Opened(row, body_type.model_validate(raw))

    def seal_payload(self, kind: str, record_id: str, payload: dict[str, Any]) -> bytes:
        return self.sealer.seal(kind, record_id, payload)

    def open_payload(self, kind: str, record_id: str, sealed_bytes: bytes) -> dict[str, Any]:
        opened = self.sealer.open(kind, record_id, sealed_bytes)
        opened.pop(SEALED_WITH, None)  # a record's body: what it was sealed with is checked by `opened`
        return opened

    # ------------------------------------------------------------ writing

    def write(
        self,
        session: Session,
        row: SQLModel,
        body: BaseModel | None = None,
        *,
        actor: Worker | None = None,
        device_id: str | None = None,
        action: str = "update",
        changed: Iterable[str] | None = None,
        detail: str | None = None,
        blob: bytes | None = None,
        at: datetime | None = None,
    ) -> None:
        """Seals and saves one record with its outbox entry and audit event, in the caller's transaction.

        `at` is when a mutable record changed (default now): a visit's actions arising carry the visit's time.

        `blob` is the sealed content of a record that holds bytes rather than a body (a photo's image): it
        is sealed as it is, and its change carries it whole, base64 in `{"image": ...}` (a photo never changes).
        """
        changed = list(changed) if changed is not None else None
        self._refuse_change_after_sign_off(session, row, body)
        body_json = body.model_dump(mode="json") if body is not None else None
        if body_json is not None:
            row.sealed = self.sealed_body(KIND_OF[type(row)], row, body_json)
        elif blob is None and type(row) in BODY_OF and _binding(row) and getattr(row, "sealed", None):
            # A clear column it is sealed with may have changed: sealed again with the body as it is.
            row.sealed = self.sealed_body(KIND_OF[type(row)], row, self.open_payload(
                KIND_OF[type(row)], row.id, row.sealed))  # type: ignore[attr-defined]
        if blob is not None:
            row.sealed = self.sealer.seal_bytes(KIND_OF[type(row)], row.id, blob)  # type: ignore[attr-defined]
            body_json = {"image": base64.b64encode(blob).decode()}
        kind = KIND_OF.get(type(row), type(row).__tablename__)
        record_id = row.id  # type: ignore[attr-defined]
        stamp = self.clock.now()
        base_clocks: dict[str, str] = {}  # what each changed field's clock was: sync tells edits that crossed
        if isinstance(row, MutableRecord):
            clocks = json.loads(row.field_clocks or "{}")
            fields = list(changed) if changed is not None else [*_clear_fields(row), *(_body_fields(body))]
            base_clocks = {name: clocks.get(name, "") for name in fields}
            for name in fields:
                clocks[name] = stamp
            row.field_clocks = json.dumps(clocks, sort_keys=True)
            row.revision += 1
            row.updated_at = at or utcnow()
        session.add(row)
        # Flushed now so records written in one transaction reach the database parent first (foreign keys).
        session.flush()
        # The outbox entry and the audit event are plain inserts, not ORM objects: nothing reads them back in
        # this transaction, and the unit of work was most of a save's time (a visit save is CPU-bound).
        if self.outbox_enabled and kind in SYNCED_KINDS:
            change = {
                "kind": kind,
                "record_id": record_id,
                "fields": row.model_dump(mode="json", exclude={"sealed"}),
                "body": body_json,
                "clock": stamp,
                "base_clocks": base_clocks,
            }
            change_id = new_id()
            session.execute(_OUTBOX_INSERT, {
                "change_id": change_id, "kind": kind, "record_id": record_id, "created_at": utcnow(),
                "sent_at": None, "sealed": self.sealer.seal("outbox", change_id, change)})
        audit.append_many(session, [{
            "action": action,
            "kind": kind,
            "record_id": record_id,
            "worker_id": actor.id if actor else None,
            "device_id": device_id,
            "child_id": getattr(row, "child_id", None) or (record_id if kind == "child" else None),
            "detail": detail if detail is not None else ",".join(sorted(changed)) if changed else "",
        }])

    def _refuse_change_after_sign_off(self, session: Session, row: SQLModel, body: BaseModel | None) -> None:
        """Signed-off records are final. Writing one again unchanged (a retried sync) is let through."""
        model = type(row)
        if model not in SIGNED_OFF_FINAL or sa_inspect(row).transient:
            # A new object is inserted: if a row with its id were stored, the insert would fail on the key.
            return
        table = table_of(model)
        # The stored row as it is in the database, not the caller's modified copy.
        with session.no_autoflush:
            stored = session.connection().execute(_STORED_ROW[model], {"id": row.id}).first()  # type: ignore[attr-defined]
        if stored is None or not policy.is_final(stored):
            return
        clear = {c.name: getattr(stored, c.name) for c in table.columns if c.name != "sealed"}
        same_clear = all(same_value(clear[name], getattr(row, name)) for name in clear)
        same_body = body is None or self.open_payload(KIND_OF[model], row.id, stored.sealed) == body.model_dump(  # type: ignore[attr-defined]
            mode="json")
        if not (same_clear and same_body):
            raise SignedOff()

    def session(self) -> Any:
        return session_scope(self.engine)

    # ------------------------------------------------------------ who may see what

    def managed_team_ids(self, session: Session, worker: Worker) -> set[str]:
        teams = set(session.exec(select(ManagedTeam.team_id).where(ManagedTeam.manager_id == worker.id)))
        if worker.role == Role.manager and worker.team_id:
            teams.add(worker.team_id)
        return teams

    def may_see_child(self, session: Session, worker: Worker, child: Child) -> bool:
        """Practitioners see their own caseload; managers their teams'; admins no case records (the policy's
        rule, `policy.Actor.may_see`, with the teams read only when the child is not the worker's own)."""
        if child.worker_id == worker.id:
            return True
        return policy.actor(worker, self.managed_team_ids(session, worker)).may_see(child)

    def visible_children(self, session: Session, worker: Worker) -> list[Child]:
        query = select(Child).where(col(Child.closed_on).is_(None))
        teams = self.managed_team_ids(session, worker)
        if teams:
            query = query.where((col(Child.team_id).in_(teams)) | (Child.worker_id == worker.id))
        else:
            query = query.where(Child.worker_id == worker.id)
        return list(session.exec(query))

    def require_role(self, session: Session, worker: Worker, role: str, *, what: str,
                     device_id: str | None = None) -> None:
        """Refuses, and audits, a worker without the role a screen or action needs ("manager", "admin").

        A manager is anyone who manages a team; an admin manages workers, teams and devices but reads
        no case records unless they manage a team too.
        """
        if role == Role.manager.value:
            allowed = bool(self.managed_team_ids(session, worker))
        else:
            allowed = worker.role == Role.admin.value
        if not (allowed and worker.active):
            raise audit.refuse(session, NotAllowed(ROLE_REFUSALS[role], kind="page", record_id=what,
                                                   worker_id=worker.id, device_id=device_id))

    def require_manager_of(self, session: Session, worker: Worker, child_id: str, *, kind: str = "child",
                           record_id: str | None = None, device_id: str | None = None) -> Child:
        """The child, if this worker manages its team; a refusal is audited and reads as 'not found'."""
        child = session.get(Child, child_id) if child_id else None
        if child is None or not worker.active or child.team_id not in self.managed_team_ids(session, worker):
            raise audit.refuse(session, NotAllowed(
                "That is not in a team you manage, or does not exist.", kind=kind, record_id=record_id or child_id,
                worker_id=worker.id, device_id=device_id, child_id=child.id if child else None))
        return child

    def child_for(self, session: Session, worker: Worker, child_id: str, *, device_id: str | None = None) -> Child:
        """The child, if this worker may see it; a refusal is audited and reads as 'not found'."""
        child = session.get(Child, child_id)
        if child is None or not self.may_see_child(session, worker, child):
            # Recorded by session_scope however this transaction ends.
            raise audit.refuse(session, NotAllowed(
                "That child is not on your caseload, or does not exist.", kind="child", record_id=child_id,
                worker_id=worker.id, device_id=device_id, child_id=child_id if child else None))
        return child

    # ------------------------------------------------------------ reading a child's records

    def child_records(self, session: Session, child_id: str) -> dict[str, list[Any]]:
        """Everything held about one child, opened, grouped by kind. A record that does not open (changed
        outside Seen: `opened`) is left out, named under "unopened" and audited, so the rest still shows."""
        unopened: list[str] = []

        def rows(model: type[SQLModel], order: Any) -> list[Any]:
            found = []
            for row in session.exec(select(model).where(model.child_id == child_id).order_by(order)):  # type: ignore[attr-defined]
                try:
                    found.append(self.opened(row))
                except sealing.SealError:
                    kind, record_id = KIND_OF[model], str(getattr(row, "id", ""))
                    unopened.append(f"{kind.replace('_', ' ')} {record_id[:8]}")
                    audit.append(session, "unreadable", kind, record_id, child_id=child_id,
                                 detail="its sealed body does not belong with its record as stored")
            return found

        return {
            "placements": rows(Placement, col(Placement.start).desc()),
            "visits": rows(Visit, col(Visit.visited_at).desc()),
            "wishes_and_feelings": rows(WishesAndFeelings, col(WishesAndFeelings.on).desc()),
            "life_story": rows(LifeStoryEntry, col(LifeStoryEntry.on).desc()),
            "care_plans": rows(CarePlan, col(CarePlan.start).desc()),
            "actions": rows(CarePlanAction, col(CarePlanAction.due)),
            "reviews": rows(Review, col(Review.scheduled_for).desc()),
            "unopened": unopened,
        }


SYNCED_KINDS = {
    "child",
    "missing_episode",
    "placement",
    "visit",
    "wishes_and_feelings",
    "life_story",
    "photo",
    "care_plan",
    "care_plan_action",
    "review",
}


# A record's clear columns its sealed body is bound to, recorded in the body under this key when sealed.
SEALED_WITH = "_sealed_with"
BOUND_COLUMNS = ("child_id", "kind", "status")


def _binding(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in BOUND_COLUMNS if name in type(row).model_fields}


def _as_loaded(row: Any, name: str) -> Any:
    """A column's value as the database held it: a row being changed in memory (its status set, then its
    body opened to seal it again) is checked against what it was sealed with, not the change under way."""
    state = sa_inspect(row, raiseerr=False)
    if state is not None and not state.transient and name in state.attrs:
        history = state.attrs[name].history
        if history.deleted:
            return history.deleted[0]
    return getattr(row, name, None)


# Records a manager signs off, after which they are final.
SIGNED_OFF_FINAL = (Visit, WishesAndFeelings, LifeStoryEntry)

# Statements every save runs, built once.
_STORED_ROW = {model: table_of(model).select().where(table_of(model).c.id == bindparam("id"))
               for model in SIGNED_OFF_FINAL}
_OUTBOX_INSERT = insert(table_of(Outbox))


def same_value(stored: Any, current: Any) -> bool:
    # SQLite hands back naive datetimes for aware ones written: compare them as UTC.
    if isinstance(stored, datetime) and isinstance(current, datetime):
        if stored.tzinfo is None:
            stored = stored.replace(tzinfo=UTC)
        if current.tzinfo is None:
            current = current.replace(tzinfo=UTC)
    return stored == current


def _clear_fields(row: SQLModel) -> list[str]:
    skip = {"id", "sealed", "revision", "field_clocks", "updated_at"}
    return [name for name in type(row).model_fields if name not in skip]


def _body_fields(body: BaseModel | None) -> list[str]:
    return [f"body.{name}" for name in type(body).model_fields] if body is not None else []


def age_on(date_of_birth: date | None, on: date) -> int | None:
    if date_of_birth is None:
        return None
    return on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
