"""A submission key holds each form once, on SQLite and PostgreSQL: a double tap, a retry, a form begun online
and sent from the offline page, two racing requests and a laptop's push all store one record; another
worker's use of the key is refused and audited (storage/submissions.py)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel, col, select

from pwa.sync.server import status_of
from storage import oversight
from storage.care_plans import add_action, blank_action_form, care_plans_for_child
from storage.drafts import discard_draft, save_draft
from storage.importer import import_csv
from storage.life_story import add_life_story_entry, blank_life_story_form
from storage.models import (
    AuditEvent,
    CarePlanAction,
    Child,
    Draft,
    LifeStoryEntry,
    RecordStatus,
    SubmissionReceipt,
    Visit,
    WishesAndFeelings,
    Worker,
)
from storage.offline import receive_draft
from storage.store import NotAllowed, Store
from storage.submissions import KEY_FIELD
from storage.sync.devices import enrol_device, issue_enrolment_code, token_hash
from storage.sync.push import push
from storage.sync.refusal import SyncRefused
from storage.visits import blank_form, start_visit_form, submit_visit
from storage.wishes import blank_wishes_form, submit_wishes
from tests.conftest import DEMO_DAY

DATA = Path(__file__).parent / "data"

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the demo's day, mid-afternoon
_used: set[tuple[str, str]] = set()


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def fresh_child(store: Store, who: Worker) -> Child:
    """A child in care of this worker's that no other test in this module has recorded anything for."""
    with store.session() as session:
        children = list(session.exec(select(Child).where(Child.worker_id == who.id, Child.category == "cic")
                                     .order_by(col(Child.id))))
    child = next(c for c in children if (str(store.engine.url), c.id) not in _used)
    _used.add((str(store.engine.url), child.id))
    return child


def visit_form(**changes: Any) -> dict[str, Any]:
    form = blank_form(NOW - timedelta(hours=2))
    form.update(seen_alone="yes", bedroom_seen="yes", observations="Tidy room.", child_words="I like it here.",
                actions=[{"description": "Book a dental check", "owner": "Carer", "due": "2026-12-10"}])
    return form | changes


def wishes_form() -> dict[str, Any]:
    return blank_wishes_form(DEMO_DAY) | {"child_words": "I want to see my brother."}


def story_form() -> dict[str, Any]:
    return blank_life_story_form(DEMO_DAY) | {"section": "achievements", "title": "Swimming badge",
                                               "text": "Ten metres."}


def rows(store: Store, model: type[SQLModel], child_id: str) -> list[Any]:
    with store.session() as session:
        return list(session.exec(select(model).where(model.child_id == child_id)))  # type: ignore[attr-defined]


def denials(store: Store, worker_id: str) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                          AuditEvent.worker_id == worker_id)))


def test_a_visit_sent_twice_is_one_visit_one_action_and_one_entry_in_the_sign_off_queue(module_demo_store) -> None:
    ben = worker(module_demo_store, "ben")
    child = fresh_child(module_demo_store, ben)
    form = visit_form()
    first = submit_visit(module_demo_store, ben, child.id, form, now=NOW)
    again = submit_visit(module_demo_store, ben, child.id, form, now=NOW)
    assert again.id == first.id and first.submission_key == form[KEY_FIELD]
    assert [v.id for v in rows(module_demo_store, Visit, child.id)
            if v.submitted_at and v.submitted_at.replace(tzinfo=UTC) >= NOW] == [first.id]
    assert [a.from_visit for a in rows(module_demo_store, CarePlanAction, child.id) if a.from_visit] == [first.id]
    with module_demo_store.session() as session:
        manager = session.get(Worker, ben.manager_id)
    queued = [q.visit_id for q in oversight.signoff_queue(module_demo_store, manager) if q.visit_id == first.id]
    assert queued == [first.id]


