"""Visits in storage, on SQLite and PostgreSQL: drafts, submitting, checks, corrections, exactly-once offline
submission, and the child's page data (timeline, clocks, refusals audited)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from storage import audit as audit_chain
from storage.child_view import child_view
from storage.drafts import discard_draft, load_draft, save_draft
from storage.models import AuditEvent, CarePlanAction, Child, Draft, Outbox, Visit, Worker
from storage.store import NotAllowed, Store
from storage.visits import (
    VisitInvalid,
    blank_form,
    start_visit_form,
    submit_visit,
    submit_visit_from_draft,
    written_up_late,
)
from tests.conftest import DEMO_DAY

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the demo's day (a Monday), mid-afternoon
assert NOW.date() == DEMO_DAY


_used: set[tuple[str, str]] = set()


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def first_child(store: Store, who: Worker, category: str = "cic", *, fresh: bool = True) -> Child:
    """A child of this worker's; `fresh`: one no other test in this module has recorded anything for."""
    with store.session() as session:
        children = list(session.exec(select(Child).where(Child.worker_id == who.id, Child.category == category)
                                     .order_by(Child.id)))
    if not fresh:
        return children[-1]
    child = next(c for c in children[:-1] if (str(store.engine.url), c.id) not in _used)
    _used.add((str(store.engine.url), child.id))
    return child


def good_form(**changes: object) -> dict:
    form = blank_form(NOW - timedelta(hours=2))
    form.update(seen_alone="yes", bedroom_seen="yes", observations="Tidy room; child showed me a drawing.",
                analysis="Settled.", child_words="I like it here.")
    form.update(changes)
    return form


def test_a_draft_is_sealed_restored_and_discarded(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = first_child(module_demo_store, ben)
    save_draft(module_demo_store, ben, child.id, good_form(observations="Half a sentence"))
    save_draft(module_demo_store, ben, child.id, good_form(observations="Half a sentence, then more"))
    with module_demo_store.session() as session:
        rows = list(session.exec(select(Draft).where(Draft.child_id == child.id)))
    assert len(rows) == 1  # one draft per worker and child, overwritten as they type
    assert b"Half a sentence" not in rows[0].sealed
    assert load_draft(module_demo_store, ben, child.id).fields["observations"] == "Half a sentence, then more"
    assert load_draft(module_demo_store, worker(module_demo_store, "chloe"), child.id) is None
    discard_draft(module_demo_store, ben, child.id)
    assert load_draft(module_demo_store, ben, child.id) is None


def test_submitting_seals_counts_and_turns_actions_into_care_plan_actions(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = first_child(module_demo_store, ben)
    save_draft(module_demo_store, ben, child.id, good_form())
    form = good_form(actions=[{"description": "Book a dental check", "owner": "Carer", "due": "2026-12-10"},
                              {"description": "", "owner": "", "due": ""}],
                     safety_scale=[{"who": "Child", "score": "8"}, {"who": "", "score": ""}])
    visit = submit_visit(module_demo_store, ben, child.id, form, now=NOW)
    assert visit.status == "submitted" and visit.written_up_at == NOW and visit.seen_alone is True
    assert load_draft(module_demo_store, ben, child.id) is None  # the draft went with the submission
    with module_demo_store.session() as session:
        stored = session.get(Visit, visit.id)
        actions = list(session.exec(select(CarePlanAction).where(CarePlanAction.from_visit == visit.id)))
        outbox = list(session.exec(select(Outbox).where(Outbox.record_id == visit.id)))
        audit = list(session.exec(select(AuditEvent).where(AuditEvent.record_id == visit.id)))
    assert b"I like it here" not in stored.sealed
    body = module_demo_store.opened(stored).body
    assert body.child_words == "I like it here." and body.safety_scale[0].score == 8
    assert [module_demo_store.opened(a).body.description for a in actions] == ["Book a dental check"]
    assert actions[0].due.isoformat() == "2026-12-10" and actions[0].status == "open"
    assert len(outbox) == 1 and [a.action for a in audit] == ["submit"]
    assert b"I like it here" not in outbox[0].sealed  # the change waiting to sync is sealed too
    change = module_demo_store.open_payload("outbox", outbox[0].change_id, outbox[0].sealed)
    assert change["record_id"] == visit.id and change["body"]["child_words"] == "I like it here."
    with module_demo_store.session() as session:
        assert audit_chain.verify(session).ok
    view = child_view(module_demo_store, ben, child.id, on=NOW.date())
    assert view.timeline[0].record_id == visit.id  # newest first
    assert any(i.record_id == actions[0].id for i in view.timeline)


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"seen_alone": "no", "not_alone_reason": ""}, "not_alone_reason", "reg 29"),
    ({"visit_date": "2026-11-30"}, "visit_date", "in the future"),
    ({"observations": "  "}, "observations", "observations"),
    ({"seen_alone": ""}, "seen_alone", "alone"),
    ({"bedroom_seen": ""}, "bedroom_seen", "bedroom"),
    ({"child_words": ""}, "child_words", "own words"),
    ({"safety_scale": [{"who": "Mum", "score": 11}]}, "safety_scale", "0 to 10"),
    ({"actions": [{"description": "", "owner": "Carer", "due": ""}]}, "actions", "Describe"),
])
def test_a_form_that_needs_fixing_is_refused_and_nothing_is_stored(
        module_demo_store: Store, changes: dict, field: str, words: str) -> None:
    ben = worker(module_demo_store, "ben")
    child = first_child(module_demo_store, ben, fresh=False)
    with module_demo_store.session() as session:
        before = len(list(session.exec(select(Visit.id))))
    with pytest.raises(VisitInvalid) as refused:
        submit_visit(module_demo_store, ben, child.id, good_form(**changes), now=NOW)
    assert words in refused.value.problems[field]
    with module_demo_store.session() as session:
        assert len(list(session.exec(select(Visit.id)))) == before


