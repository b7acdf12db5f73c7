"""What the child's screen shows: who the child is, their placement, every clock and one timeline.

Reading a child's page is audited ("read"); a child the worker may not see is refused by
`Store.child_for`, which audits the refusal, and reads as "not found".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import select

from storage import audit
from storage.cases import cases_for
from storage.child_forms import child_session
from storage.drafts import DRAFT_KIND
from storage.forms.visit import VISIT
from storage.missing import EpisodeView, episodes_for, is_missing_now
from storage.models import (
    CATEGORY_LABELS,
    LEGAL_STATUSES,
    LIFE_STORY_SECTIONS,
    NOT_ALONE_REASONS,
    PLACEMENT_TYPES,
    PLAN_KINDS,
    REVIEW_KINDS,
    VISIT_LOCATIONS,
    WISHES_METHODS,
    Draft,
    Worker,
)
from storage.signs_of_safety import goal_words
from storage.store import Store, age_on
from storage.sync.conflicts import undecided as conflicts_undecided
from storage.timescales import Clock, clocks_and_problems, worst_first
from storage.timescales.calendar import LONDON, today_in_england
from storage.timescales.facts import CLOCK_NAMES as ALL_CLOCK_NAMES
from storage.visits import written_up_late

CLOCK_NAMES = ALL_CLOCK_NAMES  # defined with the clocks (storage/timescales/facts.py)
STATUS_WORDS = {"draft": "Draft", "submitted": "Submitted", "returned": "Returned", "signed_off": "Signed off"}


@dataclass
class PlacementView:
    type_code: str
    type_words: str
    provider: str
    carer: str
    address: str
    postcode: str
    town: str
    local_authority: str
    out_of_area: bool
    distance_km: float | None
    start: date
    long_term: bool


@dataclass
class TimelineItem:
    """One thing that happened, for the timeline: newest first across every kind of record."""

    kind: str  # visit, wishes_and_feelings, life_story, review, care_plan, care_plan_action
    record_id: str
    on: date
    title: str
    at: datetime | None = None  # the time of day, where the record has one
    status: str = ""
    late: bool = False
    lines: list[tuple[str, str]] = field(default_factory=list)  # (label, text) shown when opened
    child_words: str = ""  # shown in the child's own style, set apart from the worker's words
    supersedes: str | None = None
    superseded_by: str | None = None
    correctable: bool = False


@dataclass
class ChildView:
    child_id: str
    name: str
    initials: str
    photo: str
    age: int | None
    date_of_birth: date | None
    facts: list[tuple[str, str]]
    category: str
    category_words: str
    legal_status: str
    legal_status_words: str
    placement: PlacementView | None
    clocks: list[Clock]
    timeline: list[TimelineItem]
    manages: bool = False  # the viewer manages the child's team: they may read its audit trail
    drafts: frozenset[str] = frozenset()  # the kinds of form this worker has left unfinished for the child
    problem: str = ""  # why what is due cannot be worked out (then `clocks` is empty), to be put right
    unopened: list[str] = field(default_factory=list)  # records that would not open (changed outside Seen)
    episodes: list[EpisodeView] = field(default_factory=list)  # missing episodes, latest first
    missing: bool = False  # missing now: an episode has begun and not ended
    undecided: list[str] = field(default_factory=list)  # conflicts waiting for a decision, each field in words

    @property
    def has_draft(self) -> bool:
        """An unfinished visit: the child's page says "continue"."""
        return DRAFT_KIND in self.drafts


def clock_name(clock: Clock) -> str:
    return CLOCK_NAMES.get(clock.clock, clock.clock.replace("_", " ").capitalize())


def _local(moment: datetime) -> datetime:
    return moment.astimezone(LONDON)


