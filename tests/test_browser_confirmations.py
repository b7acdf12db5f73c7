"""Dates and confirmations in a real browser at a phone's size (360x740): a visit dated before the child's birth
is refused with its message; submitting a visit and signing one off each land on a confirmation saying what was
saved and what comes next (axe-core finds no serious problem on it); the header says nothing, not "Offline",
while a page loading online connects, and stays one row tall with a long status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import col, select

from storage.models import Child, RecordStatus, Visit, Worker
from storage.record_dates import case_dates, shown
from tests.browser_support import (
    PHONE,
    LiveServer,
    check_screen,
    running_server,
    sign_in,
    wait_connected,
    wait_for_caseload_copy,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[LiveServer]:
    # One server for the module: each test works on its own child, so they do not meet.
    with running_server(tmp_path_factory.mktemp("confirmations") / "server", demo=demo_template) as live:
        yield live


@pytest.fixture
def phone(browser: object, server: LiveServer) -> Iterator[object]:
    context = browser.new_context(viewport=PHONE, base_url=server.url, service_workers="allow",  # type: ignore[attr-defined]
                                  is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def bens_children(server: LiveServer) -> list[tuple[Child, str, date | None]]:
    """Ben's children in care: (child, name, date of birth)."""
    store = server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            children = list(session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic")
                                         .order_by(col(Child.id))))
            return [(c, store.opened(c).body.name, case_dates(store, c).born) for c in children]
    finally:
        store.engine.dispose()


def visits(server: LiveServer, child_id: str) -> list[Visit]:
    store = server.store()
    try:
        with store.session() as session:
            return list(session.exec(select(Visit).where(Visit.child_id == child_id)))
    finally:
        store.engine.dispose()


def group(page, field: str):  # noqa: ANN201
    return page.locator(f'[data-field="{field}"]')


def fill_visit(page, name: str) -> None:  # noqa: ANN001
    page.get_by_role("heading", name=f"Visit to {name}").wait_for()
    group(page, "seen_alone").get_by_role("radio", name="Yes").click()
    group(page, "bedroom_seen").get_by_role("radio", name="Yes").click()
    page.get_by_label("Observations (fact)").fill("Room tidy; the child showed me a drawing.")
    page.get_by_label("In the child's own words").fill("I like it here.")


def test_a_visit_dated_before_birth_is_refused_with_its_message(phone, server: LiveServer) -> None:
    child, name, born = bens_children(server)[0]
    assert born is not None
    before = len(visits(server, child.id))
    sign_in(phone, "ben")
    phone.goto(f"/child/{child.id}/visit")
    fill_visit(phone, name)
    date_input = phone.locator("#visit-visit_date")
    assert date_input.get_attribute("min") == born.isoformat()  # the picker offers nothing before birth
    assert date_input.get_attribute("max")  # nor anything after today
    date_input.fill("1995-01-01")
    phone.get_by_role("button", name="Submit visit").click()
    message = f"The visit date (1 Jan 1995) is before the child's date of birth ({shown(born)})"
    phone.get_by_text(message).first.wait_for()
    assert phone.get_by_role("alert").filter(has_text=message).count() == 1  # in the summary read out at once
    assert phone.url.endswith(f"/child/{child.id}/visit")  # still on the form, nothing lost
    assert len(visits(server, child.id)) == before


def test_after_submitting_a_visit_the_worker_sees_what_was_saved_and_the_next_due_date(
        phone, server: LiveServer) -> None:
    child, name, _ = bens_children(server)[1]
    sign_in(phone, "ben")
    phone.goto(f"/child/{child.id}/visit")
    fill_visit(phone, name)
    day = date.fromisoformat(phone.locator("#visit-visit_date").input_value())
    phone.get_by_role("button", name="Submit visit").click()
    phone.get_by_role("heading", name="Visit recorded").wait_for()
    panel = phone.locator('[data-panel="confirmation"]')
    assert f"for {name}" in panel.inner_text()
    assert panel.bounding_box()["y"] < 200  # at the top of the screen, not scrolled out of sight
    facts = phone.locator('[data-facts="saved"]').inner_text()
    assert name in facts and "Seen alone" in facts and f"{day:%-d %b %Y}" in facts
    due = phone.locator('[data-next-due="1"]')
    assert due.is_visible()
    due_text = due.inner_text()
    assert "Next visit due: " in due_text
    assert "Why: " in due_text and shown(day) in due_text  # the rule counts from the visit just recorded
    assert due.bounding_box()["y"] + due.bounding_box()["height"] <= PHONE["height"]  # in sight without scrolling
    check_screen(phone, "visit-recorded")
    phone.get_by_role("link", name=f"Back to {name}'s page").click()
    phone.get_by_role("heading", name="Timeline").wait_for()
    [visit] = [v for v in visits(server, child.id) if v.status == RecordStatus.submitted.value
               and v.seen_alone and v.visited_at.date() == day] or [None]
    assert visit is not None


