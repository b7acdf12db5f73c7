"""Caseload, child and log a visit in a real browser at a phone's size (360x740), and the idle lock.

A worker logs a full visit from the caseload in one run; the draft survives a reload mid-typing and a
server restart. Each screen is screenshotted under test-output/, must not scroll sideways or put anything
outside the screen, and axe-core must find no serious or critical accessibility problem on it.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.models import CarePlanAction, Child, Visit, Worker
from tests.browser_support import LiveServer, check_screen, sign_in

pytestmark = pytest.mark.browser


def bens_child(server: LiveServer) -> tuple[str, str]:
    store = server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            child = session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic")
                                 .order_by(Child.id.desc())).first()  # type: ignore[union-attr]
            return child.id, store.opened(child).body.name
    finally:
        store.engine.dispose()


def group(page, field: str):  # noqa: ANN201
    return page.locator(f'[data-field="{field}"]')


def test_a_worker_logs_a_full_visit_from_the_caseload(page, live_server: LiveServer) -> None:
    child_id, name = bens_child(live_server)
    sign_in(page, "ben")
    check_screen(page, "caseload")

    # Search by name, then one tap to the child.
    page.get_by_label("Search by name").fill(name.split()[0])
    card = page.locator(f'[data-child="{child_id}"]')
    card.wait_for()
    assert page.locator("[data-child]").count() < 20
    card.get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name="What is due").wait_for()
    page.get_by_role("heading", name="Timeline").wait_for()
    check_screen(page, "child")

    page.get_by_role("button", name="Log a visit").click()
    page.get_by_role("heading", name=f"Visit to {name}").wait_for()
    group(page, "seen_alone").get_by_role("radio", name="No").click()
    group(page, "not_alone_reason").get_by_role("radio", name="The child, of sufficient age").click()
    group(page, "bedroom_seen").get_by_role("radio", name="Yes").click()
    page.get_by_label("Who else was there").fill("Foster carer")
    page.get_by_label("Observations (fact)").fill("Bedroom tidy, new posters. The child showed me")

    # A reload mid-typing loses nothing, not even the words typed since the last autosave tick.
    page.wait_for_timeout(300)  # the keystrokes reach the server; no autosave tick needed
    page.reload()
    page.get_by_text("has been restored").wait_for()
    assert page.get_by_label("Observations (fact)").input_value() == "Bedroom tidy, new posters. The child showed me"
    assert group(page, "seen_alone").get_by_role("radio", name="No").get_attribute("aria-checked") == "true"

    # Nor does a server restart: the draft is in the database.
    page.get_by_label("Observations (fact)").fill("Bedroom tidy, new posters. The child showed me a drawing.")
    page.wait_for_timeout(2500)  # one autosave tick, so the last words are in
    live_server.restart()
    page.goto(f"/child/{child_id}/visit")
    if page.get_by_role("button", name="Sign in").is_visible():
        sign_in(page, "ben")
        page.goto(f"/child/{child_id}/visit")
    page.get_by_text("has been restored").wait_for()
    observations = page.get_by_label("Observations (fact)")
    assert observations.input_value() == "Bedroom tidy, new posters. The child showed me a drawing."

    page.get_by_label("Analysis (your professional opinion)").fill("Settled; enjoys school.")
    page.get_by_label("In the child's own words").fill("I want to stay here.")
    page.get_by_label("What are we worried about?").fill("Contact with dad is irregular.")
    page.get_by_label("What is working well?").fill("Warm relationship with carer.")
    page.get_by_label("What needs to happen?").fill("Plan regular contact.")
    page.get_by_role("button", name="Add a person's score").click()
    page.get_by_label("Who was asked").fill("Child")
    page.get_by_label("Score 0–10").fill("8")
    page.get_by_role("button", name="Add an action").click()
    page.get_by_label("Action 1").fill("Arrange contact with dad")
    page.get_by_label("Who will do it").fill("Social worker")
    page.get_by_text("Draft saved at").wait_for()
    check_screen(page, "visit")

    page.get_by_role("button", name="Submit visit").click()
    page.get_by_role("heading", name="Visit recorded").wait_for()
    page.get_by_role("link", name=f"Back to {name}'s page").click()
    page.get_by_role("heading", name="Timeline").wait_for()
    page.get_by_text("Visit: seen, not alone").first.wait_for()
    page.locator(".seen-child-words", has_text="I want to stay here.").first.wait_for()  # in the child's own style

    store = live_server.store()
    try:
        with store.session() as session:
            visit = session.exec(select(Visit).where(Visit.child_id == child_id, Visit.status == "submitted")
                                 .order_by(Visit.created_at.desc())).first()  # type: ignore[attr-defined]
            actions = list(session.exec(select(CarePlanAction).where(CarePlanAction.from_visit == visit.id)))
            body = store.opened(visit).body
            assert [store.opened(a).body.description for a in actions] == ["Arrange contact with dad"]
    finally:
        store.engine.dispose()
    assert visit.seen_alone is False and visit.not_alone_reason == "refused" and visit.bedroom_seen is True
    assert body.observations.endswith("a drawing.") and body.safety_scale[0].score == 8
    assert body.present == "Foster carer" and body.analysis == "Settled; enjoys school."

    page.goto("/settings")
    page.get_by_text("Ben Castle").wait_for()
    check_screen(page, "settings")

    # The server start takes most of this test's time: the idle lock is checked on the same one.
    check_idle_lock(page, child_id, name)


def check_idle_lock(page, child_id: str, name: str) -> None:
    """After SEEN_IDLE_LOCK_MINUTES (10) untouched, the screen blanks and signs out; sign-in returns there.

    The page's clock is moved on without firing its timers early (NiceGUI's connection has timers of its
    own); the lock's own 5-second check then sees how long the screen has gone untouched.
    """
    page.clock.install()
    page.goto(f"/child/{child_id}")
    page.get_by_role("heading", name="Timeline").wait_for()
    started = page.evaluate("Date.now()") / 1000  # Playwright's Python clock takes seconds
    page.clock.set_system_time(started + 9 * 60)  # nine minutes without a touch: still open
    page.wait_for_timeout(6000)
    assert page.get_by_role("heading", name="Timeline").is_visible()
    page.clock.set_system_time(started + 10 * 60 + 30)
    page.wait_for_url(lambda url: "/login?locked=1" in url, timeout=15_000, wait_until="commit")
    page.get_by_text("Seen locked itself").wait_for()
    assert name not in page.content()
    page.get_by_label("Username").fill("ben")
    page.get_by_label("Password").fill("seen-demo")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Timeline").wait_for()
    assert page.url.endswith(f"/child/{child_id}")
