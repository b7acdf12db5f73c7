"""Child mode in Debian's chromium at a phone's size (360x740): the worker hands the phone over in Welsh, the
child's screen reads aloud in Welsh, axe-core finds nothing on it, and leaving without the worker fails."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from storage.child_voice import blank_statement_form, submit_statement
from storage.models import Child, Worker, utcnow
from storage.signs_of_safety import safety_scores
from storage.visits import blank_form, submit_visit
from tests.browser_support import (
    LiveServer,
    ben_and_child,
    check_screen,
    sign_in,
    wait_connected,
    wait_for_worker,
)

pytestmark = pytest.mark.browser


def test_handing_over_in_welsh_and_leaving_only_with_the_worker(page, context, live_server: LiveServer) -> None:
    _, child_id = ben_and_child(live_server)
    sign_in(page, "ben")
    page.goto(f"/child/{child_id}")
    wait_connected(page)
    page.get_by_role("button", name="Hand to the child").click()
    page.get_by_label("The child's language").click()
    page.get_by_role("option", name="Cymraeg").click()
    page.get_by_label("A PIN to take it back").fill("2468")
    page.get_by_role("button", name="Hand over").click()
    page.wait_for_url("**/child-mode")
    page.get_by_role("heading", name="Dy le di").wait_for()
    page.get_by_role("button", name="Dydw i ddim yn teimlo'n ddiogel").wait_for()
    wait_connected(page)
    check_screen(page, "a11y-child-mode-welsh")
    # Every target the child taps is at least 48 px each way.
    small = page.evaluate("""[...document.querySelectorAll('main button')].filter(b => {
        const r = b.getBoundingClientRect(); return r.width && (r.width < 48 || r.height < 48);
      }).map(b => b.textContent)""")
    assert small == []
    assert page.get_by_role("button", name="Menu").count() == 0

    # Read aloud: the browser's speech synthesis, in Welsh, says the words on the screen.
    page.evaluate("() => { window.speechSynthesis.speak = (u) => { window.seenSaid = [u.lang, u.text]; }; }")
    page.get_by_role("button", name="Darllen yn uchel").click()
    page.wait_for_function("window.seenSaid !== undefined")
    lang, said = page.evaluate("window.seenSaid")
    assert lang == "cy" and "Sut wyt ti'n teimlo gartref?" in said

    # With no signal the service worker serves the offline page in place of the child's screen: the child's own
    # screens, in Welsh (from the same .po file), never the worker's drafts or the caseload.
    wait_for_worker(page)
    context.set_offline(True)
    page.goto("/child-mode")
    page.get_by_role("heading", name="Dy le di").wait_for()
    page.get_by_text("Dim signal.").wait_for()
    page.get_by_role("heading", name="Sut wyt ti'n teimlo gartref?").wait_for()
    page.get_by_role("button", name="Dydw i ddim yn teimlo'n ddiogel").wait_for()
    assert page.evaluate("document.getElementById('seen-child-step').lang") == "cy"
    assert page.get_by_role("button", name="Start a new visit").is_hidden()
    check_screen(page, "a11y-child-mode-offline")
    page.get_by_role("button", name="Nesaf").click()
    page.get_by_role("heading", name="Fy Nhri Thŷ").wait_for()
    page.get_by_role("button", name="Llun o fy narlun").first.wait_for()
    check_screen(page, "a11y-child-mode-offline-three-houses")
    context.set_offline(False)

    # No way to the record, the caseload or another child while the child has the phone.
    for path in ("/", f"/child/{child_id}", "/settings"):
        page.goto(path)
        page.wait_for_url("**/child-mode")
        page.get_by_role("heading", name="Dy le di").wait_for()
    wait_connected(page)

    page.get_by_role("button", name="Hapus iawn").first.click()
    page.get_by_role("button", name="I dy weithiwr").click()
    page.get_by_label("Your PIN or password").fill("1357")
    page.get_by_role("button", name="Take it back").click()
    page.get_by_text("That is not your worker's PIN or password").wait_for()
    check_screen(page, "a11y-child-mode-leave-refused", within=".q-dialog")
    page.get_by_role("button", name="Cancel").click()
    page.goto("/")
    page.wait_for_url("**/child-mode")

    wait_connected(page)
    page.get_by_role("button", name="Nesaf").click()  # each of the child's screens, as axe-core sees it
    page.get_by_role("heading", name="Fy Nhri Thŷ").wait_for()
    check_screen(page, "a11y-child-mode-three-houses")
    page.get_by_role("button", name="Nesaf").click()
    page.get_by_role("heading", name="Beth wyt ti eisiau i'r barnwr ei wybod?").wait_for()
    check_screen(page, "a11y-child-mode-tell")
    page.get_by_label("Ysgrifenna yma, neu dywed wrth dy weithiwr").last.fill("Rydw i eisiau aros yma")
    page.get_by_role("button", name="Anfon").click()
    page.get_by_text("Diolch. Rho'r ffôn yn ôl i dy weithiwr.").wait_for()
    check_screen(page, "a11y-child-mode-thanks")

    page.get_by_role("button", name="I dy weithiwr").click()
    page.get_by_label("Your PIN or password").fill("2468")
    page.get_by_role("button", name="Take it back").click()
    page.wait_for_url(re.compile(rf".*/child/{child_id}$"))
    page.get_by_role("button", name="Hand to the child").wait_for()
    page.wait_for_function("localStorage.getItem('seen-child-mode') === null")  # the offline page is the worker's again


def test_the_safety_chart_and_a_childs_statement_on_the_child_page(page, live_server: LiveServer) -> None:
    store = live_server.store()
    try:
        with store.session() as session:
            erin = session.exec(select(Worker).where(Worker.username == "erin")).one()
            children = list(session.exec(select(Child.id).where(Child.worker_id == erin.id, Child.category == "cp")
                                         .order_by(Child.id)))
        child_id = next(c for c in children if safety_scores(store, erin, c).days)  # one with scored visits
        submit_statement(store, erin, child_id, blank_statement_form() | {
            "feeling_home": "2", "worries": "Dad shouting", "tell_iro": "I want to see my brother more"})
        submit_visit(store, erin, child_id, blank_form(utcnow() - timedelta(hours=2)) | {
            "seen_alone": "yes", "observations": "Calm at home.", "child_words": "Dad was nicer.",
            "safety_goals": [{"danger": "Dad shouts at Sam when he drinks.", "goal": "Dad stays sober at home.",
                              "worker": 4, "parent": 7, "child": 3}]})
    finally:
        store.engine.dispose()
    sign_in(page, "erin")
    page.goto(f"/child/{child_id}")
    page.get_by_role("heading", name="Safety scores over time (Signs of Safety)").wait_for()
    page.get_by_text("I want to see my brother more").first.wait_for()
    page.locator("canvas").first.wait_for()
    # Each worry and safety goal has its chart and the same scores as a table a screen reader reads as one.
    page.get_by_role("heading", name="Worry 1: Dad shouts at Sam when he drinks.").wait_for()
    table = page.get_by_role("table", name=re.compile("Scores for worry 1"))
    table.get_by_role("columnheader", name="Parent or carer").wait_for()
    assert table.get_by_role("row").nth(1).get_by_role("cell").all_inner_texts() == ["4", "7", "3"]
    check_screen(page, "a11y-child-safety-chart-and-statement")
