"""Dates that cannot be right: one check for every path a dated record takes into storage.

A visit, a wishes-and-feelings session, a life-story entry or a care-plan action dated before the child
was born is refused, with a message naming the child's date of birth. One dated before the case opened
(the earliest of the dates that start the child's clocks, or the referral) may be right, as when a record
is written up from old notes, so the worker is asked to confirm it: the form carries the confirmed date
in CONFIRM_FIELD. The screens, the offline page's drafts, sync pushes and the import all use `date_problem`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session

from storage import audit
from storage.models import Child, Worker
from storage.store import Store

# The form field holding the date the worker confirmed, though it is before the case opened.
CONFIRM_FIELD = "date_confirmed"

# The dates that open a case, as a worker names them.
CASE_STARTS = {
    "referral": "the referral",
    "looked_after_since": "the child became looked after",
    "strategy_discussion": "the strategy discussion",
    "initial_conference": "the initial child protection conference",
    "cin_plan_start": "the child in need plan started",
    "case_managed_since": "the case-managed case started",
}


def shown(day: date) -> str:
    """A date as a worker reads it: 14 Mar 2011."""
    return f"{day:%-d %b %Y}"


@dataclass(frozen=True)
class CaseDates:
    """What a record's date is checked against: when the child was born, and when their case opened."""

    born: date | None = None
    opened: date | None = None
    opened_by: str = ""  # the CASE_STARTS field that opened it

    @classmethod
    def of(cls, child: Child, born: date | None) -> CaseDates:
        starts = [(day, name) for name in CASE_STARTS if (day := getattr(child, name)) is not None]
        opened, opened_by = min(starts) if starts else (None, "")
        return cls(born=born, opened=opened, opened_by=opened_by)


def case_dates(store: Store, child: Child) -> CaseDates:
    """The child's date of birth (from the sealed body) and when their case opened."""
    return CaseDates.of(child, store.opened(child).body.date_of_birth)


@dataclass(frozen=True)
class DateProblem:
    """Why a record's date cannot be taken as it is; a `confirmable` one is taken once the worker confirms it."""

    message: str
    confirmable: bool = False


def date_problem(day: date, case: CaseDates, what: str, *, today: date | None = None,
                 confirmed: bool = False) -> DateProblem | None:
    """What is wrong with a record's date (`what`: "visit", "last visit"...), or None if nothing is.

    In the future (when `today` is given) or before the child's birth: refused. Before the case opened:
    to be confirmed, unless `confirmed`.
    """
    if today is not None and day > today:
        return DateProblem(f"The {what} date ({shown(day)}) is in the future. Enter the day it happened.")
    if case.born is not None and day < case.born:
        return DateProblem(f"The {what} date ({shown(day)}) is before the child's date of birth "
                           f"({shown(case.born)}). Check the date and enter the right one.")
    if case.opened is not None and day < case.opened and not confirmed:
        return DateProblem(f"The {what} date ({shown(day)}) is before the case opened: "
                           f"{CASE_STARTS[case.opened_by]} on {shown(case.opened)}. Check the date; if it is "
                           "right, confirm it.", confirmable=True)
    return None


def is_confirmed(fields: Mapping[str, Any], day: date) -> bool:
    """Whether the worker confirmed this very date (a date changed after confirming is asked about again)."""
    return str(fields.get(CONFIRM_FIELD) or "").strip() == day.isoformat()


def check_dates(store: Store, session: Session, worker: Worker, child: Child, kind: str,
                dates: Mapping[str, tuple[date | None, str, bool]], fields: Mapping[str, Any], *,
                device_id: str | None = None) -> dict[str, str]:
    """The problems with a form's dates for this child: {field: message}, empty when all are right.

    `dates` maps each form field to (its date, what it is, whether a date before the case opened may be
    confirmed). A date before birth is a refusal, audited (the trail names the kind and the child, never
    the date); a confirmable date before the case opened is asked about under CONFIRM_FIELD.
    """
    case = case_dates(store, child)
    problems: dict[str, str] = {}
    for name, (day, what, confirmable) in dates.items():
        if day is None:
            continue
        problem = date_problem(day, case, what, confirmed=not confirmable or is_confirmed(fields, day))
        if problem is None:
            continue
        if problem.confirmable:
            problems.setdefault(CONFIRM_FIELD, problem.message)
        else:
            problems[name] = problem.message
            audit.refuse(session, audit.Refusal(problem.message, kind=kind, record_id=child.id,
                                                worker_id=worker.id, device_id=device_id, child_id=child.id,
                                                detail=f"{name}:before_birth"))
    return problems
