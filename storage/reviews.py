"""Reviews recorded from the child's page: a looked-after review, a child protection review conference or a
pathway plan review, with what the statutory returns need (participation, cancelled, quorate, plan continues).

The form is defined once (storage/forms/review.py). `record_review` checks it, speaks the returns' rules about
the review at the moment it is recorded (storage/returns/rules.py: refused where the review itself is wrong,
confirmed where it can be put right later), and stores it once per submission key (storage/submissions.py),
audited. A held review is a fact the timescales engine reads (storage/cases.py): the child's review clock moves
with no code here. A cancelled review is kept with the day it was to be held, and starts no clock.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from storage.child_forms import FormInvalid, form_refused
from storage.forms.review import REVIEW
from storage.models import Child, Review, ReviewBody, Worker
from storage.record_dates import CaseDates, date_problem
from storage.returns.common import PlanRow, child_plans
from storage.returns.rules import recording_problems, review_problems, warnings_detail
from storage.store import Store
from storage.submissions import key_of, make_once
from storage.timescales.calendar import today_in_england


def _yes(answer: str) -> bool | None:
    return {"yes": True, "no": False}.get(answer)


def review_from(fields: dict[str, Any], child_id: str, plans: list[PlanRow], key: str | None = None) -> Review:
    """The review a checked form describes (its plan: the child protection plan open that day, else the latest
    begun before it)."""
    answer = REVIEW.answer
    day = date.fromisoformat(answer(fields, "held_on"))
    cancelled = answer(fields, "cancelled") == "yes"
    kind = answer(fields, "kind")
    review = Review(child_id=child_id, kind=kind, scheduled_for=day, held_on=None if cancelled else day,
                    cancelled=cancelled, submission_key=key)
    if not cancelled and kind == "cic_review":
        review.participation = answer(fields, "participation") or None
    if not cancelled and kind == "cp_review":
        review.quorate, review.plan_continues = _yes(answer(fields, "quorate")), _yes(answer(fields, "plan_continues"))
    if kind == "cp_review":
        cp = sorted((p for p in plans if p.kind == "cp_plan"), key=lambda p: p.start)
        chosen = [p for p in cp if p.start <= day and (p.ended is None or p.ended >= day)] or \
            [p for p in cp if p.start <= day] or cp
        review.plan_id = chosen[-1].id if chosen else None
    return review


def record_review(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                  today: date | None = None) -> Review:
    """Records a review from the form, once per its submission key.

    Raises FormInvalid saying what to fix (audited when refused; a warning the worker has not confirmed asks
    under `returns_confirmed`), NotAllowed (audited) for a child the worker may not see.
    """
    today = today or today_in_england()
    key = key_of(fields)

    def make(session: Session, child: Child) -> Review:
        born = store.opened(child).body.date_of_birth
        problems = REVIEW.problems(fields, today=today)
        if "held_on" not in problems:
            problem = date_problem(date.fromisoformat(REVIEW.answer(fields, "held_on")), CaseDates(born=born),
                                   "review")
            if problem is not None:
                problems["held_on"] = problem.message
        if problems:
            raise form_refused(session, worker, child, "review", problems)
        plans = child_plans(session, child)
        review = review_from(fields, child.id, plans, key)
        found = review_problems(review, born, plans)
        said, blocked = recording_problems(found, REVIEW.answer(fields, "returns_confirmed") == "yes")
        if blocked:
            raise form_refused(session, worker, child, "review", said)
        if said:
            raise FormInvalid(said)  # asked to confirm: nothing refused, nothing stored yet
        store.write(session, review, ReviewBody(notes=REVIEW.answer(fields, "notes")), actor=worker,
                    action="create", detail=warnings_detail(found))
        return review

    return make_once(store, worker, child_id, key, "review", make)