def test_a_second_tap_with_the_form_emptied_answers_with_the_first_record(module_demo_store) -> None:
    ben = worker(module_demo_store, "ben")
    child = fresh_child(module_demo_store, ben)
    wishes, before = wishes_form(), len(rows(module_demo_store, WishesAndFeelings, child.id))
    record = submit_wishes(module_demo_store, ben, child.id, wishes, today=DEMO_DAY)
    emptied = blank_wishes_form(DEMO_DAY) | {KEY_FIELD: wishes[KEY_FIELD]}
    assert submit_wishes(module_demo_store, ben, child.id, emptied, today=DEMO_DAY).id == record.id
    assert len(rows(module_demo_store, WishesAndFeelings, child.id)) == before + 1
    story, before = story_form(), len(rows(module_demo_store, LifeStoryEntry, child.id))
    entry = add_life_story_entry(module_demo_store, ben, child.id, story, today=DEMO_DAY)
    again = add_life_story_entry(module_demo_store, ben, child.id, {KEY_FIELD: story[KEY_FIELD]}, today=DEMO_DAY)
    assert again.id == entry.id and len(rows(module_demo_store, LifeStoryEntry, child.id)) == before + 1


def test_a_care_plan_action_sent_twice_is_one_action(module_demo_store) -> None:
    ben = worker(module_demo_store, "ben")
    child = fresh_child(module_demo_store, ben)
    _, plans = care_plans_for_child(module_demo_store, ben, child.id, today=DEMO_DAY)
    before = len(rows(module_demo_store, CarePlanAction, child.id))
    form = blank_action_form() | {"plan_id": plans[0].id, "description": "Swimming lessons", "owner": "Carer"}
    first = add_action(module_demo_store, ben, child.id, form)
    assert add_action(module_demo_store, ben, child.id, dict(form)).id == first.id
    assert len(rows(module_demo_store, CarePlanAction, child.id)) == before + 1


def test_a_form_begun_online_and_sent_from_the_offline_page_is_held_once(module_demo_store) -> None:
    ben = worker(module_demo_store, "ben")
    child = fresh_child(module_demo_store, ben)
    form = visit_form()
    online = submit_visit(module_demo_store, ben, child.id, form, now=NOW)
    offline = receive_draft(module_demo_store, ben, "visit", child.id, form, form[KEY_FIELD])
    assert offline.record_id == online.id
    assert [v.id for v in rows(module_demo_store, Visit, child.id) if v.submitted_at and v.submitted_at.replace(
        tzinfo=UTC) >= NOW] == [online.id]
    wishes, before = wishes_form(), len(rows(module_demo_store, WishesAndFeelings, child.id))
    sent = receive_draft(module_demo_store, ben, "wishes_and_feelings", child.id, wishes, wishes[KEY_FIELD])
    assert submit_wishes(module_demo_store, ben, child.id, wishes, today=DEMO_DAY).id == sent.record_id
    assert len(rows(module_demo_store, WishesAndFeelings, child.id)) == before + 1


def test_another_worker_sending_the_same_key_is_refused_and_audited(module_demo_store) -> None:
    ben, chloe = worker(module_demo_store, "ben"), worker(module_demo_store, "chloe")
    child = fresh_child(module_demo_store, ben)
    form = wishes_form()
    record = submit_wishes(module_demo_store, ben, child.id, form, today=DEMO_DAY)
    theirs = fresh_child(module_demo_store, chloe)
    before = len(denials(module_demo_store, chloe.id))
    with pytest.raises(NotAllowed, match="another worker"):
        submit_wishes(module_demo_store, chloe, theirs.id, form, today=DEMO_DAY)
    with pytest.raises(NotAllowed, match="another worker"):
        receive_draft(module_demo_store, chloe, "wishes_and_feelings", theirs.id, form, form[KEY_FIELD])
    events = denials(module_demo_store, chloe.id)[before:]
    assert [(e.kind, e.record_id) for e in events] == [("wishes_and_feelings", record.id)] * 2
    assert [r for r in rows(module_demo_store, WishesAndFeelings, theirs.id) if r.submission_key] == []
    # The same worker using one key for another kind of form is refused too: it is not that form.
    with pytest.raises(NotAllowed, match="another kind of form"):
        add_life_story_entry(module_demo_store, ben, child.id, story_form() | {KEY_FIELD: form[KEY_FIELD]})


