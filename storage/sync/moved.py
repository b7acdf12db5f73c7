"""Edits that arrived for a child after the child left their worker (reallocated, or the case closed).

The push (storage/sync/push.py) never drops one: a change written while its worker was allocated is taken as
theirs, one written after is held here (`LateChange`, the change sealed) for a manager of the child's team. The
manager sees both on the "Devices" page: an accepted one to note, a held one to accept (it is then put to the
same checks as any push, as its worker's, from its device) or discard. Every decision is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from storage import audit
from storage.access import NotAllowed
from storage.models import Child, Device, LateChange, Role, Worker, utcnow
from storage.store import Store
from storage.sync.push import push_as
from storage.sync.refusal import SyncRefused

DECISIONS = ("accepted", "discarded", "seen")


@dataclass
class LateView:
    """A late change as a manager reads it."""

    change_id: str
    child_id: str
    child_name: str
    worker_name: str
    kind: str
    outcome: str
    reason: str
    arrived_at: datetime


def late_changes(store: Store, manager: Worker) -> list[LateView]:
    """Late changes to children in the manager's teams not yet dealt with, oldest first."""
    with store.session() as session:
        store.require_role(session, manager, Role.manager.value, what="late changes")
        teams = sorted(store.managed_team_ids(session, manager))
        rows = session.exec(select(LateChange, Child, Worker).where(
            col(Child.id) == LateChange.child_id, col(Worker.id) == LateChange.worker_id,
            col(Child.team_id).in_(teams), LateChange.decision == "").order_by(col(LateChange.arrived_at)))
        return [LateView(late.change_id, child.id, store.opened(child).body.name, worker.display_name,
                         late.kind.replace("_", " "), late.outcome, late.reason, late.arrived_at)
                for late, child, worker in rows]


def decide(store: Store, manager: Worker, change_id: str, decision: str) -> None:
    """A manager deals with a late change: notes one already accepted (`seen`), or accepts or discards one held.

    An accepted held change is applied as its worker's, from its device, through the same checks as a push;
    refused there, it stays held and the reason is raised (`SyncRefused`)."""
    if decision not in DECISIONS:
        raise ValueError(f"Unknown decision {decision!r}.")
    with store.session() as session:
        late = session.get(LateChange, change_id)
        if late is None or late.decision:
            raise audit.refuse(session, NotAllowed("That change has been dealt with already, or does not exist.",
                                                   kind="late_change", record_id=change_id, worker_id=manager.id))
        store.require_manager_of(session, manager, late.child_id, kind="late_change", record_id=change_id)
        if (late.outcome == "held") == (decision == "seen"):
            raise audit.refuse(session, NotAllowed("A held change is accepted or discarded; one already taken is "
                                                   "only noted.", kind="late_change", record_id=change_id,
                                                   worker_id=manager.id))
        late.decision, late.decided_by, late.decided_at = decision, manager.id, utcnow()
        session.add(late)
        change = store.open_payload("late_change", change_id, late.sealed) if decision == "accepted" else None
        device, worker = session.get(Device, late.device_id), session.get(Worker, late.worker_id)
        audit.append(session, "decide", "late_change", change_id, worker_id=manager.id, child_id=late.child_id,
                     detail=f"{decision}: {late.kind} {late.record_id} from worker {late.worker_id}")
    if change is None or worker is None or device is None:
        return
    try:
        push_as(store, device, worker, str(uuid.uuid4()), [change])
    except SyncRefused:
        with store.session() as session:  # not applied: it stays held, for a decision again
            late = session.get(LateChange, change_id)
            if late is not None:
                late.decision, late.decided_by, late.decided_at = "", None, None
                session.add(late)
        raise
