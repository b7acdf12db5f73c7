"""Care plans and their actions.

An action's form is defined once, in storage/forms/care_plan_action.py. Plans and actions are mutable: each change names the fields it touched so their per-field clocks (and so
sync's field-by-field merge) are right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from storage import policy
from storage.child_forms import (
    ChildHeading,
    FormInvalid,
    _check_child_dates,
    _heading,
    _past_date,
    _read,
    _text,
)
from storage.forms.care_plan_action import CARE_PLAN_ACTION
from storage.models import (
    ACTION_STATUSES,
    PLAN_KINDS,
    CarePlan,
    CarePlanAction,
    CarePlanActionBody,
    CarePlanBody,
    Child,
    Worker,
)
from storage.store import NotAllowed, Store
from storage.submissions import already_made, key_of, make_once
from storage.timescales.calendar import today_in_england

ACTION_STATUS_WORDS = {"open": "Open", "in_progress": "In progress", "done": "Done", "cancelled": "Cancelled"}
OPEN_STATUSES = ("open", "in_progress")


def blank_plan_form(today: date | None = None) -> dict[str, str]:
    return {"kind": "", "start": (today or today_in_england()).isoformat(), "summary": ""}


def blank_action_form() -> dict[str, str]:
    return CARE_PLAN_ACTION.blank()


@dataclass
class ActionView:
    id: str
    plan_id: str
    description: str
    owner: str
    due: date | None
    status: str
    status_words: str
    outcome: str
    completed_on: date | None
    overdue: bool


@dataclass
class PlanView:
    id: str
    kind: str
    kind_words: str
    start: date
    ended: date | None
    summary: str
    actions: list[ActionView]


def is_overdue(action: CarePlanAction, today: date) -> bool:
    return action.status in OPEN_STATUSES and action.due is not None and action.due < today


def care_plans_for_child(store: Store, worker: Worker, child_id: str,
                         today: date | None = None) -> tuple[ChildHeading, list[PlanView]]:
    """The child's plans, current first, each with its actions: overdue first, then open by due date."""
    today = today or today_in_england()
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        _read(session, worker, child, "care_plan")
        plans = list(session.exec(select(CarePlan).where(CarePlan.child_id == child.id)
                                  .order_by(col(CarePlan.start).desc())))
        actions = list(session.exec(select(CarePlanAction).where(CarePlanAction.child_id == child.id)))
        views = []
        for plan in sorted(plans, key=lambda p: p.ended is not None):
            mine = []
            for action in (a for a in actions if a.plan_id == plan.id):
                body: CarePlanActionBody = store.opened(action).body
                mine.append(ActionView(
                    id=action.id, plan_id=plan.id, description=body.description, owner=body.owner, due=action.due,
                    status=action.status, status_words=ACTION_STATUS_WORDS.get(action.status, action.status),
                    outcome=body.outcome, completed_on=action.completed_on, overdue=is_overdue(action, today)))
            mine.sort(key=lambda a: (not a.overdue, a.status not in OPEN_STATUSES, a.due or date.max))
            views.append(PlanView(id=plan.id, kind=plan.kind, kind_words=PLAN_KINDS.get(plan.kind, plan.kind),
                                  start=plan.start, ended=plan.ended, summary=store.opened(plan).body.summary,
                                  actions=mine))
        return _heading(store, child), views


def add_plan(store: Store, worker: Worker, child_id: str, fields: dict[str, Any], *,
             today: date | None = None) -> CarePlan:
    """Starts a plan for the child. Raises FormInvalid saying what to fix."""
    today = today or today_in_england()
    problems: dict[str, str] = {}
    kind = _text(fields, "kind")
    if kind not in PLAN_KINDS:
        problems["kind"] = "Choose the kind of plan (care plan, child in need plan, PEP...)."
    start = _past_date(fields, "start", today, "plan's start", problems)
    if problems:
        raise FormInvalid(problems)
    assert start is not None
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        plan = CarePlan(child_id=child.id, kind=kind, start=start)
        store.write(session, plan, CarePlanBody(summary=_text(fields, "summary")), actor=worker, action="create")
        return plan


def add_action(store: Store, worker: Worker, child_id: str, fields: dict[str, Any]) -> CarePlanAction:
    """Adds an action to one of the child's plans, once per submission key when the form carries one (a second
    tap returns the action the first one added). Raises FormInvalid saying what to fix."""
    key = key_of(fields)
    existing = already_made(store, worker, key, "care_plan_action") if key else None
    if existing is not None:
        return existing
    problems = CARE_PLAN_ACTION.problems(fields)
    if problems:
        raise FormInvalid(problems)
    due = date.fromisoformat(_text(fields, "due")) if _text(fields, "due") else None

    def make(session: Session, child: Child) -> CarePlanAction:
        plan = session.get(CarePlan, _text(fields, "plan_id"))
        if policy.why_not_link_action(child.id, plan):
            raise FormInvalid({"plan_id": "That plan could not be found for this child. Choose another."})
        assert plan is not None
        _check_child_dates(store, session, worker, child, "care_plan_action", "due", due, "action's due", fields)
        action = CarePlanAction(plan_id=plan.id, child_id=child.id, due=due, status="open",
                                submission_key=key or None)
        store.write(session, action, CarePlanActionBody(**CARE_PLAN_ACTION.body_values(fields, CarePlanActionBody)),
                    actor=worker, action="create")
        return action

    if key:
        return make_once(store, worker, child_id, key, "care_plan_action", make)
    with store.session() as session:
        return make(session, store.child_for(session, worker, child_id))


def _action_for(store: Store, session: Session, worker: Worker, child_id: str, action_id: str) -> CarePlanAction:
    child = store.child_for(session, worker, child_id)
    action = session.get(CarePlanAction, action_id)
    if action is None or action.child_id != child.id:
        raise NotAllowed("That action could not be found for this child.", kind="care_plan_action",
                         record_id=action_id, worker_id=worker.id, child_id=child.id)
    return action


def set_action_status(store: Store, worker: Worker, child_id: str, action_id: str, status: str) -> CarePlanAction:
    """Moves an action to open, in progress or cancelled. "Done" needs an outcome: see `complete_action`."""
    if status not in ACTION_STATUSES:
        raise FormInvalid({"status": "Choose a status: open, in progress, done or cancelled."})
    if status == "done":
        raise FormInvalid({"status": "To mark an action done, complete it and say what the outcome was."})
    with store.session() as session:
        action = _action_for(store, session, worker, child_id, action_id)
        if action.status == status:
            return action
        changed = ["status"]
        action.status = status
        if action.completed_on is not None:
            action.completed_on = None  # reopened: it is no longer complete
            changed.append("completed_on")
        # The body is re-sealed unchanged so the change carries it; only the named fields' clocks move.
        store.write(session, action, store.opened(action).body, actor=worker, action="update", changed=changed)
        return action


def complete_action(store: Store, worker: Worker, child_id: str, action_id: str, outcome: str, *,
                    today: date | None = None) -> CarePlanAction:
    """Marks an action done today with its outcome. Raises FormInvalid without an outcome."""
    outcome = (outcome or "").strip()
    if not outcome:
        raise FormInvalid({"outcome": "Say what the outcome was before marking the action done."})
    with store.session() as session:
        action = _action_for(store, session, worker, child_id, action_id)
        body: CarePlanActionBody = store.opened(action).body
        body.outcome = outcome
        action.status = "done"
        action.completed_on = today or today_in_england()
        store.write(session, action, body, actor=worker, action="update",
                    changed=["status", "completed_on", "body.outcome"])
        return action
