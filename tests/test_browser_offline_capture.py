"""Direct work and a visit written with no signal, in a real chromium at a phone's size.

Wishes and feelings and a life-story entry typed after the connection drops are kept on the phone, sealed
(no plaintext in IndexedDB), finished on the offline page, and reach the server exactly once with every word
when the connection returns. A visit started from scratch on the offline page, for a child picked from the
caseload kept on the phone, is stored once with every word, its safety score and its action.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.drafts import load_draft
from storage.models import CarePlanAction, LifeStoryEntry, Visit, WishesAndFeelings
from storage.timescales.calendar import today_in_england
from storage.wishes import WISHES_DRAFT_KIND
from tests.browser_support import (
    LiveServer,
    assert_sealed_on_the_phone,
    ben_and_child,
    screenshot,
    sign_in,
    wait_connected,
    wait_for_caseload_copy,
    wait_for_worker,
    wait_status,
)

pytestmark = pytest.mark.browser

WORDS_BEFORE = "In the house of worries there is my old school"
WORDS = WORDS_BEFORE + " and when mum does not come to contact. In the house of dreams I live with my cat Biscuit."
REFLECTION = "Contact cancellations weigh on her most; raise the pattern with mum before the review."
SHARED = "Foster carer and IRO"

STORY_TITLE = "The flat on Orchard Road"
STORY = "You lived here with Nan when you were four. You had a red bike and a goldfish called Captain."

OBSERVATIONS = "Met at the contact centre; Jay ran to show me a model plane he built with his carer."
VISIT_WORDS = "I want to see my sister more, and I want to keep my football team."
ANALYSIS = "Attachment to the carer is growing; sibling time is what he asks for most."
ACTION = "Ask the sister's carer about a Saturday meet-up"
WORRY = "Jay's dad drinks before contact and shouts at him."


def stored(server: LiveServer, model: type, child_id: str) -> list:
    """The child's records of one kind, opened (body fields readable)."""
    store = server.store()
    try:
        with store.session() as session:
            return [store.opened(r) for r in session.exec(select(model).where(model.child_id == child_id))]
    finally:
        store.engine.dispose()


def go_offline_on(page, context, path: str, ready: str) -> None:
    """Signs in, opens `path` (waiting for the text `ready`), with the service worker and caseload in place."""
    sign_in(page, "ben")
    wait_for_worker(page)
    wait_for_caseload_copy(page)
    page.goto(path)
    page.get_by_text(ready).first.wait_for()


def reload_offline_and_open(page, kind_title: str) -> None:
    """Reloads with no signal: the service worker's offline page shows the draft, which the worker opens (a form
    handed over to the offline page reopens by itself: its address names the draft)."""
    page.reload()
    page.get_by_role("heading", name="Seen · offline").wait_for()
    if "draft=" not in page.url:
        page.get_by_role("button", name=f"Open draft: {kind_title}").click()
    page.get_by_role("button", name=f"Submit {kind_title.lower()}").wait_for()