def child_view(store: Store, worker: Worker, child_id: str, on: date | None = None) -> ChildView:
    """Everything the child's screen shows. Raises NotAllowed (audited) for a child the worker may not see."""
    on = on or today_in_england()
    with child_session(store, worker, child_id) as (session, child):
        audit.append(session, "read", "child", child.id, worker_id=worker.id, child_id=child.id)
        opened = store.opened(child)
        records = store.child_records(session, child.id)
        case = cases_for(session, [child])[0]
        drafts = frozenset(session.exec(select(Draft.kind).where(Draft.worker_id == worker.id,
                                                                 Draft.child_id == child.id)))
        manages = child.team_id in store.managed_team_ids(session, worker)
        episodes = episodes_for(store, session, child.id)
        undecided = conflicts_undecided(store, session, child.id)
    clocks, problems = clocks_and_problems([case], on)
    body = opened.body
    facts = [(label, value) for label, value in [
        ("Date of birth", f"{body.date_of_birth:%-d %B %Y}" if body.date_of_birth else ""),
        ("Gender", body.gender), ("Ethnicity", body.ethnicity), ("First language", body.first_language),
        ("Religion", body.religion), ("Disability", body.disability),
        ("Home address", ", ".join(p for p in (body.home_address, body.home_postcode) if p)),
        ("Case reference", body.external_ref),
    ] if value]
    current = next((p for p in records["placements"] if p.end is None or p.end >= on), None)
    placement = None
    if current is not None:
        placement = PlacementView(
            type_code=current.placement_type, type_words=PLACEMENT_TYPES.get(current.placement_type, ""),
            provider=current.body.provider, carer=current.body.carer, address=current.body.address,
            postcode=current.body.postcode, town=current.body.town, local_authority=current.local_authority,
            out_of_area=current.out_of_area, distance_km=current.distance_km, start=current.start,
            long_term=current.long_term)
    return ChildView(
        child_id=child.id, name=body.name, initials=body.initials, photo=body.photo,
        age=age_on(body.date_of_birth, on), date_of_birth=body.date_of_birth, facts=facts,
        category=child.category, category_words=CATEGORY_LABELS.get(child.category, child.category),
        legal_status=child.legal_status, legal_status_words=LEGAL_STATUSES.get(child.legal_status, ""),
        placement=placement, clocks=worst_first(clocks), problem=problems.get(child.id, ""),
        timeline=timeline(records, worker), manages=manages, drafts=drafts, unopened=records["unopened"],
        episodes=episodes, missing=is_missing_now(episodes, on), undecided=undecided,
    )


def _yes_no(value: bool | None) -> str:
    return "Not recorded" if value is None else "Yes" if value else "No"


def _visit_item(v: Any, worker: Worker, superseded_by: dict[str, str]) -> TimelineItem:
    body = v.body
    if not v.seen:
        title = "Visit: child not seen"
    elif v.seen_alone:
        title = "Visit: seen alone"
    else:
        title = "Visit: seen, not alone"
    lines = [("Where", VISIT_LOCATIONS.get(v.location, v.location) + (f" ({body.location_detail})"
                                                                      if body.location_detail else ""))]
    if v.seen and v.seen_alone is False:
        lines.append(("Why not alone", NOT_ALONE_REASONS.get(v.not_alone_reason or "", "No reason recorded")))
    if v.bedroom_seen is not None:
        lines.append(("Bedroom seen", _yes_no(v.bedroom_seen)))
    for label, text in [("Present", body.present), ("Observations (fact)", body.observations),
                        ("Analysis (opinion)", body.analysis),
                        ("Why the child's words are not recorded", body.child_words_not_recorded_reason),
                        ("Worries", body.worries), ("Working well", body.working_well),
                        ("Needs to happen", body.needs_to_happen)]:
        if text:
            lines.append((label, text))
    # Answers to questions added to the visit's form since: under the question the worker was asked.
    labels = {f.name: f.label for f in VISIT.fields}
    lines += [(labels.get(name, name.replace("_", " ")), text) for name, text in body.answers.items() if text]
    if body.safety_scale:
        lines.append(("Safety scale (0-10)", "; ".join(f"{s.who}: {s.score}" for s in body.safety_scale)))
    lines += [(f"Worry and safety goal {n}", goal_words(g)) for n, g in enumerate(body.safety_goals, 1)]
    if body.actions:
        lines.append(("Actions arising", "; ".join(body.actions)))
    if body.return_reason:
        lines.append(("Returned by the manager", body.return_reason))
    if v.written_up_at is not None:
        lines.append(("Written up", f"{_local(v.written_up_at):%-d %b %Y %H:%M}"))
    return TimelineItem(
        kind="visit", record_id=v.id, on=_local(v.visited_at).date(), at=_local(v.visited_at), title=title,
        status=v.status, late=written_up_late(v.row), lines=lines, child_words=body.child_words,
        supersedes=v.supersedes, superseded_by=superseded_by.get(v.id),
        correctable=v.worker_id == worker.id and v.id not in superseded_by and v.status != "draft",
    )


