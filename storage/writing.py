"""Writing a record: sealed, saved with its outbox entry (for sync) and its audit event, in one transaction.

`Store.write` calls `write`; the sign-off guard (`refuse_change_after_sign_off`) makes a signed-off record
final, whoever writes it: a page, the offline API, an import or a device's sync.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import bindparam, insert
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session, SQLModel

from storage import audit, policy
from storage.access import NotAllowed
from storage.models import (
    BODY_OF,
    KIND_OF,
    LifeStoryEntry,
    MutableRecord,
    Outbox,
    Visit,
    WishesAndFeelings,
    Worker,
    new_id,
    record,
    table_of,
    utcnow,
)
from storage.sealing import binding

if TYPE_CHECKING:
    from storage.store import Store


class SignedOff(NotAllowed):
    """A manager has signed this record off: it can no longer be changed."""

    def __init__(self) -> None:
        super().__init__("A manager has signed this record off, so it cannot be changed. "
                         "Record a new one that supersedes it instead.")


# The kinds of record a write puts in the outbox for sync.
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


def write(
    store: Store,
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
    refuse_change_after_sign_off(store, session, row, body)
    body_json = body.model_dump(mode="json") if body is not None else None
    if body_json is not None:
        row.sealed = store.sealed_body(KIND_OF[type(row)], row, body_json)
    elif blob is None and type(row) in BODY_OF and binding(row) and getattr(row, "sealed", None):
        # A clear column it is sealed with may have changed: sealed again with the body as it is.
        row.sealed = store.sealed_body(KIND_OF[type(row)], row, store.open_payload(
            KIND_OF[type(row)], record(row).id, record(row).sealed))
    if blob is not None:
        row.sealed = store.sealer.seal_bytes(KIND_OF[type(row)], record(row).id, blob)
        body_json = {"image": base64.b64encode(blob).decode()}
    kind = KIND_OF.get(type(row), type(row).__tablename__)
    record_id = record(row).id
    stamp = store.hlc.stamp()
    base_clocks: dict[str, str] = {}  # each changed field's change stamp before: sync tells edits that crossed
    if isinstance(row, MutableRecord):
        stamps = json.loads(row.field_clocks or "{}")  # the column keeps its first name
        fields = list(changed) if changed is not None else [*_clear_fields(row), *(_body_fields(body))]
        base_clocks = {name: stamps.get(name, "") for name in fields}
        for name in fields:
            stamps[name] = stamp
        row.field_clocks = json.dumps(stamps, sort_keys=True)
        row.revision += 1
        row.updated_at = at or utcnow()
    session.add(row)
    # Flushed now so records written in one transaction reach the database parent first (foreign keys).
    session.flush()
    # The outbox entry and the audit event are plain inserts, not ORM objects: nothing reads them back in
    # this transaction, and the unit of work was most of a save's time (a visit save is CPU-bound).
    if store.outbox_enabled and kind in SYNCED_KINDS:
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
            "sent_at": None, "sealed": store.sealer.seal("outbox", change_id, change)})
    audit.append_many(session, [{
        "action": action,
        "kind": kind,
        "record_id": record_id,
        "worker_id": actor.id if actor else None,
        "device_id": device_id,
        "child_id": getattr(row, "child_id", None) or (record_id if kind == "child" else None),
        "detail": detail if detail is not None else ",".join(sorted(changed)) if changed else "",
    }])

def refuse_change_after_sign_off(store: Store, session: Session, row: SQLModel, body: BaseModel | None) -> None:
    """Signed-off records are final. Writing one again unchanged (a retried sync) is let through."""
    model = type(row)
    if model not in SIGNED_OFF_FINAL or sa_inspect(row).transient:
        # A new object is inserted: if a row with its id were stored, the insert would fail on the key.
        return
    table = table_of(model)
    # The stored row as it is in the database, not the caller's modified copy.
    with session.no_autoflush:
        stored = session.connection().execute(_STORED_ROW[model], {"id": record(row).id}).first()
    if stored is None or not policy.is_final(stored):
        return
    clear = {c.name: getattr(stored, c.name) for c in table.columns if c.name != "sealed"}
    same_clear = all(same_value(clear[name], getattr(row, name)) for name in clear)
    same_body = body is None or store.open_payload(KIND_OF[model], record(row).id, stored.sealed) == body.model_dump(
        mode="json")
    if not (same_clear and same_body):
        raise SignedOff()
