"""Wishes and feelings: the child's own words, and the worker's reflection on them.

The form is defined once, in storage/forms/wishes.py: the checks, the screen and the offline page come
from it. A form being typed is kept as a sealed draft (storage/drafts.save_draft, kind WISHES_DRAFT_KIND), deleted
when the record it becomes is stored. A record is immutable once saved: a correction is a new record whose
`supersedes` names the old one. The form and the checks every direct-work form shares: storage/child_forms.py.
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
    _read,
    _text,
    _workers,
    first_name,
)
from storage.drafts import discard_in
from storage.forms.wishes import WISHES
from storage.models import WISHES_METHODS, Child, RecordStatus, WishesAndFeelings, WishesBody, Worker, utcnow
from storage.record_dates import CONFIRM_FIELD
from storage.store import Store
from storage.submissions import already_made, key_of, make_once
from storage.timescales.calendar import today_in_england

# The kinds of their drafts (storage/drafts.save_draft): one draft per worker, child and kind.
WISHES_DRAFT_KIND = "wishes_and_feelings"
# The words kept in the record's sealed body (storage/forms/wishes.py says which).
WISHES_TEXT_FIELDS = tuple(f.name for f in WISHES.fields if f.kept == "body")


def blank_wishes_form(today: date | None = None) -> dict[str, str]:
    """A new piece of direct work: dated today, a conversation; the words still to be written."""
    return WISHES.blank({"on": (today or today_in_england()).isoformat()})


@dataclass
class CheckedWishes:
    on: date
    method: str
    body: WishesBody
    supersedes: str | None
    date_confirmed: str = ""  # the date the worker confirmed though it is before the case opened


def check_wishes(fields: dict[str, Any], today: date | None = None) -> CheckedWishes:
    """Checks a wishes-and-feelings form; raises FormInvalid saying what to fix."""
    today = today or today_in_england()
    problems = WISHES.problems(fields, today=today)
    if problems:
        raise FormInvalid(problems)
    body = WishesBody(**WISHES.body_values(fields, WishesBody))
    return CheckedWishes(on=date.fromisoformat(_text(fields, "on")), method=_text(fields, "method"), body=body, supersedes=_text(fields, "supersedes") or None,
                         date_confirmed=_text(fields, CONFIRM_FIELD))


def _check_wishes_correction(session: Session, worker: Worker, child_id: str, old_id: str) -> WishesAndFeelings:
    old = session.get(WishesAndFeelings, old_id)
    refusal = policy.why_not_correct(policy.actor(worker, ()), child_id, old)
    if refusal is not None:
        raise FormInvalid({"supersedes": "The record you are correcting could not be found."
                           if refusal.rule == "bad_correction" else refusal.message})
    assert old is not None
    newer = session.exec(select(WishesAndFeelings.id).where(WishesAndFeelings.supersedes == old_id)).first()
    if newer is not None:
        raise FormInvalid({"supersedes": "This record has already been corrected: correct the newer one."})
    return old


def submit_wishes(store: Store, worker: Worker, child_id: str, fields: dict[str, Any], *,
                  today: date | None = None, device_id: str | None = None) -> WishesAndFeelings:
    """Checks, seals and stores the work as submitted (immutable from now on), and discards the draft.

    A form carrying its submission key is stored once per key (storage/submissions.py): sent again, even
    emptied, it returns the record stored the first time. Raises FormInvalid (nothing stored) when the form
    needs fixing, NotAllowed for a child the worker may not see or a key another worker used.
    """
    key = key_of(fields)
    if key:
        return submit_wishes_from_draft(store, worker, child_id, fields, key, today=today, device_id=device_id)
    checked = check_wishes(fields, today)
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        return _store_wishes(store, session, worker, child, checked)


def _store_wishes(store: Store, session: Session, worker: Worker, child: Child, checked: CheckedWishes,
                  device_id: str | None = None, key: str | None = None) -> WishesAndFeelings:
    _check_child_dates(store, session, worker, child, "wishes_and_feelings", "on", checked.on, "direct work",
                       {CONFIRM_FIELD: checked.date_confirmed}, device_id)
    if checked.supersedes:
        _check_wishes_correction(session, worker, child.id, checked.supersedes)
    now = utcnow()
    record = WishesAndFeelings(child_id=child.id, worker_id=worker.id, on=checked.on, method=checked.method,
                               status=RecordStatus.submitted.value, created_at=now, submitted_at=now,
                               supersedes=checked.supersedes, submission_key=key)
    store.write(session, record, checked.body, actor=worker, device_id=device_id, action="submit")
    discard_in(session, worker, child.id, WISHES_DRAFT_KIND)
    return record


def submit_wishes_from_draft(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                             idempotency_key: str, *, today: date | None = None,
                             device_id: str | None = None) -> WishesAndFeelings:
    """Stores wishes and feelings exactly once per key: the screen's submission key or an offline draft's
    idempotency key, one key space (storage/submissions.py).

    The same checks as the screen (FormInvalid, nothing stored); a retry with a used key returns the
    record stored the first time, before the form is checked again.
    """
    existing = already_made(store, worker, idempotency_key.strip(), "wishes_and_feelings")
    if existing is not None:
        return existing
    checked = check_wishes(fields, today)
    return make_once(store, worker, child_id, idempotency_key, "wishes_and_feelings",
                     lambda session, child: _store_wishes(store, session, worker, child, checked, device_id,
                                                          idempotency_key.strip()),
                     device_id=device_id)


@dataclass
class WishesView:
    id: str
    on: date
    method: str
    method_words: str
    child_words: str
    reflection: str
    shared_with: str
    worker_first_name: str
    supersedes: str | None
    superseded_by: str | None
    correctable: bool


def wishes_for_child(store: Store, worker: Worker, child_id: str) -> tuple[ChildHeading, list[WishesView]]:
    """The child's wishes-and-feelings work, newest first. Reading it is audited."""
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        _read(session, worker, child, "wishes_and_feelings")
        rows = list(session.exec(select(WishesAndFeelings).where(
            WishesAndFeelings.child_id == child.id, WishesAndFeelings.status != RecordStatus.draft.value)
            .order_by(col(WishesAndFeelings.on).desc(), col(WishesAndFeelings.created_at).desc())))
        names = _workers(session, {r.worker_id for r in rows})
        superseded_by = {r.supersedes: r.id for r in rows if r.supersedes}
        views = []
        for row in rows:
            body: WishesBody = store.opened(row).body
            author = names.get(row.worker_id)
            views.append(WishesView(
                id=row.id, on=row.on, method=row.method, method_words=WISHES_METHODS.get(row.method, row.method),
                child_words=body.child_words, reflection=body.reflection, shared_with=body.shared_with,
                worker_first_name=first_name(author.display_name) if author else "",
                supersedes=row.supersedes, superseded_by=superseded_by.get(row.id),
                correctable=row.worker_id == worker.id and row.id not in superseded_by))
        return _heading(store, child), views


def wishes_correction_form(store: Store, worker: Worker, child_id: str, record_id: str) -> dict[str, str]:
    """A new form prefilled from a saved record, to correct it (the new record supersedes the old)."""
    with store.session() as session:
        store.child_for(session, worker, child_id)
        old = _check_wishes_correction(session, worker, child_id, record_id)
        body: WishesBody = store.opened(old).body
    return {"on": old.on.isoformat(), "method": old.method, **WISHES.form_values(body), "supersedes": old.id}
