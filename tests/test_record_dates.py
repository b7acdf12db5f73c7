"""Dates that cannot be right, on SQLite and PostgreSQL: a record dated before the child's birth is refused on
every path into storage (the screens' submit, the offline page's drafts, a sync push, the import), saying the
child's date of birth, audited and storing nothing; one before the case opened is taken once confirmed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from pwa.sync.server import status_of
from storage.care_plans import add_action, add_plan
from storage.child_forms import FormInvalid
from storage.importer import ImportRejected, import_text
from storage.life_story import add_life_story_entry
from storage.models import (
    AuditEvent,
    CarePlanAction,
    Child,
    ChildBody,
    LifeStoryEntry,
    Team,
    Visit,
    WishesAndFeelings,
    Worker,
)
from storage.offline import receive_draft
from storage.record_dates import CONFIRM_FIELD
from storage.store import Store
from storage.sync.devices import enrol_device, issue_enrolment_code, token_hash
from storage.sync.push import push
from storage.sync.refusal import SyncRefused
from storage.visits import VisitInvalid, blank_form, submit_visit
from storage.wishes import submit_wishes
from tests.conftest import DEMO_DAY

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
BORN = date(2011, 5, 14)
OPENED = date(2024, 3, 4)  # the referral
BIRTH_WORDS = "before the child's date of birth (14 May 2011)"


@pytest.fixture
def small(store: Store) -> Store:
    """Ben and his child Alfie, born 14 May 2011, referred on 4 Mar 2024 and looked after since 1 Jun 2024."""
    with store.session() as session:
        team = Team(name="CiC")
        session.add(team)
        session.flush()
        ben = Worker(username="ben", display_name="Ben Castle", team_id=team.id)
        session.add(ben)
        session.flush()
        child = Child(category="cic", team_id=team.id, worker_id=ben.id, referral=OPENED,
                      looked_after_since=date(2024, 6, 1), birth_year=BORN.year)
        store.write(session, child, ChildBody(first_name="Alfie", last_name="Applewick", date_of_birth=BORN),
                    action="create")
    return store


def ben_and_alfie(store: Store) -> tuple[Worker, str]:
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        return ben, session.exec(select(Child.id)).one()


def visit_form(day: str, **changes: object) -> dict:
    form = blank_form(NOW)
    form.update(visit_date=day, visit_time="10:00", seen_alone="yes", bedroom_seen="yes",
                observations="Tidy room.", child_words="I like it here.")
    form.update(changes)
    return form


def count(store: Store, model: type) -> int:
    with store.session() as session:
        return len(list(session.exec(select(model))))


def denials(store: Store) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == "denied")))


def test_a_visit_before_birth_is_refused_naming_the_date_of_birth_and_audited(small: Store) -> None:
    ben, child_id = ben_and_alfie(small)
    with pytest.raises(VisitInvalid) as refused:
        submit_visit(small, ben, child_id, visit_form("1995-01-01"), now=NOW)
    assert BIRTH_WORDS in refused.value.problems["visit_date"]
    assert "1 Jan 1995" in refused.value.problems["visit_date"]
    assert count(small, Visit) == 0
    [event] = denials(small)
    assert (event.kind, event.child_id, event.worker_id) == ("visit", child_id, ben.id)
    assert event.detail == "visit_date:before_birth"  # the field, never the date or the child's birth


def test_every_problem_is_said_at_once_and_confirming_does_not_pass_a_date_before_birth(small: Store) -> None:
    ben, child_id = ben_and_alfie(small)
    with pytest.raises(VisitInvalid) as refused:
        submit_visit(small, ben, child_id, visit_form("1995-01-01", observations="", **{CONFIRM_FIELD: "1995-01-01"}),
                     now=NOW)
    assert set(refused.value.problems) == {"visit_date", "observations"}
    assert count(small, Visit) == 0


def test_a_visit_before_the_case_opened_is_taken_once_that_date_is_confirmed(small: Store) -> None:
    ben, child_id = ben_and_alfie(small)
    with pytest.raises(VisitInvalid) as asked:
        submit_visit(small, ben, child_id, visit_form("2023-02-01"), now=NOW)
    assert set(asked.value.problems) == {CONFIRM_FIELD}
    assert "before the case opened: the referral on 4 Mar 2024" in asked.value.problems[CONFIRM_FIELD]
    # A confirmation of another date (the worker changed it after confirming) is asked about again.
    with pytest.raises(VisitInvalid):
        submit_visit(small, ben, child_id, visit_form("2023-02-01", **{CONFIRM_FIELD: "2023-02-02"}), now=NOW)
    assert count(small, Visit) == 0 and denials(small) == []  # asking is not refusing
    visit = submit_visit(small, ben, child_id, visit_form("2023-02-01", **{CONFIRM_FIELD: "2023-02-01"}), now=NOW)
    assert visit.visited_at.date() == date(2023, 2, 1)
    # On the day the case opened, and after it, nothing is asked.
    submit_visit(small, ben, child_id, visit_form(OPENED.isoformat()), now=NOW)
    assert count(small, Visit) == 2


def test_an_action_arising_due_before_birth_is_refused(small: Store) -> None:
    ben, child_id = ben_and_alfie(small)
    form = visit_form("2026-11-20", actions=[{"description": "Dentist", "owner": "Carer", "due": "2010-01-01"}])
    with pytest.raises(VisitInvalid) as refused:
        submit_visit(small, ben, child_id, form, now=NOW)
    assert BIRTH_WORDS in refused.value.problems["actions"]
    assert count(small, Visit) == 0 and count(small, CarePlanAction) == 0


def test_wishes_life_story_and_care_plan_actions_are_checked_the_same_way(small: Store) -> None:
    ben, child_id = ben_and_alfie(small)
    wishes = {"on": "2009-06-01", "method": "conversation", "child_words": "Hello", "reflection": "",
              "shared_with": "", "supersedes": ""}
    with pytest.raises(FormInvalid) as refused:
        submit_wishes(small, ben, child_id, wishes, today=DEMO_DAY)
    assert BIRTH_WORDS in refused.value.problems["on"]
    with pytest.raises(FormInvalid) as asked:
        submit_wishes(small, ben, child_id, {**wishes, "on": "2020-06-01"}, today=DEMO_DAY)
    assert set(asked.value.problems) == {CONFIRM_FIELD}
    submit_wishes(small, ben, child_id, {**wishes, "on": "2020-06-01", CONFIRM_FIELD: "2020-06-01"}, today=DEMO_DAY)
    assert count(small, WishesAndFeelings) == 1

    entry = {"on": "2010-01-01", "section": "family", "title": "Before me", "text": "Mum and Dad"}
    with pytest.raises(FormInvalid) as refused:
        add_life_story_entry(small, ben, child_id, entry, today=DEMO_DAY)
    assert BIRTH_WORDS in refused.value.problems["on"]
    # A life story is mostly before the case opened: the day of birth itself needs no confirming.
    add_life_story_entry(small, ben, child_id, {**entry, "on": BORN.isoformat(), "section": "born"}, today=DEMO_DAY)
    assert count(small, LifeStoryEntry) == 1

    plan = add_plan(small, ben, child_id, {"kind": "care_plan", "start": "2024-06-01", "summary": ""}, today=DEMO_DAY)
    action = {"plan_id": plan.id, "description": "Dentist", "owner": "Carer", "due": "2011-05-13"}
    with pytest.raises(FormInvalid) as refused:
        add_action(small, ben, child_id, action)
    assert BIRTH_WORDS in refused.value.problems["due"]
    assert count(small, CarePlanAction) == 0
    assert [e.kind for e in denials(small)] == ["wishes_and_feelings", "life_story", "care_plan_action"]


def test_the_offline_pages_draft_is_checked_as_the_screen_is(small: Store) -> None:
    ben, child_id = ben_and_alfie(small)
    key = str(uuid.uuid4())
    with pytest.raises(VisitInvalid) as refused:
        receive_draft(small, ben, "visit", child_id, visit_form("1995-01-01"), key)
    assert BIRTH_WORDS in refused.value.problems["visit_date"]
    with pytest.raises(VisitInvalid) as asked:
        receive_draft(small, ben, "visit", child_id, visit_form("2023-02-01"), key)
    assert CONFIRM_FIELD in asked.value.problems
    assert count(small, Visit) == 0
    received = receive_draft(small, ben, "visit", child_id, visit_form("2023-02-01", **{CONFIRM_FIELD: "2023-02-01"}),
                             key)
    with small.session() as session:
        assert session.get(Visit, received.record_id) is not None


def _visit_change(child_id: str, worker_id: str, day: date) -> dict:
    visit_id = str(uuid.uuid4())
    at = datetime(day.year, day.month, day.day, 11, 0, tzinfo=UTC)
    fields = Visit(id=visit_id, child_id=child_id, worker_id=worker_id, visited_at=at, status="submitted",
                   created_at=at, updated_at=at, submitted_at=at, written_up_at=at).model_dump(mode="json",
                                                                                               exclude={"sealed"})
    return {"change_id": str(uuid.uuid4()), "kind": "visit", "record_id": visit_id, "fields": fields,
            "body": {"observations": "From the laptop."}, "clock": f"{1_700_000_000_000:015d}-000000-laptop", "base_clocks": {}}


def test_a_sync_push_of_a_visit_before_birth_is_refused_with_the_reason_and_the_rest_applied(small: Store) -> None:
    ben, child_id = ben_and_alfie(small)
    device, _, token = enrol_device(small, issue_enrolment_code(small, ben.id, ben.id), "Laptop")
    good, bad = _visit_change(child_id, ben.id, date(2026, 11, 20)), _visit_change(child_id, ben.id, date(1995, 1, 1))
    with pytest.raises(SyncRefused) as refused:  # a batch of nothing but the bad change is refused whole
        push(small, token_hash(token), "batch-0", [bad])
    assert status_of(refused.value) == 403 and refused.value.change_ids == [bad["change_id"]]
    assert BIRTH_WORDS in refused.value.reasons[bad["change_id"]] and bad["record_id"] in refused.value.message
    assert count(small, Visit) == 0
    # Beside a good change, the bad one is refused with its reason (set aside on the device) and the good applied.
    outcome = push(small, token_hash(token), "batch-1", [good, bad])
    assert len(outcome.applied) == 1 and list(outcome.refused) == [bad["change_id"]]
    assert BIRTH_WORDS in outcome.refused[bad["change_id"]]
    assert count(small, Visit) == 1
    events = denials(small)  # each refusal is audited, though nothing of it was written
    assert {(e.kind, e.record_id, e.device_id) for e in events} == {("visit", bad["record_id"], device.id)}
    # Before the case opened is no refusal here: the device's own screen asked the worker to confirm it.
    early = _visit_change(child_id, ben.id, date(2023, 2, 1))
    outcome = push(small, token_hash(token), "batch-2", [early])
    assert len(outcome.applied) == 1 and count(small, Visit) == 2


# A visit's day is its day in England (British Summer Time in May), whatever offset the device wrote it with.
@pytest.mark.parametrize(("visited_at", "taken"), [
    ("2011-05-13T23:30:00Z", True),  # 00:30 on the day of birth in England
    ("2011-05-13T22:30:00Z", False),  # 23:30 the day before
    ("2011-05-14T00:30:00+02:00", False),  # the day of birth where it was written, the day before in England
    ("2011-05-15T01:00:00+14:00", True),  # the day after where it was written, the day of birth in England
    ("2011-05-12T23:00:00-12:00", False),  # 12:00 on the 13th in England
])
def test_a_synced_visit_is_judged_by_its_day_in_england(small: Store, visited_at: str, taken: bool) -> None:
    ben, child_id = ben_and_alfie(small)
    _device, _, token = enrol_device(small, issue_enrolment_code(small, ben.id, ben.id), "Laptop")
    change = _visit_change(child_id, ben.id, date(2026, 11, 20))
    change["fields"]["visited_at"] = visited_at
    good = _visit_change(child_id, ben.id, date(2026, 11, 20))

    outcome = push(small, token_hash(token), "batch", [good, change])

    assert (change["change_id"] in outcome.applied) is taken
    assert (BIRTH_WORDS in outcome.refused.get(change["change_id"], "")) is not taken


def test_the_import_refuses_a_last_visit_before_the_childs_birth(store: Store) -> None:
    with store.session() as session:
        team = Team(name="CiC")
        session.add(team)
        session.flush()
        session.add(Worker(username="ben", display_name="Ben Castle", team_id=team.id))
    header = "child_ref,first_name,last_name,category,team,date_of_birth,worker,looked_after_since,placement_type," \
             "placement_start,last_visit_date,last_visit_seen\n"
    with pytest.raises(ImportRejected) as rejected:
        import_text(store, header + "C1,Alfie,Applewick,cic,CiC,2011-05-14,ben,2024-06-01,U1,2024-06-01,01/01/1995,yes\n",
                    today=DEMO_DAY)
    [error] = rejected.value.errors
    assert error.column == "last_visit_date" and BIRTH_WORDS in error.reason
    assert count(store, Child) == 0
    # A last visit before the case opened is the council's record: taken as it is.
    import_text(store, header + "C1,Alfie,Applewick,cic,CiC,2011-05-14,ben,2024-06-01,U1,2024-06-01,01/01/2024,yes\n",
                today=DEMO_DAY)
    assert count(store, Visit) == 1