def test_wishes_typed_with_no_signal_are_kept_sealed_and_stored_once(page, context, live_server: LiveServer) -> None:
    ben, child_id = ben_and_child(live_server)
    go_offline_on(page, context, f"/child/{child_id}/wishes", "Earlier work")
    page.get_by_role("radio", name="Three houses").click()
    page.get_by_label("The child's words, as they said them").fill(WORDS_BEFORE)
    page.get_by_text("Draft saved at").wait_for()  # what was typed online is in the server's draft

    context.set_offline(True)  # the form is handed to the offline page, with what was entered
    page.get_by_text("No signal. This wishes and feelings record is kept on this phone").wait_for()
    wait_status(page, "Offline · 1 draft waiting")
    assert page.get_by_label("The child's words, as they said them").input_value() == WORDS_BEFORE
    page.get_by_label("The child's words, as they said them").fill(WORDS)
    page.get_by_label("Your reflection").fill(REFLECTION)
    page.get_by_label("Shared with").fill(SHARED)
    page.evaluate("SeenOffline.keepNow()")
    assert_sealed_on_the_phone(page, WORDS_BEFORE, "Biscuit", REFLECTION, SHARED, child_id)

    reload_offline_and_open(page, "Wishes and feelings")
    assert page.get_by_label("The child's words, as they said them").input_value() == WORDS
    assert page.get_by_label("Your reflection").input_value() == REFLECTION
    assert page.get_by_label("How you worked together").input_value() == "three_houses"
    screenshot(page, "offline-wishes-phone")
    page.get_by_role("button", name="Submit wishes and feelings").click()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()
    assert [w for w in stored(live_server, WishesAndFeelings, child_id) if "Biscuit" in w.child_words] == []

    context.set_offline(False)
    wait_status(page, "Online")
    page.get_by_text("1 record sent to Seen and stored.").wait_for()
    ours = [w for w in stored(live_server, WishesAndFeelings, child_id) if "Biscuit" in w.child_words]
    assert len(ours) == 1
    assert ours[0].child_words == WORDS and ours[0].reflection == REFLECTION and ours[0].shared_with == SHARED
    assert ours[0].method == "three_houses" and ours[0].on == today_in_england() and ours[0].status == "submitted"
    # The half-typed draft the screen saved before the signal went is gone: nothing is offered twice.
    store = live_server.store()
    try:
        assert load_draft(store, ben, child_id, WISHES_DRAFT_KIND) is None
    finally:
        store.engine.dispose()
    assert page.evaluate("SeenDrafts.counts()")["total"] == 0


def test_a_correction_finished_with_no_signal_arrives_as_the_correction_not_a_second_record(
        page, context, live_server: LiveServer) -> None:
    """A worker starts correcting an earlier record on the screen and the signal goes: the phone's copy keeps
    which record it replaces, the offline page says it is a correction, and it arrives as one."""
    _ben, child_id = ben_and_child(live_server)
    go_offline_on(page, context, f"/child/{child_id}/wishes", "Earlier work")
    wait_connected(page)
    page.get_by_role("button", name="Correct this record").first.click()
    page.get_by_text("You are correcting an earlier record").wait_for()
    page.wait_for_function("document.querySelector('[data-field=supersedes]').value !== ''")
    original = page.locator('[data-field="supersedes"]').input_value()
    corrected = "I want to see my brother every Saturday, not every other Saturday."

    context.set_offline(True)
    page.get_by_text("This corrects an earlier record").wait_for()  # handed to the offline page
    page.get_by_label("The child's words, as they said them").fill(corrected)
    page.evaluate("SeenOffline.keepNow()")
    reload_offline_and_open(page, "Wishes and feelings")
    page.get_by_text("This corrects an earlier record").wait_for()
    page.get_by_role("button", name="Submit wishes and feelings").click()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()

    context.set_offline(False)
    wait_status(page, "Online")
    page.get_by_text("1 record sent to Seen and stored.").wait_for()
    ours = [w for w in stored(live_server, WishesAndFeelings, child_id) if w.child_words == corrected]
    assert len(ours) == 1 and ours[0].supersedes == original


def test_a_life_story_entry_typed_with_no_signal_is_kept_sealed_and_stored_once(
        page, context, live_server: LiveServer) -> None:
    _, child_id = ben_and_child(live_server)
    go_offline_on(page, context, f"/child/{child_id}/life-story", "The book so far")
    page.get_by_label("Chapter of the book").click()
    page.get_by_role("option", name="Where I have lived").click()
    page.locator('[data-field="section"]').get_by_text("Where I have lived").wait_for()  # the choice is shown
    page.get_by_label("Title").fill(STORY_TITLE)

    context.set_offline(True)
    wait_status(page, "Offline · 1 draft waiting")
    page.get_by_label("The story, written for the child").fill(STORY)
    page.evaluate("SeenPage.flush()")
    assert_sealed_on_the_phone(page, STORY_TITLE, "Orchard", "goldfish", child_id)

    reload_offline_and_open(page, "Life story entry")
    assert page.get_by_label("Chapter of the book").input_value() == "lived"
    assert page.get_by_label("Title").input_value() == STORY_TITLE
    assert page.get_by_label("The story, written for the child").input_value() == STORY
    page.get_by_role("button", name="Submit life story entry").click()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()

    context.set_offline(False)
    wait_status(page, "Online")
    page.get_by_text("1 record sent to Seen and stored.").wait_for()
    # The reloaded page is the live one again, and the book holds the entry once.
    page.reload()
    page.get_by_role("heading", name="The book so far").wait_for()
    page.get_by_text(STORY).wait_for()
    assert page.get_by_text(STORY).count() == 1
    ours = [e for e in stored(live_server, LifeStoryEntry, child_id) if e.title == STORY_TITLE]
    assert len(ours) == 1
    assert ours[0].text == STORY and ours[0].section == "lived" and ours[0].status == "submitted"


