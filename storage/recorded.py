"""What a worker is told once a record is saved: what was kept, and what is due next and why.

The confirmation screens (pwa/pages/recorded.py) show these after a visit, a wishes-and-feelings session or
a life-story entry is saved, and after a manager signs a visit off. The next due date comes from the
timescales engine with the rule that made it, as on the child's page. Reading one is audited as a read of
the record; a record the worker may not see is refused (and audited) as the child's page refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from storage import audit, oversight
from storage.cases import cases_for
from storage.child_forms import child_session
from storage.child_view import clock_name
from storage.models import (
    LIFE_STORY_SECTIONS,
    NOT_ALONE_REASONS,
    WISHES_METHODS,
    LifeStoryEntry,
    RecordStatus,
    Visit,
    WishesAndFeelings,
    Worker,
)
from storage.store import NotAllowed, Store
from storage.timescales import Clock, clocks_for, worst_first
from storage.timescales.calendar import LONDON, today_in_england
from storage.timescales.facts import VISIT_CLOCKS
from storage.visits import written_up_late

RECORDED_MODELS = {"visit": Visit, "wishes_and_feelings": WishesAndFeelings, "life_story": LifeStoryEntry}


@dataclass(frozen=True)
class NextDue:
    """The child's next statutory visit (or, where no visit clock applies, their most pressing clock)."""

    what: str  # "Next visit due", or the clock's name
    due: date
    status: str  # one of timescales.STATUS_ORDER
    rule: str  # the rule that made it, in words
    source: str  # the regulation or local procedure


@dataclass(frozen=True)
class Recorded:
    """A saved record as its confirmation shows it: the title, the facts saved, and the child's next due date."""

    kind: str  # visit, wishes_and_feelings, life_story
    record_id: str
    child_id: str
    child_name: str
    title: str  # "Visit recorded"
    facts: list[tuple[str, str]]  # (what, value) as saved
    next_due: NextDue | None
    late: bool = False  # a visit written up later than the standard allows


def seen_words(seen: bool, seen_alone: bool | None, reason: str | None = None) -> str:
    """Whether the child was seen, and seen alone (or why not), as a manager reads it."""
    if not seen:
        return "Child not seen"
    if seen_alone:
        return "Seen alone"
    return "Seen, not alone" + (f": {NOT_ALONE_REASONS.get(reason, reason)}" if reason else "")


def next_due(clocks: list[Clock]) -> NextDue | None:
    """The next statutory visit among a child's clocks; their most pressing clock if none is a visit's."""
    visit = next((c for c in clocks if c.clock in VISIT_CLOCKS), None)
    if visit is not None:
        return NextDue("Next visit due", visit.due, visit.status, visit.rule, visit.source)
    pressing = worst_first(clocks)
    if not pressing:
        return None
    first = pressing[0]
    return NextDue(f"{clock_name(first)} due", first.due, first.status, first.rule, first.source)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(LONDON):%-d %b %Y at %H:%M}"


def recorded(store: Store, worker: Worker, child_id: str, kind: str, record_id: str,
             on: date | None = None) -> Recorded:
    """A record just saved for the child, with the child's next due date on `on` (England's today).

    Raises NotAllowed (audited) for a child the worker may not see or a record that is not the child's.
    """
    on = on or today_in_england()
    model: Any = RECORDED_MODELS.get(kind)
    with child_session(store, worker, child_id) as (session, child):
        row: Any = session.get(model, record_id) if model is not None else None
        if row is None or row.child_id != child.id or row.status == RecordStatus.draft.value:
            raise audit.refuse(session, NotAllowed("That record could not be found for this child.", kind=kind,
                                                   record_id=record_id, worker_id=worker.id, child_id=child.id))
        audit.append(session, "read", kind, row.id, worker_id=worker.id, child_id=child.id)
        name = store.opened(child).body.name
        due = next_due(clocks_for(cases_for(session, [child])[0], on))
        opened = store.opened(row)
    late = False
    if isinstance(row, Visit):
        late = written_up_late(row)
        facts = [("Child", name), ("Visited", _when(row.visited_at)),
                 ("Seen", seen_words(row.seen, row.seen_alone, row.not_alone_reason))]
        if row.bedroom_seen is not None:
            facts.append(("Bedroom", "Seen" if row.bedroom_seen else "Not seen"))
        if opened.body.actions:
            facts.append(("Actions arising", f"{len(opened.body.actions)} added to the care plan"))
        title = "Correction recorded" if row.supersedes else "Visit recorded"
    elif isinstance(row, WishesAndFeelings):
        facts = [("Child", name), ("Date", f"{row.on:%-d %b %Y}"), ("How", WISHES_METHODS.get(row.method, row.method))]
        title = "Correction saved" if row.supersedes else "Wishes and feelings saved"
    else:
        assert isinstance(row, LifeStoryEntry)
        facts = [("Child", name), ("Date", f"{row.on:%-d %b %Y}"),
                 ("Chapter", LIFE_STORY_SECTIONS.get(row.section, row.section)), ("Title", opened.body.title)]
        title = "Correction saved in the life-story book" if row.supersedes else "Added to the life-story book"
    return Recorded(kind=kind, record_id=row.id, child_id=child.id, child_name=name, title=title, facts=facts,
                    next_due=due, late=late)


@dataclass(frozen=True)
class SignedOff:
    """A visit a manager has just signed off, and the next visit waiting in their queue."""

    visit_id: str
    child_id: str
    child_name: str
    facts: list[tuple[str, str]]
    next_visit_id: str | None
    next_words: str  # the next visit in the queue, or that the queue is empty
    waiting: int  # visits still waiting for sign-off


def signed_off(store: Store, manager: Worker, visit_id: str) -> SignedOff:
    """What a manager is told after signing a visit off. Raises NotAllowed (audited) as the sign-off page does."""
    review = oversight.visit_for_review(store, manager, visit_id)
    visit = review.visit
    if visit.status != RecordStatus.signed_off.value:
        raise NotAllowed("That visit has not been signed off.")
    facts = [("Child", review.child_name), ("Visited", _when(visit.visited_at)), ("By", review.worker_name),
             ("Seen", seen_words(visit.seen, visit.seen_alone, visit.not_alone_reason))]
    if visit.signed_off_at is not None:
        facts.append(("Signed off", f"{_when(visit.signed_off_at)} by {review.signed_off_by_name}"))
    queue = oversight.signoff_queue(store, manager)
    if queue:
        first = queue[0]
        words = f"{first.child_name}: visit on {_when(first.visited_at)}, by {first.worker_name}"
    else:
        words = "Nothing else is waiting for sign-off."
    return SignedOff(visit_id=visit.id, child_id=visit.child_id, child_name=review.child_name, facts=facts,
                     next_visit_id=queue[0].visit_id if queue else None, next_words=words, waiting=len(queue))
