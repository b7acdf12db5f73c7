"""A double tap on a phone (360x740, real chromium) stores one record, and says so once.

Each button is double-clicked (two taps without waiting in between): the page sends the form twice with
the key it was opened with (pwa/form_key.py), and storage holds it once (storage/submissions.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import SQLModel, select

from storage import oversight
from storage.models import CarePlanAction, Child, LifeStoryEntry, Visit, WishesAndFeelings, Worker
from tests.browser_support import LiveServer, sign_in, wait_connected

pytestmark = pytest.mark.browser
WORDS = "I want a dog called Biscuit."


def bens_child(server: LiveServer) -> tuple[str, str]:
    store = server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            child = session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic")
                                 .order_by(Child.id)).first()  # type: ignore[arg-type]
            return child.id, store.opened(child).body.name
    finally:
        store.engine.dispose()


def stored(server: LiveServer, model: type[SQLModel], child_id: str, field: str, words: str) -> list[Any]:
    """The records of this kind for the child whose sealed body's `field` is `words`."""
    store = server.store()
    try:
        with store.session() as session:
            rows = session.exec(select(model).where(model.child_id == child_id))  # type: ignore[attr-defined]
            return [row for row in rows if getattr(store.opened(row).body, field) == words]
    finally:
        store.engine.dispose()


def group(page: Any, field: str) -> Any:
    return page.locator(f'[data-field="{field}"]')


def the_key(page: Any) -> str:
    holders = page.locator("[data-submission-key]")
    assert holders.count() == 1  # one form a page; the phone's offline copy reads it from there
    assert holders.locator("[data-field]").count() > 0
    return holders.get_attribute("data-submission-key")


def test_a_double_tap_on_submit_visit_stores_one_visit_one_action_and_one_sign_off(page, live_server) -> None:
    child_id, name = bens_child(live_server)
    sign_in(page, "ben")
    page.goto(f"/child/{child_id}/visit")
    page.get_by_role("heading", name=f"Visit to {name}").wait_for()
    wait_connected(page)
    key = the_key(page)
    group(page, "seen_alone").get_by_role("radio", name="Yes").click()
    group(page, "bedroom_seen").get_by_role("radio", name="Yes").click()
    page.get_by_label("Observations (fact)").fill("Playing in the garden.")
    page.get_by_label("In the child's own words").fill(WORDS)
    page.get_by_role("button", name="Add an action").click()
    page.get_by_label("Action 1").fill("Ask the carer about a dog")
    page.get_by_label("Who will do it").fill("Carer")
    page.get_by_label("Who will do it").blur()

    page.get_by_role("button", name="Submit visit").dblclick()
    page.get_by_role("heading", name="Visit recorded").wait_for()
    page.wait_for_timeout(1500)  # the second tap's submission has long reached the server

    visits = stored(live_server, Visit, child_id, "child_words", WORDS)
    assert len(visits) == 1 and visits[0].submission_key == key
    store = live_server.store()
    try:
        with store.session() as session:
            actions = list(session.exec(select(CarePlanAction).where(CarePlanAction.from_visit == visits[0].id)))
            amara = session.exec(select(Worker).where(Worker.username == "amara")).one()
        queue = [q.visit_id for q in oversight.signoff_queue(store, amara) if q.child_id == child_id]
    finally:
        store.engine.dispose()
    assert len(actions) == 1
    assert queue.count(visits[0].id) == 1 and len(queue) == len(set(queue))


def test_a_double_tap_on_save_stores_one_record_and_no_problem(page, live_server) -> None:
    child_id, _ = bens_child(live_server)
    sign_in(page, "ben")

    page.goto(f"/child/{child_id}/wishes")
    page.get_by_role("heading", name="Earlier work").wait_for()
    wait_connected(page)
    first_key = the_key(page)
    page.get_by_label("The child's words, as they said them").fill(WORDS)
    page.get_by_label("The child's words, as they said them").blur()
    page.get_by_role("button", name="Save wishes and feelings").dblclick()
    page.get_by_text("Saved. The record is now sealed").wait_for()
    page.wait_for_timeout(1500)
    assert page.get_by_text("Nothing was saved yet").count() == 0
    assert page.get_by_text("Saved. The record is now sealed").is_visible()
    assert len(stored(live_server, WishesAndFeelings, child_id, "child_words", WORDS)) == 1
    # Typing again begins a new piece of work: a new key.
    page.get_by_label("The child's words, as they said them").fill("Another day.")
    page.wait_for_function("(k) => document.querySelector('[data-submission-key]').dataset.submissionKey !== k",
                           arg=first_key)

    page.goto(f"/child/{child_id}/life-story")
    page.get_by_role("heading", name="The book so far").wait_for()
    wait_connected(page)
    page.get_by_label("Chapter of the book").click()
    page.get_by_role("option", name="My achievements").click()
    page.get_by_label("Title").fill("Ten metres")
    page.get_by_label("The story, written for the child").fill(WORDS)
    page.get_by_label("The story, written for the child").blur()
    page.get_by_role("button", name="Add to the book").dblclick()
    page.get_by_text(WORDS).first.wait_for()
    page.wait_for_timeout(1500)
    assert page.get_by_text("Nothing was added yet").count() == 0
    assert page.get_by_text("Nothing was saved yet").count() == 0
    assert len(stored(live_server, LifeStoryEntry, child_id, "text", WORDS)) == 1
    assert page.get_by_text(WORDS).count() == 1  # in the book once
