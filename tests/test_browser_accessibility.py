"""WCAG 2.2 AA (axe-core) at a phone's size on every screen: sign in, the idle-locked sign-in, a personal
node's unlock screen (first time, and after a wrong passphrase), the offline page and its visit form, the
caseload with the menu open, a child, settings, each form with its error summary showing (visit, wishes and
feelings, life story, care plan), the manager's team, sign-off queue and a visit waiting there, a child's
audit trail, and the administrator's screen with its revoke dialog.

Each is screenshotted under test-output/, must not scroll sideways or put anything outside the screen, and
axe-core must find no violation of any impact on it. GOV.UK's patterns are checked here too: buttons in
sentence case, an error summary whose links move focus to their fields, what is due first on a child's page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from storage.models import Child, Device, Visit, Worker
from tests.browser_support import (
    PHONE,
    LiveServer,
    axe_problems,
    ben_and_child,
    check_screen,
    running_server,
    sign_in,
    tap_until_shown,
    wait_connected,
    wait_for_caseload_copy,
)

pytestmark = pytest.mark.browser


def a_submitted_visit(server: LiveServer) -> tuple[str, str]:
    """(visit id, child id) of a visit in Amara's team waiting for her sign-off; and a device for the admin."""
    store = server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            visit = session.exec(select(Visit).join(Child, Child.id == Visit.child_id).where(
                Child.worker_id == ben.id, Visit.status == "submitted")).first()
            assert visit is not None, "the demo has a submitted visit of Ben's"
            session.add(Device(worker_id=ben.id, name="Ben's phone", token_hash="test-device"))
            session.commit()
            return visit.id, visit.child_id
    finally:
        store.engine.dispose()


def test_sign_in_and_the_idle_locked_screen(page) -> None:
    page.goto("/login")
    page.get_by_role("button", name="Sign in").wait_for()
    check_screen(page, "a11y-sign-in")
    page.get_by_label("Username").fill("ben")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("That username and password do not match").wait_for()
    check_screen(page, "a11y-sign-in-refused")

    page.goto("/login?locked=1&next=%2F")
    page.get_by_text("Seen locked itself").wait_for()
    check_screen(page, "a11y-idle-locked")

    # While a request is under way Quasar shows its loading bar: a progressbar outside every landmark, so hidden
    # from screen readers (the page speaks each outcome itself).
    page.route("**/status", lambda route: None)  # never answered: the request stays under way
    page.evaluate("fetch('/status'); null")
    page.locator(".q-loading-bar[role=progressbar]").wait_for(state="attached")
    assert not axe_problems(page), "the loading bar"


def test_the_offline_page_and_its_visit_form(page) -> None:
    sign_in(page, "ben")
    wait_for_caseload_copy(page)
    page.goto("/offline")
    page.get_by_role("heading", name="Seen · offline").wait_for()
    page.get_by_text("No drafts are waiting on this phone.").wait_for()
    check_screen(page, "a11y-offline")
    page.get_by_role("button", name="Start a new visit").click()
    page.get_by_label("Child", exact=True).wait_for()
    assert page.locator("#f-child option").count() > 1  # the caseload kept on the phone, to pick from
    page.get_by_role("button", name="Submit visit").click()  # no child chosen: the form says so
    page.get_by_text("Choose the child this record is about.").wait_for()
    check_screen(page, "a11y-offline-visit-form")


def test_sign_off_queue_a_visit_to_sign_off_and_a_childs_audit_trail(page, live_server: LiveServer) -> None:
    visit_id, child_id = a_submitted_visit(live_server)
    sign_in(page, "amara")
    page.goto("/signoff")
    page.locator(f'[data-visit="{visit_id}"]').wait_for()
    check_screen(page, "a11y-signoff-queue")
    page.locator(f'[data-visit="{visit_id}"]').get_by_role("link").click()
    page.get_by_role("button", name="Sign off").wait_for()
    wait_connected(page)  # the taps below go over NiceGUI's socket: on a busy machine it may not be up yet
    page.get_by_text("Return to the worker instead").click()
    # Tapped once the section has opened, on a page still connected (on a busy machine the tap was once lost
    # while the section opened: the server never heard it).
    page.get_by_label("Why it is being returned").wait_for()
    page.locator('[aria-expanded="true"]', has_text="Return to the worker instead").wait_for()
    wait_connected(page)
    page.get_by_role("button", name="Return to worker").click()  # no reason given: refused, in words
    page.get_by_text("Say why the visit is being returned").wait_for()
    check_screen(page, "a11y-signoff-visit")

    page.goto(f"/child/{child_id}/audit")
    page.locator("[data-seq]").first.wait_for()
    check_screen(page, "a11y-audit-trail")


