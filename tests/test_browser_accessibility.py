"""WCAG 2.2 AA (axe-core) at a phone's size on the screens around the worker's own: sign in, the idle-locked
sign-in, a personal node's unlock screen (first time, and after a wrong passphrase), the offline page and
its visit form, the manager's sign-off queue and a visit waiting there, a child's audit trail, and the
administrator's screen with its revoke dialog.

Each is screenshotted under test-output/, must not scroll sideways or put anything outside the screen, and
axe-core must find no serious or critical violation on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from storage.models import Child, Device, Visit, Worker
from tests.browser_support import (
    PHONE,
    LiveServer,
    axe_problems,
    check_screen,
    running_server,
    sign_in,
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

    # While a request is under way Quasar shows its loading bar: a progressbar, which needs a name.
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
    page.get_by_text("Return to the worker instead").click()
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
