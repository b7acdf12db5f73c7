"""Statutory visits: submitting (sealed, immutable), corrections.

The form is defined once, in storage/forms/visit.py (labels, codes, when each field is asked and required,
what to say when it is missing): the checks below, the screen and the offline page all come from it. It
travels as a plain dict of strings and lists (`fields`), the same shape whether it comes from the visit
screen, a restored draft or the offline page's IndexedDB copy:

    visit_date "YYYY-MM-DD", visit_time "HH:MM" (England's local time), location (a VISIT_LOCATIONS
    code), location_detail, seen / seen_alone / bedroom_seen ("yes", "no" or ""), not_alone_reason (a
    NOT_ALONE_REASONS code), present, observations (fact), analysis (opinion), child_words,
    child_words_not_recorded_reason, worries, working_well, needs_to_happen,
    safety_scale [{"who", "score"}], safety_goals [{"pair_id", "danger", "goal", "worker", "parent", "child",
    "others"}] (a danger statement, its safety goal and each person's score), actions [{"description", "owner", "due"}], supersedes (a visit id),
    submission_key (made when the form is opened: the visit is stored once per key, storage/submissions.py),
    and any field added to the definition since (kept in the sealed body's `answers`).

The draft saved as the worker types is kept by storage/drafts.py (kind DRAFT_KIND). Submitting checks the
form, seals the visit with its outbox entry and audit event, turns its actions arising into care plan
actions and discards the draft, all in one transaction. A submitted visit is never changed: a correction is a new visit whose
`supersedes` names the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from storage import policy
from storage.child_forms import child_session
from storage.drafts import discard_in, load_draft
from storage.forms.visit import SAFETY_GOAL_SCORERS, VISIT
from storage.models import (
    CarePlan,
    CarePlanAction,
    CarePlanActionBody,
    CarePlanBody,
    Child,
    RecordStatus,
    SafetyGoal,
    SafetyScore,
    Visit,
    VisitBody,
    Worker,
    new_id,
    utcnow,
)
from storage.record_dates import check_dates
from storage.signs_of_safety import latest_goals
from storage.store import NotAllowed, Store
from storage.submissions import KEY_FIELD, key_of, make_once, new_key
from storage.timescales import is_late_write_up
from storage.timescales.calendar import LONDON

# A phone's clock can run a little ahead of the server's: a visit "now" must not read as the future.
CLOCK_SLACK = timedelta(minutes=5)

# The answers kept in the visit's sealed body as they were typed (storage/forms/visit.py says which).
TEXT_FIELDS = tuple(name for name in VISIT.names("text", "longtext") if VISIT.field(name).kept == "body")
PLAN_KIND_FOR = {"cic": "care_plan", "cp": "cp_plan", "cin": "cin_plan", "case_managed": "care_plan"}


class VisitInvalid(ValueError):
    """The form cannot be submitted as it is: `problems` maps each field to what to do about it."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(" ".join(problems.values()))
        self.problems = problems


def blank_form(now: datetime | None = None) -> dict[str, Any]:
    """A new visit form: dated now, at the placement, child seen; everything else to be answered."""
    local = (now or utcnow()).astimezone(LONDON)
    return VISIT.blank({"visit_date": local.strftime("%Y-%m-%d"), "visit_time": local.strftime("%H:%M")})


# ------------------------------------------------------------ checking a form


