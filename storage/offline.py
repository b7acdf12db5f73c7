"""What the phone's offline part needs from the store: the child picker's minimum, and drafts coming home.

The offline page (plain browser JavaScript, see pwa/static/) keeps a sealed copy of the worker's caseload
reduced to what picking a child needs: id, initials and age; never names or addresses. Drafts written
while the connection was down come back here (a life-story entry with the photos taken for it) with the
idempotency key the phone made when the draft was created, so a send repeated after a dropped connection
stores the record, and each of its photos, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from storage.child_voice import Raised, raise_unsafe_from_draft, submit_statement_from_draft
from storage.life_story import submit_life_story_from_draft
from storage.models import Worker
from storage.store import Store, age_on
from storage.submissions import held
from storage.timescales.calendar import today_in_england
from storage.visits import submit_visit_from_draft
from storage.wishes import submit_wishes_from_draft

# The kinds of form the phone may send, each with the storage function that submits it exactly once per key.
SUBMITTERS: dict[str, Callable[..., Any]] = {
    "visit": submit_visit_from_draft,
    "wishes_and_feelings": submit_wishes_from_draft,
    "life_story": submit_life_story_from_draft,
    # What a child said in child mode with no signal (pwa/static/seen-child-offline.js).
    "child_statement": submit_statement_from_draft,
    "safeguarding_flag": raise_unsafe_from_draft,
}
# The kinds whose drafts may bring photos taken on the phone (their submitter takes `photos=`).
PHOTO_KINDS = frozenset({"life_story", "child_statement"})
# The only kinds a phone in child mode may send: the child's own (pwa/auth.py keeps the rest back).
CHILD_MODE_KINDS = frozenset({"child_statement", "safeguarding_flag"})


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
    """A draft the server now holds: which kind, and which record it became."""

    kind: str
    record_id: str
    deliveries: tuple[str, ...] = ()  # pushes queued by it, to send at once (a safeguarding flag's)


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
        raise ValueError("Only a life-story entry or a child's statement can bring photos. Remove them from this "
                         "draft and send it again.")
    extra = {"photos": photos} if photos else {}
    record = SUBMITTERS[kind](store, worker, child_id, fields, key, device_id=device_id, **extra)
    if isinstance(record, Raised):
        return Received(kind, record.flag.id, tuple(record.deliveries))
    return Received(kind, record.id)


def held_keys(store: Store, worker: Worker, keys: list[str]) -> set[str]:
    """Which of these keys Seen already holds a submission under, made by this worker.

    The phone asks so it can let go of a copy Seen already has. Another worker's keys are never named."""
    wanted = {k.strip() for k in keys if k.strip()}
    with store.session() as session:
        return {k for k in wanted if (found := held(store, session, k)) is not None and found.worker_id == worker.id}
