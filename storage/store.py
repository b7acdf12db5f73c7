"""The store: one node's records, sealed at rest, with its keyring, outbox and audit trail.

This is sealing's one entry point. Pages and the sync server ask the store for records and get them
opened (`Opened`: the clear row and its body together); writes are sealed, with their outbox entry and
audit event in the same transaction (storage/writing.py), and who may see what is decided in
storage/access.py; the store's methods of the same names call them, so callers need only the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from storage import access, allocations, audit, sealing, writing  # noqa: F401 - allocations: its flush hook
from storage.access import NotAllowed as NotAllowed  # callers import these from the store
from storage.db import make_engine, migrate, session_scope
from storage.hlc import ChangeStamper
from storage.models import (
    BODY_OF,
    KIND_OF,
    CarePlan,
    CarePlanAction,
    Child,
    KeyringEntry,
    LifeStoryEntry,
    Placement,
    Review,
    Visit,
    WishesAndFeelings,
    Worker,
    record,
    table_of,
)
from storage.sealing import SEALED_WITH, binding
from storage.writing import SYNCED_KINDS as SYNCED_KINDS
from storage.writing import SignedOff as SignedOff
from storage.writing import same_value as same_value

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
        # Stamps this node's writes for sync. Each opening of the store stamps as a node of its own (the database's
        # node id and a suffix), so two processes on one database (a server's apply processes, several servers)
        # never give two writes made in the same millisecond the same stamp.
        self.hlc = ChangeStamper(f"{self.node_id()}.{uuid.uuid4().hex[:6]}")

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
        bound = binding(row)
        return self.sealer.seal(kind, row.id, {**body, SEALED_WITH: bound} if bound else body)

    def opened(self, row: R) -> Opened[R]:
        """The record with its body opened. A body sealed with other clear columns than the row now has (its
        child, kind or status changed outside Seen) is refused (`SealError`); bodies sealed before Seen
        recorded them open as before."""
        body_type = BODY_OF[type(row)]
        kind = KIND_OF[type(row)]
        stored = record(row)
        raw = self.sealer.open(kind, stored.id, stored.sealed)
        sealed_with = raw.pop(SEALED_WITH, None)
        if sealed_with is not None:
            moved = sorted(name for name, value in sealed_with.items() if _as_loaded(row, name) != value)
            if moved:
                raise sealing.SealError(
                    f"The sealed {kind} {stored.id} was sealed with another {' and '.join(moved)} than its record now "
                    "shows: it was changed outside Seen, so it was not opened. Tell your administrator.")
        return Opened(row, body_type.model_validate(raw))

    def seal_payload(self, kind: str, record_id: str, payload: dict[str, Any]) -> bytes:
        return self.sealer.seal(kind, record_id, payload)

    def open_payload(self, kind: str, record_id: str, sealed_bytes: bytes) -> dict[str, Any]:
        opened = self.sealer.open(kind, record_id, sealed_bytes)
        opened.pop(SEALED_WITH, None)  # a record's body: what it was sealed with is checked by `opened`
        return opened

    # ------------------------------------------------------------ writing (storage/writing.py)

    # Seals and saves one record with its outbox entry and audit event, in the caller's transaction.
    write = writing.write

    def session(self) -> Any:
        return session_scope(self.engine)

    # ------------------------------------------------------------ who may see what (storage/access.py)

    def managed_team_ids(self, session: Session, worker: Worker) -> set[str]:
        return access.managed_team_ids(session, worker)

    def is_manager(self, session: Session, worker: Worker) -> bool:
        return access.is_manager(session, worker)

    def may_see_child(self, session: Session, worker: Worker, child: Child) -> bool:
        return access.may_see_child(session, worker, child)

    def visible_children(self, session: Session, worker: Worker) -> list[Child]:
        return access.visible_children(session, worker)

    def require_role(self, session: Session, worker: Worker, role: str, *, what: str,
                     device_id: str | None = None) -> None:
        access.require_role(session, worker, role, what=what, device_id=device_id)

    def require_manager_of(self, session: Session, worker: Worker, child_id: str, *, kind: str = "child",
                           record_id: str | None = None, device_id: str | None = None) -> Child:
        return access.require_manager_of(session, worker, child_id, kind=kind, record_id=record_id,
                                         device_id=device_id)

    def child_for(self, session: Session, worker: Worker, child_id: str, *, device_id: str | None = None) -> Child:
        return access.child_for(session, worker, child_id, device_id=device_id)

    # ------------------------------------------------------------ reading a child's records

    def child_records(self, session: Session, child_id: str) -> dict[str, list[Any]]:
        """Everything held about one child, opened, grouped by kind. A record that does not open (changed
        outside Seen: `opened`) is left out, named under "unopened" and audited, so the rest still shows."""
        unopened: list[str] = []

        def rows(model: type[SQLModel], order: Any) -> list[Any]:
            found = []
            for row in session.exec(select(model).where(table_of(model).c.child_id == child_id).order_by(order)):
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


def _as_loaded(row: Any, name: str) -> Any:
    """A column's value as the database held it: a row being changed in memory (its status set, then its
    body opened to seal it again) is checked against what it was sealed with, not the change under way."""
    state = sa_inspect(row, raiseerr=False)
    if state is not None and not state.transient and name in state.attrs:
        history = state.attrs[name].history
        if history.deleted:
            return history.deleted[0]
    return getattr(row, name, None)


def age_on(date_of_birth: date | None, on: date) -> int | None:
    if date_of_birth is None:
        return None
    return on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