@dataclass
class CheckedVisit:
    """A form that passed every check, in the shapes the Visit row and its body take."""

    visited_at: datetime
    location: str
    seen: bool
    seen_alone: bool | None
    not_alone_reason: str | None
    bedroom_seen: bool | None
    body: VisitBody
    actions: list[tuple[str, str, date | None]]  # description, owner, due
    supersedes: str | None


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def _yes_no(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    return True if text in ("yes", "true") else False if text in ("no", "false") else None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        return None


def check_visit(fields: dict[str, Any], category: str, now: datetime | None = None) -> CheckedVisit:
    """Checks a visit form against the recording standards (its definition, storage/forms/visit.py, and
    the date and time together, the scores and the actions); raises VisitInvalid saying what to fix."""
    now = now or utcnow()
    problems = VISIT.problems(fields, category=category)
    visited_at: datetime | None = None
    day = _date(_text(fields, "visit_date"))
    at = None if "visit_time" in problems else time.fromisoformat(_text(fields, "visit_time") or "12:00")
    if day is not None and at is not None:
        visited_at = datetime.combine(day, at, tzinfo=LONDON).astimezone(UTC)
        if visited_at > now + CLOCK_SLACK:
            problems["visit_date"] = ("The visit date and time are in the future. "
                                      "Enter when the visit happened.")
    seen = _yes_no(fields.get("seen"))
    seen_alone = _yes_no(fields.get("seen_alone")) if seen else None
    reason = _text(fields, "not_alone_reason") if seen and seen_alone is False else ""
    bedroom = _yes_no(fields.get("bedroom_seen"))

    scale: list[SafetyScore] = []
    for row in fields.get("safety_scale") or []:
        who = str(row.get("who") or "").strip()
        raw = row.get("score")
        if not who and raw in (None, ""):
            continue  # an empty row the worker added and did not use
        try:
            score = int(float(raw))
            if score != float(raw) or not 0 <= score <= 10:
                raise ValueError
        except (TypeError, ValueError):
            problems["safety_scale"] = "Give each safety score as a whole number from 0 to 10."
            continue
        if not who:
            problems["safety_scale"] = "Say who gave each safety score."
            continue
        scale.append(SafetyScore(who=who, score=score))

    # Checked by the definition (a score 0-10, a statement with its goal); a new pair is given its id here.
    goals = [SafetyGoal(pair_id=row["pair_id"] or new_id(), danger=row["danger"], goal=row["goal"],
                        scores={who: int(float(row[who])) for who in SAFETY_GOAL_SCORERS if row[who]})
             for row in VISIT.rows(fields, "safety_goals")] if "safety_goals" not in problems else []

    actions: list[tuple[str, str, date | None]] = []
    for row in fields.get("actions") or []:
        description = str(row.get("description") or "").strip()
        owner = str(row.get("owner") or "").strip()
        due_text = str(row.get("due") or "").strip()
        if not (description or owner or due_text):
            continue
        due = _date(due_text) if due_text else None
        if not description:
            problems["actions"] = "Describe each action arising, or remove it."
        elif due_text and due is None:
            problems["actions"] = "Give each action's due date as a date, or leave it blank."
        else:
            actions.append((description, owner, due))

    if problems:
        raise VisitInvalid(problems)
    assert visited_at is not None and seen is not None
    body = VisitBody(**VISIT.body_values(fields, VisitBody, category), safety_scale=scale,
                     safety_goals=goals, actions=[a[0] for a in actions])
    return CheckedVisit(visited_at=visited_at, location=_text(fields, "location"), seen=seen, seen_alone=seen_alone,
                        not_alone_reason=reason or None, bedroom_seen=bedroom, body=body, actions=actions,
                        supersedes=_text(fields, "supersedes") or None)


# ------------------------------------------------------------ submitting


def _check_correction(session: Session, worker: Worker, child_id: str, old_id: str) -> Visit:
    old = session.get(Visit, old_id)
    refusal = policy.why_not_correct(policy.actor(worker, ()), child_id, old)
    if refusal is not None:
        raise VisitInvalid({"supersedes": "The visit you are correcting could not be found."
                            if refusal.rule == "bad_correction" else
                            "Only the worker who recorded a visit can correct it."})
    assert old is not None
    newer = session.exec(select(Visit.id).where(Visit.supersedes == old_id)).first()
    if newer is not None:
        raise VisitInvalid({"supersedes": "This visit has already been corrected: correct the newer record."})
    return old


def _plan_for(store: Store, session: Session, worker: Worker, child: Child, on: date) -> CarePlan:
    """The child's current plan, which actions arising join; a first plan is started if there is none."""
    plan = session.exec(select(CarePlan).where(CarePlan.child_id == child.id, col(CarePlan.ended).is_(None))
                        .order_by(col(CarePlan.start).desc())).first()
    if plan is None:
        plan = CarePlan(child_id=child.id, kind=PLAN_KIND_FOR.get(child.category, "care_plan"), start=on)
        store.write(session, plan, CarePlanBody(), actor=worker, action="create")
    return plan


def check_visit_for(store: Store, session: Session, worker: Worker, child: Child, fields: dict[str, Any],
                    now: datetime, device_id: str | None = None) -> CheckedVisit:
    """`check_visit`, and the visit's dates against the child's birth and the case's opening
    (storage/record_dates.py): every problem in one VisitInvalid."""
    dues = [_date(str(row.get("due") or "")) for row in fields.get("actions") or [] if isinstance(row, dict)]
    earliest_due = min((d for d in dues if d), default=None)
    dates = {"visit_date": (_date(_text(fields, "visit_date")), "visit", True),
             "actions": (earliest_due, "action's due", False)}
    date_problems = check_dates(store, session, worker, child, "visit", dates, fields, device_id=device_id)
    try:
        checked = check_visit(fields, child.category, now)
    except VisitInvalid as e:
        raise VisitInvalid({**date_problems, **e.problems}) from None
    if date_problems:
        raise VisitInvalid(date_problems)
    return checked


def _submit(store: Store, session: Session, worker: Worker, child: Child, fields: dict[str, Any],
            now: datetime, device_id: str | None, key: str | None = None) -> Visit:
    checked = check_visit_for(store, session, worker, child, fields, now, device_id)
    if checked.supersedes:
        _check_correction(session, worker, child.id, checked.supersedes)
    visit = Visit(child_id=child.id, worker_id=worker.id, visited_at=checked.visited_at, location=checked.location,
                  seen=checked.seen, seen_alone=checked.seen_alone, not_alone_reason=checked.not_alone_reason,
                  bedroom_seen=checked.bedroom_seen, status=RecordStatus.submitted.value, created_at=now,
                  updated_at=now, written_up_at=now, submitted_at=now, supersedes=checked.supersedes,
                  submission_key=key)
    store.write(session, visit, checked.body, actor=worker, device_id=device_id, action="submit")
    if checked.actions:
        plan = _plan_for(store, session, worker, child, checked.visited_at.astimezone(LONDON).date())
        for description, owner, due in checked.actions:
            action = CarePlanAction(plan_id=plan.id, child_id=child.id, due=due, from_visit=visit.id)
            store.write(session, action, CarePlanActionBody(description=description, owner=owner),
                        actor=worker, device_id=device_id, action="create", at=now)
    discard_in(session, worker, child.id)
    return visit


def submit_visit(store: Store, worker: Worker, child_id: str, fields: dict[str, Any], *,
                 now: datetime | None = None, device_id: str | None = None) -> Visit:
    """Checks, seals and stores the visit as submitted (immutable from now on); discards the draft.

    A form carrying its submission key (`submission_key`, made when it was opened) is stored once per key:
    sent again, it returns the visit stored the first time (storage/submissions.py).

    Raises VisitInvalid (nothing stored) when the form needs fixing, NotAllowed for a child not
    on the worker's caseload or a key another worker used.
    """
    key = key_of(fields)
    if key:
        return submit_visit_from_draft(store, worker, child_id, fields, key, now=now, device_id=device_id)
    with child_session(store, worker, child_id, device_id=device_id) as (session, child):
        return _submit(store, session, worker, child, fields, now or utcnow(), device_id)


def submit_visit_from_draft(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                            idempotency_key: str, *, now: datetime | None = None,
                            device_id: str | None = None) -> Visit:
    """Stores a visit exactly once per key: the screen's submission key, or an offline draft's idempotency key
    (the same key, for a form begun on the screen and finished offline).

    A retry with a key already used returns the visit it stored the first time and changes nothing.
    """
    def submit(session: Session, child: Child) -> Visit:
        return _submit(store, session, worker, child, fields, now or utcnow(), device_id, idempotency_key.strip())

    return make_once(store, worker, child_id, idempotency_key, "visit", submit, device_id=device_id)


# ------------------------------------------------------------ reading visits back


def written_up_late(visit: Visit) -> bool:
    """Whether the visit was written up more than the allowed working days after it happened."""
    if visit.written_up_at is None:
        return False
    return is_late_write_up(visit.visited_at.astimezone(LONDON).date(), visit.written_up_at.astimezone(LONDON).date())


def form_from_visit(store: Store, worker: Worker, child_id: str, visit_id: str) -> dict[str, Any]:
    """A new form prefilled from a submitted visit, to correct it (the new visit supersedes the old)."""
    with child_session(store, worker, child_id) as (session, _child):
        visit = _check_correction(session, worker, child_id, visit_id)
        opened = store.opened(visit)
    body: VisitBody = opened.body
    local = visit.visited_at.astimezone(LONDON)

    def yes_no(value: bool | None) -> str:
        return "" if value is None else "yes" if value else "no"

    return {
        "visit_date": local.strftime("%Y-%m-%d"), "visit_time": local.strftime("%H:%M"),
        "location": visit.location, "seen": yes_no(visit.seen), "seen_alone": yes_no(visit.seen_alone),
        "not_alone_reason": visit.not_alone_reason or "", "bedroom_seen": yes_no(visit.bedroom_seen),
        **VISIT.form_values(body),
        "safety_scale": [{"who": s.who, "score": s.score} for s in body.safety_scale],
        "safety_goals": goal_rows(body.safety_goals, scored=True),
        # The old visit's actions are already care plan actions: a correction adds only new ones.
        "actions": [], "supersedes": visit.id, KEY_FIELD: new_key(),
    }


def goal_rows(goals: list[SafetyGoal], *, scored: bool) -> list[dict[str, Any]]:
    """Safety goals as the form's rows: with their scores (a correction) or without (carried forward to be
    scored again)."""
    return [{"pair_id": g.pair_id, "danger": g.danger, "goal": g.goal,
             **{who: g.scores.get(who) if scored else None for who in SAFETY_GOAL_SCORERS}} for g in goals]


# ------------------------------------------------------------ opening the form


@dataclass
class VisitFormStart:
    """What the visit screen opens with: whose visit, and the form (restored draft, correction or new)."""

    child_name: str
    category: str
    fields: dict[str, Any]
    restored_at: datetime | None = None  # when the restored draft was last saved
    problem: str = ""  # why a requested correction could not be started
    born: date | None = None  # the child's date of birth: the date picker offers nothing before it


def start_visit_form(store: Store, worker: Worker, child_id: str, supersedes: str = "",
                     now: datetime | None = None) -> VisitFormStart:
    """The form to show: the worker's unfinished draft if there is one, else a correction, else a new visit
    (with the worries and safety goals of the child's latest visit, to be scored again).

    Raises NotAllowed (audited) for a child not on the worker's caseload.
    """
    with child_session(store, worker, child_id) as (session, child):
        body = store.opened(child).body
        carried = latest_goals(store, session, child)
    # A new visit opens with the child's latest worries and safety goals, unscored: scored again, they chart over time.
    fields = {**blank_form(now), "safety_goals": goal_rows(carried, scored=False)}
    start = VisitFormStart(child_name=body.name, category=child.category, fields=fields, born=body.date_of_birth)
    draft = load_draft(store, worker, child_id)
    if draft is not None:
        # A draft is never overwritten by opening the form: what the worker typed comes first.
        start.fields = {**start.fields, **draft.fields}
        start.restored_at = draft.updated_at
    elif supersedes:
        try:
            start.fields = form_from_visit(store, worker, child_id, supersedes)
        except (VisitInvalid, NotAllowed) as e:
            start.problem = str(e)
    return start
