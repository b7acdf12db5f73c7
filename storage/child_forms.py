"""What the direct-work forms (storage/wishes.py, storage/life_story.py, storage/care_plans.py) share.

Forms travel as plain dicts of strings, like the visit form (see storage/visits.py). Each is defined once
in storage/forms/ (wishes.py, life_story.py, care_plan_action.py: the fields, their codes and their checks);
the care plan's own form is: kind (a PLAN_KINDS code), start, summary.

Every function takes the signed-in worker and goes through `Store.child_for`, so a child the worker may
not see is refused (and the refusal audited) the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from storage import audit
from storage.models import Child, Worker
from storage.record_dates import check_dates
from storage.store import Store


class FormInvalid(ValueError):
    """The form cannot be saved as it is: `problems` maps each field to what to do about it."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(" ".join(problems.values()))
        self.problems = problems


def form_refused(session: Session, worker: Worker, child: Child, kind: str, problems: dict[str, str]) -> FormInvalid:
    """A form's refusal, audited (every problem in words), to raise with its problems by field."""
    why = " ".join(problems.values())
    audit.refuse(session, audit.Refusal(why, kind=kind, record_id=child.id, worker_id=worker.id, child_id=child.id,
                                        detail=why))
    return FormInvalid(problems)


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def past_date(fields: dict[str, Any], name: str, today: date, problems: dict[str, str], *, blank: str | None,
              malformed: str, future: str) -> date | None:
    """A date that has happened, today or before, or None with the problem said in the form's own words.

    `blank` is the problem with an empty field (None: it may be left blank); `malformed` may name `{example}`,
    a date written the way the form wants it.
    """
    text = _text(fields, name)
    if not text:
        if blank is not None:
            problems[name] = blank
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        problems[name] = malformed.format(example=f"{today:%Y-%m-%d}")
        return None
    if day > today:
        problems[name] = future
        return None
    return day


def _past_date(fields: dict[str, Any], name: str, today: date, what: str, problems: dict[str, str]) -> date | None:
    """The date of a record the worker must give, "the {what}" in the messages."""
    return past_date(fields, name, today, problems, blank=f"Enter the date of the {what}.",
                     malformed=f"Enter the date of the {what} as a date, like {{example}}.",
                     future=f"The date is in the future. Enter the day the {what} happened.")


def _check_child_dates(store: Store, session: Session, worker: Worker, child: Child, kind: str, name: str,
                       day: date | None, what: str, fields: dict[str, Any], device_id: str | None = None, *,
                       confirmable: bool = True) -> None:
    """Raises FormInvalid for a date before the child's birth, or one before the case opened that the worker
    has not confirmed (storage/record_dates.py)."""
    problems = check_dates(store, session, worker, child, kind, {name: (day, what, confirmable)}, fields,
                           device_id=device_id)
    if problems:
        raise FormInvalid(problems)


def first_name(display_name: str) -> str:
    return display_name.split()[0] if display_name.strip() else ""


def _workers(session: Session, ids: set[str]) -> dict[str, Worker]:
    if not ids:
        return {}
    return {w.id: w for w in session.exec(select(Worker).where(col(Worker.id).in_(ids)))}


@dataclass
class ChildHeading:
    """Just enough of the child for a screen's heading: the name the child goes by."""

    child_id: str
    name: str
    first_name: str
    born: date | None = None  # date pickers offer nothing before it


def _heading(store: Store, child: Child) -> ChildHeading:
    body = store.opened(child).body
    return ChildHeading(child.id, body.name, body.preferred_name or body.first_name, body.date_of_birth)


def _read(session: Session, worker: Worker, child: Child, kind: str) -> None:
    audit.append(session, "read", kind, child.id, worker_id=worker.id, child_id=child.id)


@contextmanager
def child_session(store: Store, worker: Worker, child_id: str, *, device_id: str | None = None
                  ) -> Iterator[tuple[Session, Child]]:
    """A transaction on a child the worker may see; NotAllowed (audited, "not found") otherwise."""
    with store.session() as session:
        yield session, store.child_for(session, worker, child_id, device_id=device_id)
