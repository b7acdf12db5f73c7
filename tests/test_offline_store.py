"""What the phone's offline part gets from the store: the picker's minimum, and drafts stored once per key."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.models import Child, ChildBody, Draft, Visit, Worker
from storage.offline import held_keys, offline_children, receive_draft
from storage.store import NotAllowed, Store
from storage.visits import VisitInvalid
from tests.conftest import DEMO_DAY


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def a_child(store: Store, who: Worker, category: str = "cin") -> Child:
    with store.session() as session:
        return session.exec(select(Child).where(Child.worker_id == who.id, Child.category == category)).first()


def visit_form(words: str) -> dict:
    return {"visit_date": "2026-11-20", "visit_time": "10:30", "location": "family_home", "seen": "yes",
            "seen_alone": "yes", "observations": "Kitchen tidy, food in.", "child_words": words}


def test_the_offline_picker_holds_initials_age_and_id_only(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    rows = offline_children(module_demo_store, ben, on=DEMO_DAY)
    with module_demo_store.session() as session:
        mine = {c.id: module_demo_store.opened(c).body for c in module_demo_store.visible_children(session, ben)}
    assert {r.id for r in rows} == set(mine)
    for row in rows:
        body: ChildBody = mine[row.id]
        assert row.initials == body.initials and "." in row.initials
        assert set(vars(row)) == {"id", "initials", "age"}  # nothing else can leak: no name, no address
        assert body.last_name not in repr(row)


def test_a_draft_sent_twice_is_stored_once(module_demo_store: Store) -> None:
    erin = worker(module_demo_store, "erin")
    child = a_child(module_demo_store, erin)
    words = "I want to stay with nan at weekends."
    first = receive_draft(module_demo_store, erin, "visit", child.id, visit_form(words), "key-one-0001")
    again = receive_draft(module_demo_store, erin, "visit", child.id, visit_form(words), "key-one-0001")
    assert first.record_id == again.record_id
    with module_demo_store.session() as session:
        visits = [module_demo_store.opened(v) for v in session.exec(select(Visit).where(Visit.child_id == child.id))]
    assert [v.child_words for v in visits].count(words) == 1


def test_a_draft_that_needs_fixing_stores_nothing_and_says_what(module_demo_store: Store) -> None:
    erin = worker(module_demo_store, "erin")
    child = a_child(module_demo_store, erin)
    form = visit_form("words") | {"observations": ""}
    with pytest.raises(VisitInvalid) as refused:
        receive_draft(module_demo_store, erin, "visit", child.id, form, "key-fix-0001")
    assert "observations" in refused.value.problems
    with module_demo_store.session() as session:
        assert session.exec(select(Draft).where(Draft.idempotency_key == "key-fix-0001")).first() is None


def test_another_workers_child_is_refused(module_demo_store: Store) -> None:
    ben, erin = worker(module_demo_store, "ben"), worker(module_demo_store, "erin")
    with pytest.raises(NotAllowed):
        receive_draft(module_demo_store, ben, "visit", a_child(module_demo_store, erin).id, visit_form("x"), "key-not-0001")


def test_a_kind_seen_does_not_know_is_refused_and_nothing_kept(module_demo_store: Store) -> None:
    erin = worker(module_demo_store, "erin")
    child = a_child(module_demo_store, erin)
    fields = {"on": "2026-11-20", "method": "drawing", "child_words": "My house has a red door."}
    with pytest.raises(ValueError, match="does not know that kind"):
        receive_draft(module_demo_store, erin, "shopping_list", child.id, fields, "key-bad-0001")
    with module_demo_store.session() as session:
        assert session.exec(select(Draft).where(Draft.idempotency_key == "key-bad-0001")).first() is None


def test_the_phone_learns_which_of_its_keys_seen_holds_and_never_another_workers(module_demo_store: Store) -> None:
    """A copy whose key Seen holds is stale on the phone; a key only another worker used is not named."""
    erin, ben = worker(module_demo_store, "erin"), worker(module_demo_store, "ben")
    receive_draft(module_demo_store, erin, "visit", a_child(module_demo_store, erin).id, visit_form("a"), "key-held-0001")
    receive_draft(module_demo_store, ben, "visit", a_child(module_demo_store, ben, "cic").id,
                  visit_form("b") | {"bedroom_seen": "yes"}, "key-held-0002")
    asked = ["key-held-0001", "key-held-0002", "key-never-sent", " "]
    assert held_keys(module_demo_store, erin, asked) == {"key-held-0001"}
    assert held_keys(module_demo_store, ben, asked) == {"key-held-0002"}
    assert held_keys(module_demo_store, erin, []) == set()
