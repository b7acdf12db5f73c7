"""Wishes-and-feelings and life-story drafts written offline come home once per key, checked like the screens.

The phone may send the same draft again after a dropped connection: each key stores one record with every
word the worker typed. A draft the screen would refuse is refused here too, with nothing stored, and the
reason in the words the screen uses (storage/offline.py turns it into the 422 the phone shows).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from storage.direct_work import FormInvalid
from storage.models import Child, Draft, LifeStoryEntry, Photo, WishesAndFeelings, Worker
from storage.offline import receive_draft
from storage.store import Store
from tests.conftest import DEMO_DAY

WORDS = "I want to see my brother Kai every Saturday, and I want my own room with a blue lamp."
STORY = "You started at Hillside Primary. You wore the green jumper and told everyone about your rabbit."


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def a_child(store: Store, who: Worker) -> Child:
    with store.session() as session:
        return session.exec(select(Child).where(Child.worker_id == who.id)).first()


def wishes_form(**changes: Any) -> dict[str, Any]:
    return {"on": DEMO_DAY.isoformat(), "method": "three_houses", "child_words": WORDS,
            "reflection": "Kai matters most to her.", "shared_with": "Carer"} | changes


def life_story_form(**changes: Any) -> dict[str, Any]:
    return {"on": DEMO_DAY.isoformat(), "section": "achievements", "title": "My first day at school",
            "text": STORY} | changes


def receipt(store: Store, key: str) -> Draft | None:
    with store.session() as session:
        return session.exec(select(Draft).where(Draft.idempotency_key == key)).first()


def test_a_wishes_draft_sent_twice_is_stored_once_with_every_word(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    first = receive_draft(module_demo_store, ben, "wishes_and_feelings", child.id, wishes_form(), "key-wishes-0001")
    again = receive_draft(module_demo_store, ben, "wishes_and_feelings", child.id, wishes_form(), "key-wishes-0001")
    assert not first.kept_as_draft and first.record_id == again.record_id
    with module_demo_store.session() as session:
        rows = [module_demo_store.opened(r) for r in session.exec(
            select(WishesAndFeelings).where(WishesAndFeelings.child_id == child.id))]
    stored = [r for r in rows if r.child_words == WORDS]
    assert len(stored) == 1
    record = stored[0]
    assert record.id == first.record_id and record.worker_id == ben.id
    assert (record.on, record.method, record.status) == (DEMO_DAY, "three_houses", "submitted")
    assert (record.reflection, record.shared_with) == ("Kai matters most to her.", "Carer")


def test_a_life_story_draft_sent_twice_is_stored_once_with_every_word(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    first = receive_draft(module_demo_store, ben, "life_story", child.id, life_story_form(), "key-story-0001")
    again = receive_draft(module_demo_store, ben, "life_story", child.id, life_story_form(), "key-story-0001")
    assert not first.kept_as_draft and first.record_id == again.record_id
    with module_demo_store.session() as session:
        rows = [module_demo_store.opened(r) for r in session.exec(
            select(LifeStoryEntry).where(LifeStoryEntry.child_id == child.id))]
        photos = session.exec(select(Photo).where(Photo.record_id == first.record_id)).all()
    stored = [r for r in rows if r.text == STORY]
    assert len(stored) == 1
    entry = stored[0]
    assert entry.id == first.record_id and entry.worker_id == ben.id
    assert (entry.on, entry.section, entry.title) == (DEMO_DAY, "achievements", "My first day at school")
    assert photos == []  # photos are added online only


@pytest.mark.parametrize(("kind", "form", "field"), [
    ("wishes_and_feelings", wishes_form(child_words="   "), "child_words"),
    ("life_story", life_story_form(text=""), "text"),  # offline there are no photos to stand for the words
    ("life_story", life_story_form(section="my_pets"), "section"),
])
def test_a_draft_that_needs_fixing_is_refused_and_stores_nothing(module_demo_store: Store, kind: str,
                                                                 form: dict[str, Any], field: str) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    key = f"key-bad-{kind}-{field}"
    model = WishesAndFeelings if kind == "wishes_and_feelings" else LifeStoryEntry
    with module_demo_store.session() as session:
        before = len(session.exec(select(model.id).where(model.child_id == child.id)).all())
    with pytest.raises(FormInvalid) as refused:
        receive_draft(module_demo_store, ben, kind, child.id, form, key)
    assert field in refused.value.problems and refused.value.problems[field]
    with module_demo_store.session() as session:
        after = len(session.exec(select(model.id).where(model.child_id == child.id)).all())
    assert after == before
    assert receipt(module_demo_store, key) is None
