"""The sealed draft every form keeps while the worker types it: one row per worker, child and kind in `Draft`.

The kinds: DRAFT_KIND (a visit, storage/visits.py, the default), WISHES_DRAFT_KIND (storage/wishes.py) and
LIFE_STORY_DRAFT_KIND (storage/life_story.py). A draft is deleted (`discard_in`) in the transaction that
stores the record it became.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from storage.child_forms import child_session
from storage.models import Draft, Worker, utcnow
from storage.store import Store

# The visit form's kind, and so the default of every function here.
DRAFT_KIND = "visit"


def _draft_row(session: Session, worker: Worker, child_id: str, kind: str = DRAFT_KIND) -> Draft | None:
    return session.exec(select(Draft).where(Draft.worker_id == worker.id, Draft.child_id == child_id,
                                            Draft.kind == kind)).first()


def save_draft(store: Store, worker: Worker, child_id: str, fields: dict[str, Any], kind: str = DRAFT_KIND) -> datetime:
    """Saves (sealed) the form the worker is typing; returns when. One draft per worker, child and kind of
    form (a visit, or wishes and feelings and life story: storage/wishes.py, storage/life_story.py).

    Not audited: a draft is work in progress seen only by its author, saved every few seconds; the audit
    trail records the work when it is submitted.
    """
    with child_session(store, worker, child_id) as (session, _child):
        draft = _draft_row(session, worker, child_id, kind) or Draft(worker_id=worker.id, child_id=child_id,
                                                                     kind=kind)
        draft.updated_at = utcnow()
        draft.sealed = store.seal_payload("draft", draft.id, dict(fields))
        session.add(draft)
        return draft.updated_at


@dataclass
class SavedDraft:
    fields: dict[str, Any]
    updated_at: datetime


def load_draft(store: Store, worker: Worker, child_id: str, kind: str = DRAFT_KIND) -> SavedDraft | None:
    """The worker's unfinished form of this kind (a visit unless said) for this child, if there is one."""
    with store.session() as session:
        draft = _draft_row(session, worker, child_id, kind)
        if draft is None:
            return None
        return SavedDraft(store.open_payload("draft", draft.id, draft.sealed), draft.updated_at)


def discard_draft(store: Store, worker: Worker, child_id: str, kind: str = DRAFT_KIND) -> None:
    with store.session() as session:
        discard_in(session, worker, child_id, kind)


def discard_in(session: Session, worker: Worker, child_id: str, kind: str = DRAFT_KIND) -> None:
    """Deletes the draft in the caller's transaction: the record it became is stored in the same one."""
    draft = _draft_row(session, worker, child_id, kind)
    if draft is not None:
        session.delete(draft)


def drafts_by_child(store: Store, worker: Worker) -> dict[str, set[str]]:
    """The kinds of form (visit, wishes and feelings, life story) this worker left unfinished, by child."""
    found: dict[str, set[str]] = {}
    with store.session() as session:
        for child_id, kind in session.exec(select(Draft.child_id, Draft.kind).where(Draft.worker_id == worker.id)):
            found.setdefault(child_id, set()).add(kind)
    return found
