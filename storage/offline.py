"""What the phone's offline part needs from the store: the child picker's minimum, and drafts coming home.

The offline page (plain browser JavaScript, see pwa/static/) keeps a sealed copy of the worker's caseload
reduced to what picking a child needs: id, initials and age; never names or addresses. Drafts written
while the connection was down come back here (a life-story entry with the photos taken for it) with the
idempotency key the phone made when the draft was created, so a send repeated after a dropped connection
stores the record, and each of its photos, once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.models import Draft, Worker, utcnow
from storage.store import NotAllowed, Store, age_on
from storage.timescales.calendar import today_in_england

# The kinds of form the phone may send, each with the storage function that submits it exactly once per
# key: (module, function). A kind whose module is not there yet is kept as a sealed server-side draft.
SUBMITTERS: dict[str, tuple[str, str]] = {
    "visit": ("storage.visits", "submit_visit_from_draft"),
    "wishes_and_feelings": ("storage.direct_work", "submit_wishes_from_draft"),
    "life_story": ("storage.direct_work", "submit_life_story_from_draft"),
}
KEPT_KIND = "offline_{kind}"  # a server-side draft kept for the worker to finish in the app
# The kinds whose drafts may bring photos taken on the phone (their submitter takes `photos=`).
PHOTO_KINDS = frozenset({"life_story"})


@dataclass(frozen=True)
class OfflineChild:
    """The minimum to pick a child offline: no name, no address."""

    id: str
    initials: str
    age: int | None


def offline_children(store: Store, worker: Worker, on: date | None = None) -> list[OfflineChild]:
    """The children on this worker's caseload, reduced to id, initials and age, by initials."""
    on = on or today_in_england()
    with store.session() as session:
        children = store.visible_children(session, worker)
    rows = []
    for child in children:
        body = store.opened(child).body
        rows.append(OfflineChild(child.id, body.initials, age_on(body.date_of_birth, on)))
    return sorted(rows, key=lambda c: (c.initials, c.age or 0, c.id))


@dataclass(frozen=True)
class Received:
    """A draft the server now holds: which record it became (or the kept draft's id), and how."""

    kind: str
    record_id: str
    kept_as_draft: bool = False


def _submitter(kind: str) -> Callable[..., Any] | None:
    module_name, function = SUBMITTERS[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return None
        raise
    return getattr(module, function, None)


def receive_draft(store: Store, worker: Worker, kind: str, child_id: str, fields: dict[str, Any],
                  idempotency_key: str, device_id: str | None = None, photos: list[bytes] | None = None) -> Received:
    """Stores a draft sent by the phone, with its photos (the image files' bytes), exactly once per key.

    Raises ValueError for an unknown kind, a missing key or photos on a kind that takes none, NotAllowed for
    a child not on the worker's caseload, and whatever the kind's own checks raise (e.g. VisitInvalid,
    FormInvalid for a photo that is not one) with nothing stored.
    """
    if kind not in SUBMITTERS:
        raise ValueError("Seen does not know that kind of form.")
    key = idempotency_key.strip()
    if not key:
        raise ValueError("An idempotency key is needed to send a draft.")
    if photos and kind not in PHOTO_KINDS:
        raise ValueError("Only a life-story entry can bring photos. Remove them from this draft and send it again.")
    submit = _submitter(kind)
    if submit is not None:
        extra = {"photos": photos} if photos else {}
        record = submit(store, worker, child_id, fields, key, device_id=device_id, **extra)
        return Received(kind, record.id)
    if photos:
        raise ValueError("Seen cannot take this draft's photos yet. It stays on the phone.")
    return _keep_as_draft(store, worker, kind, child_id, fields, key)


def _keep_as_draft(store: Store, worker: Worker, kind: str, child_id: str, fields: dict[str, Any],
                   key: str) -> Received:
    """Keeps the form sealed on the server, once per key, until its kind can be submitted in the app."""
    existing = _kept(store, worker, key)
    if existing is not None:
        return Received(kind, existing, kept_as_draft=True)
    try:
        with store.session() as session:
            store.child_for(session, worker, child_id)
            draft = Draft(worker_id=worker.id, child_id=child_id, kind=KEPT_KIND.format(kind=kind),
                          idempotency_key=key, updated_at=utcnow())
            draft.sealed = store.seal_payload("draft", draft.id, dict(fields))
            session.add(draft)
            session.flush()
            return Received(kind, draft.id, kept_as_draft=True)
    except IntegrityError:
        # Two sends of the same draft raced: the other one stored it.
        existing = _kept(store, worker, key)
        if existing is None:
            raise
        return Received(kind, existing, kept_as_draft=True)


def _kept(store: Store, worker: Worker, key: str) -> str | None:
    with store.session() as session:
        existing = session.exec(select(Draft).where(Draft.idempotency_key == key)).first()
        if existing is None:
            return None
        if existing.worker_id != worker.id:
            raise NotAllowed("That draft belongs to another worker.")
        return existing.id


def held_keys(store: Store, worker: Worker, keys: list[str]) -> set[str]:
    """Which of these idempotency keys the server already holds a record (or a kept draft) under, for this worker.

    The phone asks so it can let go of a copy Seen already has. Another worker's keys are never named."""
    wanted = {k.strip() for k in keys if k.strip()}
    if not wanted:
        return set()
    with store.session() as session:
        rows = session.exec(select(Draft.idempotency_key).where(
            Draft.worker_id == worker.id, Draft.idempotency_key.in_(wanted))).all()  # type: ignore[union-attr]
    return {k for k in rows if k}