def test_administration_and_its_revoke_dialog(page, live_server: LiveServer) -> None:
    a_submitted_visit(live_server)
    sign_in(page, "admin")
    page.goto("/admin")
    page.get_by_role("heading", name="Devices").wait_for()
    check_screen(page, "a11y-admin")
    page.get_by_role("button", name="Revoke").first.click()
    page.get_by_text("Revoke Ben Castle's device").wait_for()
    check_screen(page, "a11y-admin-revoke-dialog", within=".q-dialog")


@pytest.fixture
def personal_node(tmp_path: Path) -> Iterator[LiveServer]:
    """Seen as a personal node: its store is sealed until the worker's passphrase opens it."""
    with running_server(tmp_path / "node", SEEN_NODE_MODE="personal") as server:
        yield server


def test_a_personal_nodes_unlock_screen(browser, personal_node: LiveServer) -> None:
    context = browser.new_context(viewport=PHONE, base_url=personal_node.url, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_url("**/unlock?next=/")
        page.get_by_text("Choose a passphrase for this device").wait_for()
        wait_connected(page)  # the taps below go over NiceGUI's socket
        check_screen(page, "a11y-unlock-first-time")
        page.get_by_label("Passphrase", exact=True).fill("a long passphrase for the laptop")
        page.get_by_label("Type the passphrase again").fill("a long passphrase for the laptop, typo")
        page.get_by_role("button", name="Unlock").click()
        page.get_by_text("The two passphrases do not match").wait_for()
        check_screen(page, "a11y-unlock-mismatch")
        page.get_by_label("Passphrase", exact=True).fill("a long passphrase for the laptop")
        page.get_by_label("Type the passphrase again").fill("a long passphrase for the laptop")
        page.get_by_role("button", name="Unlock").click()
        page.get_by_role("button", name="Sign in").wait_for()  # unlocked: now the worker signs in

        page.goto("about:blank")  # the old page's socket would reload it as the node restarts, racing the goto
        personal_node.restart()  # a restarted node is sealed again
        page.goto("/unlock")
        page.get_by_text("Enter your passphrase to open it").wait_for()
        wait_connected(page)
        page.get_by_label("Passphrase", exact=True).fill("not it")
        page.get_by_role("button", name="Unlock").click()
        page.get_by_text("That passphrase is not right").wait_for()
        check_screen(page, "a11y-unlock-refused")
    finally:
        context.close()


def test_the_discard_draft_question_on_a_visit(page, live_server: LiveServer) -> None:
    _, child_id = a_submitted_visit(live_server)
    sign_in(page, "ben")
    page.goto(f"/child/{child_id}/visit")
    page.get_by_label("Observations (fact)").fill("The carer was out; I saw the child with her aunt.")
    page.get_by_role("button", name="Discard draft").click()
    page.get_by_role("dialog", name="Discard this draft?").wait_for()
    check_screen(page, "a11y-visit-discard-dialog", within=".q-dialog")
    page.get_by_role("button", name="Keep it").click()
    assert page.get_by_label("Observations (fact)").input_value() == "The carer was out; I saw the child with her aunt."


def open_menu(page, name: str) -> None:  # noqa: ANN001
    menu = page.get_by_role("navigation", name="Menu")
    page.get_by_role("button", name="Menu").click()
    menu.get_by_role("link", name="Settings").wait_for()
    assert page.get_by_role("button", name="Menu").get_attribute("aria-expanded") == "true"
    check_screen(page, name)
    page.get_by_role("button", name="Menu").click()
    menu.wait_for(state="hidden")


def test_a_workers_screens_with_the_menu_open_and_each_forms_error_summary(page, live_server: LiveServer) -> None:
    _, child_id = ben_and_child(live_server)
    sign_in(page, "ben")
    open_menu(page, "a11y-caseload-menu-open")
    # Sentence case, as written: no button is set in capitals by the style sheet.
    uppercase = page.evaluate("""[...document.querySelectorAll('button, .q-btn, a.visit')]
        .filter(b => getComputedStyle(b).textTransform === 'uppercase').map(b => b.textContent)""")
    assert uppercase == []

    page.goto(f"/child/{child_id}")
    page.get_by_role("heading", name="Timeline").wait_for()
    check_screen(page, "a11y-child")
    # The review form, opened and refused: its problems in the error summary, each linked to its field. Tapped once
    # the section has opened, on a connected page, and again if the tap was lost (`tap_until_shown`).
    wait_connected(page)
    page.get_by_text("Record a review").click()
    page.locator('[aria-expanded="true"]', has_text="Record a review").wait_for()
    page.get_by_role("button", name="Save the review").wait_for()
    wait_connected(page)
    tap_until_shown(page.get_by_role("button", name="Save the review"),
                    page.get_by_role("heading", name="There is a problem"))
    check_screen(page, "a11y-child-review-error-summary")
    page.goto(f"/child/{child_id}")
    page.get_by_role("heading", name="Timeline").wait_for()
    open_menu(page, "a11y-child-menu-open")

    page.goto("/settings")
    page.get_by_role("heading", name="Settings").wait_for()
    check_screen(page, "a11y-settings")

    for path, submit, name in ((f"/child/{child_id}/wishes", "Save wishes and feelings", "wishes"),
                               (f"/child/{child_id}/life-story", "Add to the book", "life-story")):
        page.goto(path)
        wait_connected(page)
        tap_until_shown(page.get_by_role("button", name=submit), page.get_by_role("heading", name="There is a problem"))
        check_screen(page, f"a11y-{name}-error-summary")

    page.goto(f"/child/{child_id}/care-plan")
    wait_connected(page)
    page.get_by_text("Add a plan").click()
    page.locator('[aria-expanded="true"]', has_text="Add a plan").wait_for()
    page.get_by_role("button", name="Add the plan").wait_for()
    wait_connected(page)
    tap_until_shown(page.get_by_role("button", name="Add the plan"),
                    page.get_by_role("heading", name="There is a problem"))
    check_screen(page, "a11y-care-plan-error-summary")


def test_the_visit_forms_error_summary_links_each_problem_to_its_field(page, live_server: LiveServer) -> None:
    _, child_id = ben_and_child(live_server)
    sign_in(page, "ben")
    page.goto(f"/child/{child_id}/visit")
    wait_connected(page)
    page.get_by_label("Observations (fact)").fill("")
    page.get_by_role("button", name="Add a worry and its safety goal").click()  # its row is checked by axe too
    page.get_by_label("Worried that…").fill("Jay's dad shouts at him when he has been drinking.")
    page.get_by_role("button", name="Submit visit").click()
    summary = page.locator(".seen-error-summary")
    summary.get_by_role("heading", name="There is a problem").wait_for()
    summary.get_by_role("link", name=re.compile("Worries and safety goals, row 1: write the safety goal")).wait_for()
    # Focus moves to the summary, and its top is not under the fixed header.
    page.wait_for_function("document.activeElement?.classList.contains('seen-error-summary')")
    header_bottom = page.locator(".q-header").bounding_box()["y"] + page.locator(".q-header").bounding_box()["height"]
    assert summary.bounding_box()["y"] >= header_bottom - 1
    check_screen(page, "a11y-visit-error-summary")
    # Hints and field messages at 14 px or more (Quasar's own are 12 px).
    sizes = page.evaluate("[...document.querySelectorAll('.q-field__bottom')].map(e => getComputedStyle(e).fontSize)")
    assert sizes and all(float(size.removesuffix("px")) >= 14 for size in sizes), sizes
    open_menu(page, "a11y-visit-menu-open")

    # Each problem is a link; following it puts focus in its field, in view below the header.
    summary.get_by_role("link", name="Write what you saw and heard").click()
    focused = "[document.activeElement.tagName, document.activeElement.closest('[data-field]')?.dataset.field]"
    assert page.evaluate(focused) == ["TEXTAREA", "observations"]
    field = page.get_by_label("Observations (fact)").bounding_box()
    assert header_bottom <= field["y"] <= 740
    summary.get_by_role("link", name="Say whether you saw the child's bedroom").click()
    assert page.evaluate(focused)[1] == "bedroom_seen"


def test_what_is_due_comes_before_the_childs_details(page, live_server: LiveServer) -> None:
    _, child_id = ben_and_child(live_server)
    sign_in(page, "ben")
    page.goto(f"/child/{child_id}")
    due = page.get_by_role("heading", name="What is due")
    details = page.get_by_role("heading", name="Who the child is")
    details.wait_for()
    assert due.bounding_box()["y"] < details.bounding_box()["y"]
    assert due.bounding_box()["y"] < 740  # on the first screen, without scrolling


def test_a_manager_lands_on_the_team_with_the_menu_open(page, live_server: LiveServer) -> None:
    sign_in(page, "amara")
    page.get_by_role("heading", name="Team dashboard").wait_for()
    assert page.url.endswith("/team")
    check_screen(page, "a11y-team")
    open_menu(page, "a11y-team-menu-open")
    page.goto("/audit")
    page.locator("[data-seq]").first.wait_for()
    check_screen(page, "a11y-team-audit-trail")