def test_after_a_sign_off_the_manager_sees_what_was_signed_off_and_the_next_in_the_queue(
        phone, server: LiveServer) -> None:
    store = server.store()
    try:
        with store.session() as session:
            amara = session.exec(select(Worker).where(Worker.username == "amara")).one()
            teams = store.managed_team_ids(session, amara)
            waiting = list(session.exec(select(Visit).join(Child).where(
                Visit.status == RecordStatus.submitted.value, col(Child.team_id).in_(teams),
                Visit.worker_id != amara.id).order_by(col(Visit.submitted_at), col(Visit.visited_at))))
            names = {v.id: store.opened(session.get(Child, v.child_id)).body.name for v in waiting}
    finally:
        store.engine.dispose()
    assert waiting, "the demo leaves visits waiting for Amara's sign-off"
    first = waiting[0]
    sign_in(phone, "amara")
    phone.goto(f"/signoff/{first.id}")
    phone.get_by_label("Management oversight note").fill("Good analysis; contact plan agreed.")
    phone.get_by_role("button", name="Sign off").click()
    phone.get_by_role("heading", name="Visit signed off").wait_for()
    assert f"for {names[first.id]}" in phone.locator('[data-panel="confirmation"]').inner_text()
    assert "Amara Okafor" in phone.locator('[data-facts="saved"]').inner_text()
    if len(waiting) > 1:
        nxt = phone.get_by_role("link", name="Read next: ")
        assert nxt.get_attribute("href") == f"/signoff/{waiting[1].id}"
        assert names[waiting[1].id] in nxt.inner_text()
    else:
        phone.get_by_text("Nothing else is waiting for sign-off.").wait_for()
    check_screen(phone, "signed-off")
    store = server.store()
    try:
        with store.session() as session:
            assert session.get(Visit, first.id).status == RecordStatus.signed_off.value
    finally:
        store.engine.dispose()


# Every text the header's status ever shows, from the moment the page starts to draw.
RECORD_STATUS = """
window.__statuses = [];
new MutationObserver(() => {
  const el = document.getElementById('seen-connection');
  if (!el) return;
  const seen = window.__statuses;
  if (seen[seen.length - 1] !== el.textContent) seen.push(el.textContent);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_the_header_says_nothing_until_it_knows_and_stays_one_row(phone, server: LiveServer) -> None:
    child, _, _ = bens_children(server)[2]
    sign_in(phone, "ben")
    phone.add_init_script(RECORD_STATUS)
    phone.goto(f"/child/{child.id}/wishes")
    status = phone.locator("#seen-connection")
    status.wait_for(state="attached")
    wait_connected(phone)
    phone.wait_for_function("document.getElementById('seen-connection').textContent === 'Online'")
    seen = phone.evaluate("window.__statuses")
    assert seen[0] == "" and "Offline" not in seen, seen  # never "Offline" while the page was online

    # A long status on a screen with a long title: one row, cut short, its full words still there.
    phone.evaluate("""async () => { const d = SeenDrafts.newDraft({kind: 'visit', childId: 'x', fields: {}});
                                    await SeenDrafts.saveDraft(d); }""")
    phone.wait_for_function("document.getElementById('seen-connection').textContent === 'Online · 1 draft waiting'")
    assert status.get_attribute("title").startswith("Online · 1 draft waiting")
    header = phone.locator("header").first
    title = header.get_by_role("heading", name="Wishes and feelings")
    tops = [box["y"] for box in (title.bounding_box(), status.bounding_box(),
                                 header.get_by_role("button", name="Menu").bounding_box())]
    assert max(tops) - min(tops) < 24, tops  # side by side, not wrapped onto a second row
    assert header.bounding_box()["height"] < 64
    assert status.bounding_box()["height"] < 24  # the status itself on one line
    phone.evaluate("""async () => { for (const d of await SeenDrafts.listDrafts()) await SeenDrafts.deleteDraft(d.id); }""")


def test_the_offline_pages_visit_is_refused_before_birth_and_confirmed_before_the_case_opened(
        phone, server: LiveServer) -> None:
    child, _, born = bens_children(server)[3]
    store = server.store()
    try:
        case = case_dates(store, child)
    finally:
        store.engine.dispose()
    assert born is not None and case.opened is not None
    early = case.opened.replace(day=1) if case.opened.day > 1 else case.opened.replace(year=case.opened.year - 1)
    sign_in(phone, "ben")
    wait_for_caseload_copy(phone)
    phone.goto("/offline")
    phone.get_by_role("heading", name="Seen · offline").wait_for()
    phone.get_by_role("button", name="Start a new visit").click()
    phone.get_by_label("Child", exact=True).select_option(child.id)
    confirm = phone.get_by_label("If the date is right though it is before the case opened, enter it again here")
    assert confirm.count() == 0  # asked only when the server asks
    assert phone.get_by_label("Date of the visit").get_attribute("max")  # no future day offered
    phone.get_by_label("Date of the visit").fill("1995-01-01")
    phone.get_by_role("group", name="Did you see the child alone?").get_by_label("Yes").check()
    phone.get_by_role("group", name="Did you see the child's bedroom?").get_by_label("Yes").check()
    phone.get_by_label("Observations (fact)").fill("Met at school.")
    phone.get_by_label("In the child's own words").fill("Fine thanks.")
    phone.get_by_role("button", name="Submit visit").click()
    phone.get_by_text(f"before the child's date of birth ({shown(born)})").first.wait_for()
    assert [v for v in visits(server, child.id) if v.visited_at.year == 1995] == []

    phone.get_by_role("button", name=re.compile("^Open draft: Visit")).click()
    phone.get_by_label("Date of the visit").fill(early.isoformat())
    phone.get_by_role("button", name="Submit visit").click()
    phone.get_by_text("is before the case opened").first.wait_for()
    phone.get_by_role("button", name=re.compile("^Open draft: Visit")).click()
    confirm.fill(early.isoformat())
    phone.get_by_role("button", name="Submit visit").click()
    for _ in range(100):
        if [v for v in visits(server, child.id) if v.visited_at.date() == early]:
            break
        phone.wait_for_timeout(200)
    assert len([v for v in visits(server, child.id) if v.visited_at.date() == early]) == 1
