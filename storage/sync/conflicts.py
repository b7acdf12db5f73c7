"""Values that lost a concurrent edit, kept so a worker can see what was overwritten, and decided by a manager of
the child's team: both values side by side, who wrote each and when; the decision is kept, synced and audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlmodel import Session, col, select

from storage import audit
from storage.access import NotAllowed
from storage.models import BODY_OF, ChangeLog, Child, Conflict, Device, Outbox, Worker, utcnow
from storage.store import Store
from storage.sync.changes import CONFLICT_NS, MODEL_OF, conflict_as_change


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


# ---------------------------------------------------------------- deciding (issue 19)


@dataclass
class Side:
    """One of a conflict's two values: what, who wrote it and when."""

    value: Any
    who: str
    when: datetime | None


@dataclass
class ConflictChoice:
    """A conflict waiting for a decision, as the person who can decide reads it."""

    id: str
    child_id: str
    child_name: str
    what: str  # "care plan action: outcome"
    kept: Side  # the value that stands for now (the later write)
    other: Side  # the value it overwrote


def field_words(conflict: Conflict) -> str:
    return f"{conflict.kind.replace('_', ' ')}: {conflict.field.removeprefix('body.').replace('_', ' ')}"


def conflicts_to_decide(store: Store, worker: Worker) -> list[ConflictChoice]:
    """Undecided conflicts on children in the teams this worker manages, oldest first. The records that merge
    field by field (a child, placement, plan, action, review, missing episode) carry no author, so the managers
    of the child's team decide."""
    with store.session() as session:
        teams = sorted(store.managed_team_ids(session, worker))
        if not teams:
            return []
        rows = session.exec(select(Conflict, Child).where(col(Conflict.child_id) == Child.id,
                                                          col(Child.team_id).in_(teams),
                                                          col(Conflict.resolved_at).is_(None))
                            .order_by(col(Conflict.at)))
        out = []
        for conflict, child in rows:
            values = store.open_payload("conflict", conflict.id, conflict.sealed)
            out.append(ConflictChoice(
                conflict.id, child.id, store.opened(child).body.name, field_words(conflict),
                Side(values.get("winner"), *_writer(store, session, conflict, conflict.winner_clock)),
                Side(values.get("loser"), *_writer(store, session, conflict, conflict.loser_clock))))
        return out


def undecided(store: Store, session: Session, child_id: str) -> list[str]:
    """What a child's page says until its conflicts are decided: each field in words."""
    return [field_words(c) for c in session.exec(select(Conflict).where(
        Conflict.child_id == child_id, col(Conflict.resolved_at).is_(None)).order_by(col(Conflict.at)))]


def _writer(store: Store, session: Session, conflict: Conflict, stamp: str) -> tuple[str, datetime | None]:
    """Who wrote a value (found by its change stamp in the change log) and when (the stamp's time)."""
    when = datetime.fromtimestamp(int(stamp[:15]) / 1000, UTC) if stamp[:15].isdigit() else None
    for entry in session.exec(select(ChangeLog).where(ChangeLog.record_id == conflict.record_id)):
        change = store.open_payload("change_log", entry.change_id, entry.sealed)
        stamps = json.loads((change.get("fields") or {}).get("field_clocks") or "{}")
        if stamps.get(conflict.field) != stamp:
            continue
        device = session.get(Device, entry.device_id) if entry.device_id else None
        worker = session.get(Worker, device.worker_id) if device else None
        return (f"{worker.display_name} ({device.name})" if worker and device else "on Seen's website"), when
    return "someone (not known to this server)", when


def decide_conflict(store: Store, worker: Worker, conflict_id: str, keep: str) -> None:
    """Decides which value stands ("winner": the one kept for now, or "loser": the one it overwrote), as a
    manager of the child's team. Keeping the other value writes it to the record again (a new change, so it
    wins on every node); the decision is kept on the conflict, reaches the devices and is audited."""
    if keep not in ("winner", "loser"):
        raise ValueError(f"Unknown choice {keep!r}.")
    with store.session() as session:
        conflict = session.get(Conflict, conflict_id)
        if conflict is None or conflict.child_id is None or conflict.resolved_at is not None:
            raise audit.refuse(session, NotAllowed("That conflict has been decided already, or does not exist.",
                                                   kind="conflict", record_id=conflict_id, worker_id=worker.id))
        store.require_manager_of(session, worker, conflict.child_id, kind="conflict", record_id=conflict_id)
        if keep == "loser":
            _write_value(store, session, worker, conflict,
                         store.open_payload("conflict", conflict.id, conflict.sealed).get("loser"))
        conflict.resolved_at, conflict.decided_by, conflict.kept = utcnow(), worker.id, keep
        session.add(conflict)
        audit.append(session, "decide", "conflict", conflict.id, worker_id=worker.id, child_id=conflict.child_id,
                     detail=f"{conflict.kind} {conflict.record_id} {conflict.field}: kept the {keep}'s value")
        if store.outbox_enabled:  # the decision reaches the devices through the change log
            change = conflict_as_change(store, conflict)
            change_id = str(uuid.uuid5(CONFLICT_NS, f"decided:{conflict.id}"))
            change.pop("change_id")
            session.add(Outbox(change_id=change_id, kind="conflict", record_id=conflict.id,
                               sealed=store.seal_payload("outbox", change_id, change)))


def _write_value(store: Store, session: Session, worker: Worker, conflict: Conflict, value: Any) -> None:
    model = MODEL_OF[conflict.kind]
    row = session.get(model, conflict.record_id)
    if row is None:
        raise NotAllowed("The record this conflict is about is no longer here.")
    body = store.opened(row).body if model in BODY_OF else None
    if conflict.field.startswith("body.") and body is not None:
        body = type(body).model_validate({**body.model_dump(mode="json"), conflict.field[5:]: value})
    else:
        annotation = model.model_fields[conflict.field].annotation
        setattr(row, conflict.field, TypeAdapter(annotation or Any).validate_python(value))
    store.write(session, row, body, actor=worker, action="decide_conflict", changed=[conflict.field],
                detail=f"conflict {conflict.id}")
