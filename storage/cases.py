"""The bridge from stored records to the timescales engine: each child's clock facts, read in bulk.

Only clear columns are read (dates, category, seen), so clocks can be computed on a server without
opening a single sealed body.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from storage.models import FOSTER_PLACEMENTS, Child, MissingEpisode, Placement, RecordStatus, Review, Visit
from storage.timescales import (
    Case,
    HealthAssessmentFacts,
    MissingEpisodeFacts,
    PlacementFacts,
    ReviewFacts,
    VisitFacts,
)
from storage.timescales.calendar import LONDON

# Health assessments are recorded as reviews of these kinds; a plain `health_assessment` counts as a review one.
HEALTH_KINDS = {"initial_health_assessment": "initial", "review_health_assessment": "review",
                "health_assessment": "review"}
COUNTED_VISIT_STATUSES = (RecordStatus.submitted.value, RecordStatus.signed_off.value, RecordStatus.returned.value)


def local_date(moment: datetime) -> date:
    """The calendar day in England of a stored (UTC) moment; one read back without its zone (SQLite) is UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(LONDON).date()


def cases_for(session: Session, children: Iterable[Child]) -> list[Case]:
    """The timescales engine's view of these children, with their placements, visits and reviews."""
    children = list(children)
    ids = [c.id for c in children]
    if not ids:
        return []
    placements: dict[str, list[PlacementFacts]] = defaultdict(list)
    visits: dict[str, list[VisitFacts]] = defaultdict(list)
    reviews: dict[str, list[ReviewFacts]] = defaultdict(list)
    health: dict[str, list[HealthAssessmentFacts]] = defaultdict(list)
    missing: dict[str, list[MissingEpisodeFacts]] = defaultdict(list)
    for chunk in _chunks(ids, 500):
        for p in session.exec(select(Placement).where(col(Placement.child_id).in_(chunk))):
            placements[p.child_id].append(PlacementFacts(
                start=p.start, end=p.end, long_term=p.long_term, arrangement=p.arrangement,
                # reg 28(3A) is for long-term foster placements: an agreement recorded elsewhere does not count.
                child_agreed_less_frequent=p.child_agreed_less_frequent and p.placement_type in FOSTER_PLACEMENTS))
        # Drafts do not count: a visit counts once it has been written up and submitted. A visit that a
        # correction supersedes counts as the correction says, not twice and not as first written.
        query = select(  # type: ignore[call-overload]  # SQLModel types select() for up to 4 columns
            Visit.id, Visit.supersedes, Visit.child_id, Visit.visited_at, Visit.seen, Visit.seen_alone,
        ).where(col(Visit.child_id).in_(chunk), col(Visit.status).in_(COUNTED_VISIT_STATUSES))
        rows = list(session.exec(query))
        superseded = {supersedes for _, supersedes, *_ in rows if supersedes}
        for visit_id, _, child_id, visited_at, seen, seen_alone in rows:
            if visit_id not in superseded:
                visits[child_id].append(VisitFacts(date=local_date(visited_at), seen=seen, seen_alone=seen_alone))
        held = select(Review.child_id, Review.kind, col(Review.held_on), Review.under_five).where(
            col(Review.child_id).in_(chunk), col(Review.held_on).is_not(None))
        for child_id, kind, held_on, under_five in session.exec(held):
            assert held_on is not None  # the query asks only for held reviews
            if kind in HEALTH_KINDS:
                health[child_id].append(HealthAssessmentFacts(HEALTH_KINDS[kind], held_on, under_five))
            else:
                reviews[child_id].append(ReviewFacts(kind=kind, date=held_on))
        episodes = select(MissingEpisode).where(col(MissingEpisode.child_id).in_(chunk))
        for e in session.exec(episodes):
            interviews = [d for d in (e.interview_offered_on, e.interview_held_on) if d is not None]
            missing[e.child_id].append(MissingEpisodeFacts(e.start, e.end, min(interviews, default=None)))
    return [
        Case(
            id=c.id,
            category=c.category,
            looked_after_since=c.looked_after_since,
            strategy_discussion=c.strategy_discussion,
            initial_conference=c.initial_conference,
            cin_plan_start=c.cin_plan_start,
            case_managed_since=c.case_managed_since,
            referral=c.referral,
            assessment_completed=c.assessment_completed,
            # A care leaver's placements are where they have lived since: each start is a move.
            placements=() if c.category == "care_leaver" else tuple(sorted(placements[c.id], key=lambda p: p.start)),
            accommodation_moves=tuple(p.start for p in placements[c.id]) if c.category == "care_leaver" else (),
            visits=tuple(visits[c.id]),  # Case puts its history in date order itself
            reviews=tuple(reviews[c.id]),
            care_leaver_since=c.care_leaver_since,
            plan_visit_every=c.plan_visit_every or None,
            missing_episodes=tuple(missing[c.id]),
            # A child in care's health assessments are known here (none recorded is itself a fact).
            health_assessments=_with_ages(health[c.id], c.birth_year) if c.category == "cic" else None,
        )
        for c in children
    ]


def _with_ages(assessments: list[HealthAssessmentFacts], birth_year: int | None) -> tuple[HealthAssessmentFacts, ...]:
    """Assessments recorded without the under-five flag take it from the clear birth year, erring early: a
    child who may still have been under five that day is due again in 6 months rather than 12."""
    return tuple(a if a.under_five is not None else HealthAssessmentFacts(
        a.kind, a.date, birth_year is None or a.date.year - birth_year <= 5) for a in assessments)


def all_open_cases(session: Session) -> list[Case]:
    return cases_for(session, session.exec(select(Child).where(col(Child.closed_on).is_(None))))


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