def test_a_child_not_seen_needs_no_seen_alone_answer(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "chloe")
    child = first_child(module_demo_store, ben)
    visit = submit_visit(module_demo_store, ben, child.id, good_form(seen="no", seen_alone="", child_words=""), now=NOW)
    assert visit.seen is False and visit.seen_alone is None and visit.not_alone_reason is None


def test_not_alone_keeps_the_reg_29_reason(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = first_child(module_demo_store, ben)
    visit = submit_visit(module_demo_store, ben, child.id, good_form(seen_alone="no", not_alone_reason="refused"), now=NOW)
    assert visit.seen_alone is False and visit.not_alone_reason == "refused"


def test_a_late_write_up_shows_as_late(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = first_child(module_demo_store, ben)
    # Visited on Monday 16 Nov, written up Monday 23 Nov: five working days later.
    late = submit_visit(module_demo_store, ben, child.id, good_form(visit_date="2026-11-16"), now=NOW)
    prompt = submit_visit(module_demo_store, ben, child.id, good_form(visit_date="2026-11-20"), now=NOW)
    assert written_up_late(late) and not written_up_late(prompt)
    view = child_view(module_demo_store, ben, child.id, on=NOW.date())
    flagged = {i.record_id: i.late for i in view.timeline if i.kind == "visit"}
    assert flagged[late.id] is True and flagged[prompt.id] is False


def test_a_correction_supersedes_and_the_original_is_kept(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "chloe")
    child = first_child(module_demo_store, ben)
    original = submit_visit(module_demo_store, ben, child.id, good_form(), now=NOW)
    start = start_visit_form(module_demo_store, ben, child.id, supersedes=original.id, now=NOW)
    assert start.fields["supersedes"] == original.id and start.fields["observations"].startswith("Tidy room")
    start.fields["observations"] = "Tidy room; corrected wording."
    correction = submit_visit(module_demo_store, ben, child.id, start.fields, now=NOW)
    assert correction.supersedes == original.id
    with module_demo_store.session() as session:
        kept = session.get(Visit, original.id)
    assert module_demo_store.opened(kept).body.observations.startswith("Tidy room; child")
    with pytest.raises(VisitInvalid) as twice:
        submit_visit(module_demo_store, ben, child.id, good_form(supersedes=original.id), now=NOW)
    assert "already been corrected" in twice.value.problems["supersedes"]
    view = child_view(module_demo_store, ben, child.id, on=NOW.date())
    old = next(i for i in view.timeline if i.record_id == original.id)
    assert old.superseded_by == correction.id and not old.correctable


def test_a_returned_visit_can_be_corrected(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "chloe")
    child = first_child(module_demo_store, ben)
    visit = submit_visit(module_demo_store, ben, child.id, good_form(), now=NOW)
    with module_demo_store.session() as session:
        row = session.get(Visit, visit.id)
        row.status = "returned"  # as the manager's sign-off screen does
        session.add(row)
    correction = submit_visit(module_demo_store, ben, child.id, good_form(supersedes=visit.id), now=NOW)
    assert correction.supersedes == visit.id and correction.status == "submitted"


def test_an_offline_draft_is_stored_exactly_once_per_key(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = first_child(module_demo_store, ben)
    first = submit_visit_from_draft(module_demo_store, ben, child.id, good_form(), "key-1", now=NOW)
    again = submit_visit_from_draft(module_demo_store, ben, child.id, good_form(), "key-1", now=NOW)
    assert again.id == first.id
    results: list[str] = []
    errors: list[BaseException] = []

    def race() -> None:
        try:
            results.append(submit_visit_from_draft(module_demo_store, ben, child.id, good_form(), "key-2", now=NOW).id)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    with module_demo_store.session() as session:
        visits = list(session.exec(select(Visit.id).where(Visit.child_id == child.id, Visit.created_at == NOW)))
    assert len(visits) == 2  # one for key-1, one for key-2
    with pytest.raises(NotAllowed):
        submit_visit_from_draft(module_demo_store, worker(module_demo_store, "chloe"), child.id, good_form(), "key-1", now=NOW)


def test_another_workers_child_reads_as_not_found_and_is_audited(module_demo_store: Store) -> None:
    erin = worker(module_demo_store, "erin")
    child = first_child(module_demo_store, worker(module_demo_store, "ben"), fresh=False)
    for attempt in (lambda: child_view(module_demo_store, erin, child.id),
                    lambda: save_draft(module_demo_store, erin, child.id, good_form()),
                    lambda: submit_visit(module_demo_store, erin, child.id, good_form(), now=NOW)):
        with pytest.raises(NotAllowed):
            attempt()
    with module_demo_store.session() as session:
        denied = list(session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                            AuditEvent.worker_id == erin.id)))
    assert len(denied) == 3


def test_the_child_view_has_every_clock_with_its_rule_and_legal_status_in_words(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = first_child(module_demo_store, ben, fresh=False)
    view = child_view(module_demo_store, ben, child.id, on=NOW.date())
    assert {c.clock for c in view.clocks} >= {"cic_visit", "cic_review"}
    assert all(c.rule and c.source for c in view.clocks)
    assert view.legal_status in ("C1", "C2", "V2", "E1") and view.legal_status_words
    assert view.placement is not None and view.placement.type_words
    days = [i.on for i in view.timeline]
    assert days == sorted(days, reverse=True)
    assert {i.kind for i in view.timeline} >= {"visit", "wishes_and_feelings", "life_story", "review", "care_plan"}