def test_two_racing_submissions_with_one_key_store_one_record(module_demo_store) -> None:
    ben = worker(module_demo_store, "ben")
    child = fresh_child(module_demo_store, ben)
    form = visit_form()
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def send() -> None:
        start.wait()
        try:
            results.append(submit_visit(module_demo_store, ben, child.id, dict(form), now=NOW).id)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(results)) == 1 and len(results) == 4
    assert [v.id for v in rows(module_demo_store, Visit, child.id)
            if v.submitted_at and v.submitted_at.replace(tzinfo=UTC) >= NOW] == results[:1]
    assert len([a for a in rows(module_demo_store, CarePlanAction, child.id) if a.from_visit]) == 1


def test_a_sign_off_and_an_allocation_sent_twice_are_carried_out_once(demo_store: Store) -> None:
    with demo_store.session() as session:
        w = {x.username: x for x in session.exec(select(Worker))}
        teams = demo_store.managed_team_ids(session, w["amara"])
        visit = session.exec(select(Visit).join(Child).where(
            Visit.status == RecordStatus.submitted.value, col(Child.team_id).in_(teams))).first()
        child = session.exec(select(Child).where(Child.worker_id == w["ben"].id)).first()
    key = str(uuid.uuid4())
    oversight.sign_off(demo_store, w["amara"], visit.id, "Agreed.", key)
    oversight.sign_off(demo_store, w["amara"], visit.id, "Agreed.", key)  # no "already signed off"
    with pytest.raises(oversight.OversightError, match="already been signed off"):
        oversight.sign_off(demo_store, w["amara"], visit.id, "Agreed.", str(uuid.uuid4()))  # another form
    move = str(uuid.uuid4())
    oversight.allocate(demo_store, w["amara"], child.id, w["chloe"].id, move)
    oversight.allocate(demo_store, w["amara"], child.id, w["chloe"].id, move)
    with demo_store.session() as session:
        assert session.get(Child, child.id).worker_id == w["chloe"].id
        assert {(r.kind, r.record_id) for r in session.exec(select(SubmissionReceipt))} == {
            ("sign_off", visit.id), ("allocation", child.id)}
        done = [e.action for e in session.exec(select(AuditEvent).where(
            col(AuditEvent.record_id).in_([visit.id, child.id]), col(AuditEvent.action).in_(["sign_off", "allocate"])))]
    assert sorted(done) == ["allocate", "sign_off"]
    with pytest.raises(NotAllowed, match="another worker"):
        oversight.sign_off(demo_store, w["dev"], visit.id, "Agreed.", key)


def _visit_change(child_id: str, worker_id: str, key: str | None) -> dict[str, Any]:
    visit_id = str(uuid.uuid4())
    at = NOW - timedelta(days=1)
    fields = Visit(id=visit_id, child_id=child_id, worker_id=worker_id, visited_at=at, status="submitted",
                   created_at=at, updated_at=at, submitted_at=at, written_up_at=at,
                   submission_key=key).model_dump(mode="json", exclude={"sealed"})
    return {"change_id": str(uuid.uuid4()), "kind": "visit", "record_id": visit_id, "fields": fields,
            "body": {"observations": "From the laptop."}, "clock": f"{1_700_000_000_000:015d}-000000-laptop",
            "base_clocks": {}}


