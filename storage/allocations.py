"""When a worker's allocation to a child ends: every path that moves a child or closes a case (a page, a
device's push, the import) goes through the ORM, so one flush hook notes it (`AllocationEnd`).

Sync needs it: a change a device wrote for a child before the child moved away is still its worker's
(storage/sync/moved.py decides by the change's stamp against the allocation end's).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from storage.models import AllocationEnd, Child, LateChange


@event.listens_for(OrmSession, "before_flush")
def _note_allocation_ends(session: OrmSession, _context: Any, _instances: Any) -> None:
    for row in list(session.dirty):
        if not isinstance(row, Child):
            continue
        state = sa_inspect(row)
        stamps = json.loads(row.field_clocks or "{}")
        before = state.attrs.worker_id.history.deleted
        if before and before[0] and before[0] != row.worker_id:
            session.add(AllocationEnd(child_id=row.id, worker_id=before[0], reason="reallocated",
                                      stamp=stamps.get("worker_id", "")))
        closed = state.attrs.closed_on.history
        if closed.added and closed.added[0] is not None and not (closed.deleted and closed.deleted[0]) \
                and row.worker_id:
            session.add(AllocationEnd(child_id=row.id, worker_id=row.worker_id, reason="closed",
                                      stamp=stamps.get("closed_on", "")))


def allocation_end(session: Session, child_id: str, worker_id: str) -> AllocationEnd | None:
    """The latest end of this worker's allocation to this child, if it ever ended."""
    return session.exec(select(AllocationEnd).where(AllocationEnd.child_id == child_id,
                                                    AllocationEnd.worker_id == worker_id)
                        .order_by(col(AllocationEnd.ended_at).desc())).first()


def late_outcome(session: Session, change: dict[str, Any], child_id: str, worker_id: str) -> tuple[str, str] | None:
    """For a change a worker's device sends for a child they may no longer see: ("accepted", why) when they
    wrote it while still allocated (its change stamp is before the allocation's end), ("held", why) when
    after; None when the child was never theirs. A change held before is held still, unless a manager has
    accepted it since."""
    known = session.get(LateChange, change["change_id"])
    if known is not None:
        return ("accepted" if known.decision == "accepted" else known.outcome), known.reason
    end = allocation_end(session, child_id, worker_id)
    if end is None:
        return None
    ended = end.stamp or f"{int(end.ended_at.timestamp() * 1000):015d}"
    what = "move to another worker" if end.reason == "reallocated" else "case closing"
    on = f"{end.ended_at:%d %b %Y %H:%M} UTC"
    stamp = change.get("clock") or ""
    if stamp and stamp < ended:
        return "accepted", f"Written before the child's {what} ({on}), so it was taken as its worker's."
    return "held", (f"Written after the child's {what} ({on}), so it is held for a manager of the child's team "
                    "to accept or discard.")


def once_allocated(session: Session, worker_id: str) -> set[str]:
    """The children whose allocation to this worker has ended (they may still send what they did then)."""
    return set(session.exec(select(AllocationEnd.child_id).where(AllocationEnd.worker_id == worker_id)))
