"""A change, the one shape sync moves at both ends, and records as changes.

A change is a plain dict, the same at both ends: `{"change_id", "kind", "record_id", "fields", "body",
"clock", "base_clocks"}` (what `Store.write` puts in the outbox, plus its id; a photo's body is its image,
`{"image": base64}`).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, SQLModel

from storage.models import (
    BODY_OF,
    KIND_OF,
    CarePlan,
    CarePlanAction,
    Conflict,
    Draft,
    LifeStoryEntry,
    MissingEpisode,
    MutableRecord,
    Photo,
    Placement,
    RecordStamp,
    Review,
    Visit,
    WishesAndFeelings,
    record,
)
from storage.store import SYNCED_KINDS, Store

# A push batch or a pull page stops growing at about this many bytes (photos are big: ~50-400 KB each).
MESSAGE_BYTES = 4 * 1024 * 1024
CONFLICT_NS = uuid.UUID("0c0f11c7-5ee0-4c0f-a11c-7c0f11c75ee0")
MODEL_OF: dict[str, type[SQLModel]] = {kind: model for model, kind in KIND_OF.items() if kind in SYNCED_KINDS}
# Parents before children, so foreign keys hold whatever order changes arrive in.
KIND_RANK = {"child": 0, "placement": 1, "care_plan": 1, "review": 1, "visit": 1, "wishes_and_feelings": 1,
             "life_story": 1, "photo": 1, "missing_episode": 1, "care_plan_action": 2, "conflict": 3}
CHILD_PARTS: tuple[type[SQLModel], ...] = (CarePlanAction, CarePlan, Placement, Visit, WishesAndFeelings,
                                           LifeStoryEntry, Photo, Review, MissingEpisode, Draft)


def child_id_of(kind: str, record_id: str, fields: dict[str, Any]) -> str | None:
    return record_id if kind == "child" else fields.get("child_id")


def clear_fields(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(mode="json", exclude={"sealed"})


def record_as_change(store: Store, session: Session, row: SQLModel,
                     stamps: dict[str, str] | None = None) -> dict[str, Any]:
    """A stored record as a change: how a node that never held it receives it whole.

    `stamps` (record id -> change stamp), when given, holds the stamps of records without per-field stamps.
    """
    kind = KIND_OF[type(row)]
    body = store.opened(row).body.model_dump(mode="json") if type(row) in BODY_OF else None
    if isinstance(row, Photo):
        body = {"image": base64.b64encode(store.sealer.open_bytes(kind, row.id, row.sealed)).decode()}
    stamp = ""
    if not isinstance(row, MutableRecord) and stamps is not None:
        stamp = stamps.get(record(row).id, "")
    elif not isinstance(row, MutableRecord):
        entry = session.get(RecordStamp, record(row).id)
        stamp = entry.stamp if entry else ""
    return {"change_id": str(uuid.uuid5(CONFLICT_NS, f"snapshot:{kind}:{record(row).id}:{stamp}")),
            "kind": kind, "record_id": record(row).id, "fields": clear_fields(row), "body": body,
            "clock": stamp, "base_clocks": {}}


def conflict_as_change(store: Store, conflict: Conflict) -> dict[str, Any]:
    return {"change_id": str(uuid.uuid5(CONFLICT_NS, f"conflict:{conflict.id}")), "kind": "conflict",
            "record_id": conflict.id, "fields": clear_fields(conflict),
            "body": store.open_payload("conflict", conflict.id, conflict.sealed), "clock": "", "base_clocks": {}}


def in_utc(value: datetime) -> datetime | None:
    """A moment in UTC; None for one that cannot be (the last hours of year 9999 in a zone behind UTC)."""
    try:
        return aware(value).astimezone(UTC)
    except OverflowError:
        return None


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
