"""Wishes and feelings, life story and care plan in a real browser at a phone's size (360x740).

Each screen is screenshotted under test-output/, must not scroll sideways or put anything outside the
screen, and axe-core must find no serious or critical accessibility problem on it.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlmodel import select

from storage.care_plans import add_action, add_plan
from storage.models import CarePlanAction, Child, Worker
from storage.timescales.calendar import today_in_england
from tests.browser_support import LiveServer, check_screen, sign_in, wait_connected

pytestmark = pytest.mark.browser
LATE_ACTION = "Book the room for sibling contact"


def bens_child_with_an_overdue_action(server: LiveServer) -> tuple[str, str]:
    """(child id, action id): one of Ben's children in care, given a plan with an action three days overdue,
    so the care plan screen always has one to show and complete."""
    store = server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            child_id = session.exec(select(Child.id).where(Child.worker_id == ben.id, Child.category == "cic")
                                    .order_by(Child.id)).first()
        plan = add_plan(store, ben, child_id, {"kind": "health_plan", "start": (today_in_england() - timedelta(days=30))
                                               .isoformat(), "summary": "Dental and eye checks"})
        action = add_action(store, ben, child_id, {"plan_id": plan.id, "description": LATE_ACTION, "owner": "Carer",
                                                   "due": (today_in_england() - timedelta(days=3)).isoformat()})
        return child_id, action.id
    finally:
        store.engine.dispose()


def stored_action(server: LiveServer, action_id: str) -> tuple[str, str]:
    """(status, outcome) of a care plan action as the server holds it."""
    store = server.store()
    try:
        with store.session() as session:
            action = session.get(CarePlanAction, action_id)
            return action.status, store.opened(action).body.outcome
    finally:
        store.engine.dispose()


def photo_file(path) -> str:
    image = Image.new("RGB", (1200, 900), (40, 140, 90))
    out = io.BytesIO()
    image.save(out, "JPEG")
    path.write_bytes(out.getvalue())
    return str(path)


def test_direct_work_screens_on_a_phone(page, live_server: LiveServer, tmp_path) -> None:
    child_id, late_action = bens_child_with_an_overdue_action(live_server)
    sign_in(page, "ben")

    # Wishes and feelings: the draft survives a reload in the real browser.
    page.goto(f"/child/{child_id}/wishes")
    page.get_by_role("heading", name="Earlier work").wait_for()
    words = page.get_by_label("The child's words, as they said them")
    words.fill("I like the trampoline best")
    page.get_by_text("Draft saved").wait_for()
    page.reload()
    page.get_by_text("Draft restored").wait_for()
    assert words.input_value() == "I like the trampoline best"
    check_screen(page, "wishes-phone")

    # Life story: a photo from the phone's camera input, saved, shown through the guarded route.
    page.goto(f"/child/{child_id}/life-story")
    page.get_by_role("heading", name="The book so far").wait_for()
    wait_connected(page)
    page.locator("input[type=file][capture]").set_input_files(photo_file(tmp_path / "camera.jpg"))
    page.get_by_text("1 photo ready to add").wait_for()
    page.get_by_label("Chapter of the book").click()
    page.get_by_role("option", name="My achievements").click()
    page.get_by_label("Title").fill("Climbing wall")
    page.get_by_label("The story, written for the child").fill("You got to the very top!")
    page.get_by_role("button", name="Add to the book").click()
    page.get_by_text("You got to the very top!").wait_for()
    photo = page.locator("img[src^='/photo/']").last
    photo.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    with page.expect_download() as download:
        page.get_by_role("button", name="Export life-story book").click()
    assert (tmp_path / "book.pdf").write_bytes(open(download.value.path(), "rb").read()) > 0
    assert (tmp_path / "book.pdf").read_bytes().startswith(b"%PDF")
    check_screen(page, "life-story-phone")

    # Care plan: an overdue action says so in words, and is completed with its outcome.
    page.goto(f"/child/{child_id}/care-plan")
    page.get_by_text("Add a plan").wait_for()
    check_screen(page, "care-plan-phone")
    overdue = page.locator(f'[data-action="{late_action}"]')
    overdue.get_by_text("Overdue", exact=True).wait_for()
    overdue.get_by_role("button", name="Complete").click()
    page.get_by_role("dialog", name="Mark the action done").get_by_text(LATE_ACTION).wait_for()
    page.get_by_label("Outcome: what happened").fill("Room booked for Saturday mornings")
    check_screen(page, "care-plan-complete-phone", within=".q-dialog")
    page.get_by_role("button", name="Mark done").click()
    page.get_by_text("Action marked done").wait_for()
    overdue.get_by_text("Done on").wait_for()
    assert overdue.get_by_text("Overdue", exact=True).count() == 0
    assert stored_action(live_server, late_action) == ("done", "Room booked for Saturday mornings")
