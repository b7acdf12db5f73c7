"""Placements recorded from the child's page: a new placement starts, or the current one ends, with what the
SSDA903 return needs (type, provider code, Ofsted URN, postcode, reason for the change).

The form is defined once (storage/forms/placement.py). `record_placement` checks it with the checks every path
shares (`policy.why_not_placement`, which sync and the import use too), speaks the return's rules about the
placement when it is recorded (storage/returns/rules.py: refused where the placement itself is wrong, confirmed
where it can be put right later), and stores it once per submission key, audited: a new placement is a record
made by the form (its key on the record), an end is a decision on one (its key held as a receipt). A placement
starts only once the one before has ended, so a child has one current placement, which the visit clocks read.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from storage import policy
from storage.child_forms import FormInvalid, form_refused
from storage.forms.placement import PLACEMENT
from storage.models import Category, Child, Placement, PlacementBody, Worker
from storage.record_dates import CaseDates, date_problem
from storage.returns.rules import Problem, placement_problems, recording_problems, warnings_detail
from storage.store import NotAllowed, Store
from storage.submissions import checked_key, decide_once, held, key_of, make_once
from storage.timescales.calendar import today_in_england

PLACED = (Category.cic.value, Category.care_leaver.value)  # the children who have a placement (as the import)


def record_placement(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                     today: date | None = None) -> Placement:
    """Starts a placement or ends the current one, as the form says, once per its submission key.

    Raises FormInvalid saying what to fix (audited when refused; a warning the worker has not confirmed asks
    under `returns_confirmed`), NotAllowed (audited) for a child the worker may not see.
    """
    today = today or today_in_england()
    problems = PLACEMENT.problems(fields, today=today)
    if problems:
        with store.session() as session:
            child = store.child_for(session, worker, child_id)
            raise form_refused(session, worker, child, "placement", problems)
    if PLACEMENT.answer(fields, "action") == "start":
        return _start(store, worker, child_id, fields)
    return _end(store, worker, child_id, fields)


def _start(store: Store, worker: Worker, child_id: str, fields: dict[str, Any]) -> Placement:
    answer = PLACEMENT.answer
    key = key_of(fields)

    def make(session: Session, child: Child) -> Placement:
        placement = Placement(child_id=child.id, placement_type=answer(fields, "placement_type"),
                              start=date.fromisoformat(answer(fields, "start")),
                              provider_code=answer(fields, "provider_code"), urn=answer(fields, "urn").upper(),
                              submission_key=key)
        born = store.opened(child).body.date_of_birth
        problems: dict[str, str] = {}
        if child.category not in PLACED:
            problems["action"] = "Only a child in care, or a care leaver, has a placement recorded here."
        problem = date_problem(placement.start, CaseDates(born=born), "placement's start")
        if problem is not None:
            problems["start"] = problem.message
        before = _placements(session, child.id)
        current = next((p for p in before if p.end is None), None)
        if current is not None:
            problems["action"] = (f"The current placement ({current.placement_type}, since {current.start:%-d %B %Y}) "
                                  "has not ended. End it first, with the reason for the change, then start the "
                                  "new one.")
        elif before and before[0].end is not None and placement.start < before[0].end:
            problems["start"] = (f"The last placement ended on {before[0].end:%-d %B %Y}: the new one starts on or "
                                 "after that day.")
        if problems:
            raise form_refused(session, worker, child, "placement", problems)
        found = _returns_problems(child, placement, born)
        _speak(session, worker, child, found, fields)  # the returns' words beside their fields, first
        refusal = policy.why_not_placement(placement)  # then what every path checks
        if refusal is not None:
            raise form_refused(session, worker, child, "placement", {"placement_type": refusal.message})
        store.write(session, placement, PlacementBody(provider=answer(fields, "provider"),
                                                      postcode=answer(fields, "postcode").upper()),
                    actor=worker, action="create", detail=warnings_detail(found))
        return placement

    return make_once(store, worker, child_id, key, "placement", make)


def _end(store: Store, worker: Worker, child_id: str, fields: dict[str, Any]) -> Placement:
    answer = PLACEMENT.answer
    key = checked_key(key_of(fields))
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        current = next((p for p in _placements(session, child.id) if p.end is None), None)
        current_id = current.id if current is not None else ""
    ended: list[str] = []

    def decide(session: Session) -> None:
        child = store.child_for(session, worker, child_id)
        placement = session.get(Placement, current_id) if current_id else None
        if placement is None or placement.child_id != child.id or placement.end is not None:
            raise form_refused(session, worker, child, "placement", {"action": "There is no current placement to end."})
        placement.end = date.fromisoformat(answer(fields, "end"))
        placement.change_reason = answer(fields, "change_reason")
        born = store.opened(child).body.date_of_birth
        problem = date_problem(placement.end, CaseDates(born=born), "placement's end")
        if problem is not None:
            raise form_refused(session, worker, child, "placement", {"end": problem.message})
        found = _returns_problems(child, placement, born)
        _speak(session, worker, child, found, fields)
        refusal = policy.why_not_placement(placement)
        if refusal is not None:
            raise form_refused(session, worker, child, "placement", {"end": refusal.message})
        store.write(session, placement, store.opened(placement).body, actor=worker, action="update",
                    changed=["end", "change_reason"], detail=warnings_detail(found))
        ended.append(placement.id)

    if not decide_once(store, worker, key, "placement_end", current_id or "none", decide):
        # Sent again: the first submission ended it, and its receipt names which (a key another worker used is
        # refused in decide_once).
        with store.session() as session:
            receipt = held(store, session, key)
            placement = session.get(Placement, receipt.record_id) if receipt is not None else None
            if placement is None:
                raise NotAllowed("The placement could not be found.", kind="placement", record_id=child_id,
                                 worker_id=worker.id, child_id=child_id)
            return placement
    with store.session() as session:
        placement = session.get(Placement, ended[0])
        assert placement is not None
        return placement


def _returns_problems(child: Child, placement: Placement, born: date | None) -> list[Problem]:
    """The SSDA903 return's rules, for a child in care (a care leaver's home is no episode of care)."""
    return placement_problems(placement, born) if child.category == Category.cic.value else []


def _placements(session: Session, child_id: str) -> list[Placement]:
    """The child's placements, latest first."""
    return list(session.exec(select(Placement).where(Placement.child_id == child_id)
                             .order_by(col(Placement.start).desc())))


def _speak(session: Session, worker: Worker, child: Child, found: list[Problem], fields: dict[str, Any]) -> None:
    """The return's rules, said on the form: refused, or to be confirmed (nothing stored until it is)."""
    said, blocked = recording_problems(found, PLACEMENT.answer(fields, "returns_confirmed") == "yes")
    if blocked:
        raise form_refused(session, worker, child, "placement", said)
    if said:
        raise FormInvalid(said)