def timeline(records: dict[str, list[Any]], worker: Worker) -> list[TimelineItem]:
    """Visits, wishes and feelings, life story, reviews and care plan changes: newest first."""
    superseded_by = {r.supersedes: r.id for kind in ("visits", "wishes_and_feelings", "life_story")
                     for r in records[kind] if r.supersedes}
    items = [_visit_item(v, worker, superseded_by) for v in records["visits"]]
    for w in records["wishes_and_feelings"]:
        lines = [(label, text) for label, text in [("Worker's reflection", w.body.reflection),
                                                   ("Shared with", w.body.shared_with)] if text]
        items.append(TimelineItem(kind="wishes_and_feelings", record_id=w.id, on=w.on, status=w.status,
                                  title=f"Wishes and feelings: {WISHES_METHODS.get(w.method, w.method).lower()}",
                                  lines=lines, child_words=w.body.child_words, supersedes=w.supersedes,
                                  superseded_by=superseded_by.get(w.id)))
    for e in records["life_story"]:
        items.append(TimelineItem(kind="life_story", record_id=e.id, on=e.on, status=e.status,
                                  title=f"Life story: {LIFE_STORY_SECTIONS.get(e.section, e.section)}",
                                  lines=[(e.body.title or "Entry", e.body.text)], supersedes=e.supersedes,
                                  superseded_by=superseded_by.get(e.id)))
    for r in records["reviews"]:
        kind = REVIEW_KINDS.get(r.kind, r.kind)
        # Only what happened: a review still to come is on the "What is due" list, not the timeline.
        if r.held_on is not None:
            items.append(TimelineItem(kind="review", record_id=r.id, on=r.held_on, title=f"{kind} held",
                                      lines=[("Notes", r.body.notes)] if r.body.notes else []))
    plans = {p.id: p for p in records["care_plans"]}
    for p in records["care_plans"]:
        items.append(TimelineItem(kind="care_plan", record_id=p.id, on=p.start,
                                  title=f"{PLAN_KINDS.get(p.kind, p.kind)} started",
                                  lines=[("Summary", p.body.summary)] if p.body.summary else []))
    for a in records["actions"]:
        plan = plans.get(a.plan_id)
        lines = [(label, text) for label, text in [
            ("Plan", PLAN_KINDS.get(plan.kind, plan.kind) if plan else ""), ("Owner", a.body.owner),
            ("Due", f"{a.due:%-d %b %Y}" if a.due else ""), ("Outcome", a.body.outcome)] if text]
        if a.completed_on is not None:
            items.append(TimelineItem(kind="care_plan_action", record_id=a.id, on=a.completed_on,
                                      title=f"Action done: {a.body.description}", lines=lines))
        else:
            status = a.status.replace("_", " ")
            items.append(TimelineItem(kind="care_plan_action", record_id=a.id, on=_local(a.updated_at).date(),
                                      title=f"Action {status}: {a.body.description}", lines=lines))
    # Newest first; within a day, the latest time first and records without a time of day last.
    items.sort(key=lambda i: (i.on, i.at.timetz().replace(tzinfo=None) if i.at else datetime.min.time()),
               reverse=True)
    return items