def test_a_new_visit_started_on_the_offline_page_is_stored_once_with_every_word(
        page, context, live_server: LiveServer) -> None:
    _, child_id = ben_and_child(live_server)
    go_offline_on(page, context, "/", "My caseload")
    context.set_offline(True)
    page.goto("/offline")  # served by the service worker: there is no signal
    page.get_by_role("heading", name="Seen · offline").wait_for()
    page.get_by_role("button", name="Start a new visit").click()

    page.get_by_label("Child", exact=True).select_option(child_id)
    page.get_by_role("group", name="Did you see the child alone?").get_by_label("Yes").check()
    page.get_by_role("group", name="Did you see the child's bedroom?").get_by_label("No").check()
    page.get_by_label("Where the visit took place").select_option("contact_centre")
    page.get_by_label("Who else was there").fill("Contact supervisor")
    page.get_by_label("Observations (fact)").fill(OBSERVATIONS)
    page.get_by_label("Analysis (your professional opinion)").fill(ANALYSIS)
    page.get_by_label("In the child's own words").fill(VISIT_WORDS)
    page.get_by_role("button", name="Add a person's score").click()
    page.get_by_label("Who was asked (1)", exact=True).fill("Jay")
    page.get_by_label("Score 0–10 (1)").fill("7")
    page.get_by_role("button", name="Add a worry and its safety goal").click()
    page.get_by_label("Worried that… (1)").fill(WORRY)
    page.get_by_label("What needs to happen… (1)").fill("Jay's dad comes to contact sober.")
    page.get_by_label("Social worker 0–10 (1)").fill("4")
    page.get_by_label("Child 0–10 (1)").fill("0")
    page.get_by_role("button", name="Add an action").click()
    page.get_by_label("Action (1)").fill(ACTION)
    page.get_by_label("Who will do it (1)").fill("Social worker")
    page.evaluate("SeenOffline.keepNow()")
    assert_sealed_on_the_phone(page, OBSERVATIONS, "model plane", VISIT_WORDS, ANALYSIS, ACTION, child_id)
    screenshot(page, "offline-new-visit-phone")

    page.get_by_role("button", name="Submit visit").click()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()
    wait_status(page, "Offline · 1 draft waiting")
    assert [v for v in stored(live_server, Visit, child_id) if v.observations == OBSERVATIONS] == []

    context.set_offline(False)
    wait_status(page, "Online")
    page.get_by_text("1 record sent to Seen and stored.").wait_for()
    ours = [v for v in stored(live_server, Visit, child_id) if v.observations == OBSERVATIONS]
    assert len(ours) == 1
    visit = ours[0]
    assert visit.status == "submitted" and visit.location == "contact_centre"
    assert visit.seen is True and visit.seen_alone is True and visit.bedroom_seen is False
    assert visit.present == "Contact supervisor" and visit.analysis == ANALYSIS and visit.child_words == VISIT_WORDS
    assert [(s.who, s.score) for s in visit.safety_scale] == [("Jay", 7)]
    assert [(g.danger, g.scores) for g in visit.safety_goals] == [(WORRY, {"worker": 4, "child": 0})]
    assert visit.safety_goals[0].pair_id  # given its id, to be carried to the next visit
    actions = [a for a in stored(live_server, CarePlanAction, child_id) if a.from_visit == visit.id]
    assert [(a.description, a.owner) for a in actions] == [(ACTION, "Social worker")]