def test_a_pushed_record_with_a_key_the_server_holds_is_refused_with_the_reason(module_demo_store) -> None:
    ben = worker(module_demo_store, "ben")
    child = fresh_child(module_demo_store, ben)
    device, _, token = enrol_device(module_demo_store, issue_enrolment_code(module_demo_store, ben.id, ben.id), "Laptop")
    form = visit_form(actions=[])
    online = submit_visit(module_demo_store, ben, child.id, form, now=NOW)
    twin = _visit_change(child.id, ben.id, form[KEY_FIELD])
    with pytest.raises(SyncRefused) as refused:
        push(module_demo_store, token_hash(token), "keys-1", [twin])
    assert status_of(refused.value) == 403 and refused.value.change_ids == [twin["change_id"]]
    assert online.id in refused.value.reasons[twin["change_id"]]
    assert "same form sent twice" in refused.value.reasons[twin["change_id"]]
    events = [e for e in denials(module_demo_store, ben.id) if e.record_id == twin["record_id"]]
    assert [(e.kind, e.device_id) for e in events] == [("visit", device.id)]
    # Two records of one batch with one key: the first is applied, the second refused with the reason (set
    # aside on the device); the first sent again is a duplicate.
    key = str(uuid.uuid4())
    first, second = _visit_change(child.id, ben.id, key), _visit_change(child.id, ben.id, key)
    outcome = push(module_demo_store, token_hash(token), "keys-2", [first, second])
    assert len(outcome.applied) == 1 and list(outcome.refused) == [second["change_id"]]
    assert "same form sent twice" in outcome.refused[second["change_id"]]
    assert push(module_demo_store, token_hash(token), "keys-3", [first]).duplicates == [first["change_id"]]
    with module_demo_store.session() as session:
        assert session.get(Visit, first["record_id"]).submission_key == key
        assert session.get(Visit, twin["record_id"]) is None
    # The key sync brought answers the screen too: the same form from the screen is that visit.
    assert submit_visit(module_demo_store, ben, child.id, visit_form(**{KEY_FIELD: key}), now=NOW).id == first[
        "record_id"]


def test_a_reloaded_form_keeps_its_key(module_demo_store) -> None:
    ben = worker(module_demo_store, "chloe")
    child = fresh_child(module_demo_store, ben)
    opened = start_visit_form(module_demo_store, ben, child.id, now=NOW)
    assert uuid.UUID(opened.fields[KEY_FIELD])
    save_draft(module_demo_store, ben, child.id, opened.fields | {"observations": "Half"})
    assert start_visit_form(module_demo_store, ben, child.id, now=NOW).fields[KEY_FIELD] == opened.fields[KEY_FIELD]
    # A new form (after the draft is gone) is a new submission: a new key.
    discard_draft(module_demo_store, ben, child.id)
    assert start_visit_form(module_demo_store, ben, child.id, now=NOW).fields[KEY_FIELD] != opened.fields[KEY_FIELD]


def test_imported_visits_carry_a_key_made_from_the_councils_reference(demo_store: Store) -> None:
    import_csv(demo_store, DATA / "caseload_good.csv", today=DEMO_DAY)
    import_csv(demo_store, DATA / "caseload_good.csv", today=DEMO_DAY)
    with demo_store.session() as session:
        keys = [v.submission_key for v in session.exec(select(Visit).where(col(Visit.submission_key).is_not(None)))]
    assert len(keys) == 2 == len(set(keys))


def test_a_receipt_an_earlier_seen_left_for_an_offline_draft_still_answers(module_demo_store) -> None:
    ben = worker(module_demo_store, "chloe")  # Ben's children in care are used up
    child = fresh_child(module_demo_store, ben)
    visit = submit_visit(module_demo_store, ben, child.id, visit_form(actions=[]), now=NOW)
    key = str(uuid.uuid4())
    with module_demo_store.session() as session:  # as storage/visits.py wrote one before keys were on records
        receipt = Draft(worker_id=ben.id, child_id=child.id, kind="visit_receipt", idempotency_key=key)
        receipt.sealed = module_demo_store.seal_payload("draft", receipt.id, {"visit_id": visit.id})
        session.add(receipt)
    again = receive_draft(module_demo_store, ben, "visit", child.id, visit_form(**{KEY_FIELD: key}), key)
    assert again.record_id == visit.id
    assert [v.submission_key for v in rows(module_demo_store, Visit, child.id) if v.submission_key in (key,)] == []
