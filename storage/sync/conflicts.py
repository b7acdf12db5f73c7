"""Values that lost a concurrent edit, kept so a worker can see what was overwritten."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from storage.models import Conflict, Worker
from storage.store import Store


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
