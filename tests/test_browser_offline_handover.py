"""A visit form opened online when the signal goes, in a real chromium at a phone's size (360x740).

The moment the page loses its connection, the form is handed to the offline page with every answer (the
Yes/No choices too), nothing covers it, and it says plainly that the visit will be sent when the signal
returns. Submit tapped twice, a reload and the signal coming back store the visit exactly once, with every
answer. A draft Seen refuses is shown on the caseload and the child's page with the reason and one tap to
the fields to fix; a copy whose key Seen already holds is let go; the header stays one row.
"""

from __future__ import annotations

import pytest

from tests.browser_support import (
    LiveServer,
    ben_and_child,
    check_screen,
    sign_in,
    visits_holding,
    wait_connected,
    wait_for_caseload_copy,
    wait_for_worker,
    wait_status,
    wait_until_phone_holds_no_drafts,
)

pytestmark = pytest.mark.browser

OBSERVATIONS = "Jay showed me the den he built under the stairs with his foster carer."
MORE = " He talked about his sister the whole time."
CHILD_WORDS = "I like it here but I miss Kayla."
WORRY = "Jay's dad shouts at him when he has been drinking."
HANDED = "No signal. This visit is kept on this phone"


def open_visit_form(page, child_id: str) -> None:
    """Signed in, the service worker and caseload copy in place, the visit form open and connected."""
    sign_in(page, "ben")
    wait_for_worker(page)
    wait_for_caseload_copy(page)
    page.goto(f"/child/{child_id}/visit")
    page.get_by_role("button", name="Submit visit").wait_for()
    wait_connected(page)


def tap(page, field: str, option: str) -> None:
    """Taps one option of a choice on the live form, and waits until the form shows it picked."""
    radio = page.locator(f'[data-field="{field}"]').get_by_role("radio", name=option, exact=True)
    radio.click()
    page.wait_for_function("(el) => el.getAttribute('aria-checked') === 'true'", arg=radio.element_handle())


def drop_signal(context, page) -> None:
    """The signal goes: the form is handed to the offline page, its draft open."""
    context.set_offline(True)
    page.get_by_text(HANDED).wait_for()


def group(page, name: str):
    return page.get_by_role("group", name=name)


def wait_kept(page) -> None:
    """Until the offline page says every edit is kept on the phone (what a worker sees before reloading)."""
    page.wait_for_function("document.getElementById('saved')?.dataset.state === 'saved'")


def test_a_visit_form_handed_over_when_the_signal_goes_is_stored_once_with_every_answer(
        page, context, live_server: LiveServer) -> None:
    _ben, child_id = ben_and_child(live_server)
    open_visit_form(page, child_id)
    tap(page, "seen_alone", "No")
    tap(page, "not_alone_reason", "The worker was unable to see the child alone")
    page.get_by_label("Observations (fact)").fill(OBSERVATIONS)
    page.get_by_role("button", name="Add a worry and its safety goal").click()
    page.get_by_label("Worried that…").fill(WORRY)
    page.get_by_label("What needs to happen…").fill("Dad comes to contact sober.")
    page.get_by_label("Child 0–10").fill("3")
    page.get_by_label("What needs to happen…").click()  # the score's field left: kept in the draft

    drop_signal(context, page)
    # Nothing covers the form: NiceGUI's "Connection lost" box is never shown.
    assert page.locator("#popup").count() == 0 or page.locator("#popup").is_hidden()
    assert group(page, "Did you see the child alone?").get_by_label("No").is_checked()
    assert page.get_by_label("If not alone, why not").input_value() == "unable"
    assert page.get_by_label("Observations (fact)").input_value() == OBSERVATIONS
    check_screen(page, "handover-visit-phone")

    # Every choice tapped with no signal, then Submit twice. Seen alone, the reason is no longer asked, as online.
    group(page, "Did you see the child alone?").get_by_label("Yes").check()
    page.get_by_label("If not alone, why not").wait_for(state="hidden")
    group(page, "Did you see the child's bedroom?").get_by_label("Yes").check()
    page.get_by_label("Where the visit took place").select_option("school")
    page.get_by_label("In the child's own words").fill(CHILD_WORDS)
    # The worry typed on the screen came over with its id (the offline page's rows take the same columns).
    assert page.get_by_label("Worried that… (1)").input_value() == WORRY
    assert page.get_by_label("Child 0–10 (1)").input_value() == "3"
    page.get_by_label("Parent or carer 0–10 (1)").fill("6")
    page.get_by_role("button", name="Submit visit").dblclick()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()

    page.reload()  # still no signal: the service worker's offline page, the visit on its way
    page.get_by_role("heading", name="Seen · offline").wait_for()
    page.get_by_text("Submitted: waiting to send").wait_for()
    assert visits_holding(live_server, child_id, OBSERVATIONS) == []

    context.set_offline(False)
    page.get_by_text("1 record sent to Seen and stored.").wait_for(timeout=30000)
    ours = visits_holding(live_server, child_id, OBSERVATIONS)
    assert len(ours) == 1
    visit = ours[0]
    assert visit.observations == OBSERVATIONS and visit.child_words == CHILD_WORDS
    assert visit.seen is True and visit.seen_alone is True and visit.bedroom_seen is True
    assert visit.location == "school" and visit.status == "submitted"
    assert [(g.danger, g.scores) for g in visit.safety_goals] == [(WORRY, {"child": 3, "parent": 6})]
    assert page.evaluate("SeenDrafts.listDrafts().then(ds => ds.map(d => [d.id, d.state, d.fields]))") == []


def test_the_signal_going_mid_typing_loses_nothing(page, context, live_server: LiveServer) -> None:
    _ben, child_id = ben_and_child(live_server)
    open_visit_form(page, child_id)
    page.get_by_label("Observations (fact)").click()
    page.keyboard.type(OBSERVATIONS)

    drop_signal(context, page)
    box = page.get_by_label("Observations (fact)")
    assert box.input_value() == OBSERVATIONS
    box.click()
    box.press("End")
    page.keyboard.type(MORE)
    group(page, "Did you see the child's bedroom?").get_by_label("No").check()
    wait_kept(page)

    page.reload()  # the draft reopens from the address, every word and answer in it
    assert page.get_by_label("Observations (fact)").input_value() == OBSERVATIONS + MORE
    assert group(page, "Did you see the child's bedroom?").get_by_label("No").is_checked()


def test_the_draft_takes_the_forms_submission_key(page, context, live_server: LiveServer) -> None:
    """A form that carries its submission key (the server holds one record per key) hands over under it."""
    _ben, child_id = ben_and_child(live_server)
    open_visit_form(page, child_id)
    key = page.evaluate("""() => {
      const form = document.querySelector('[data-submission-key]');
      if (form) return form.getAttribute('data-submission-key');
      const made = crypto.randomUUID();  // a page without keys yet: give the form one, as the server will
      document.querySelector('[data-field]').closest('.q-page, [role=main]').setAttribute('data-submission-key', made);
      return made;
    }""")
    drop_signal(context, page)
    assert page.evaluate("SeenDrafts.listDrafts().then(ds => ds.map(d => d.id))") == [key]
    assert f"draft={key}" in page.url


def header_height(page) -> float:
    return page.evaluate("document.querySelector('header, .q-header').getBoundingClientRect().height")


def test_a_refused_draft_is_shown_with_its_reason_and_fixed(page, context, live_server: LiveServer) -> None:
    _ben, child_id = ben_and_child(live_server)
    open_visit_form(page, child_id)
    page.get_by_label("Observations (fact)").fill(OBSERVATIONS)
    drop_signal(context, page)
    # Not alone, and no reason given: Seen will refuse it.
    group(page, "Did you see the child alone?").get_by_label("No").check()
    group(page, "Did you see the child's bedroom?").get_by_label("Yes").check()
    page.get_by_label("In the child's own words").fill(CHILD_WORDS)
    page.get_by_role("button", name="Submit visit").click()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()

    context.set_offline(False)
    page.get_by_text("Needs changes before Seen can take it").wait_for(timeout=30000)
    assert page.get_by_text("Submitted. It will be sent to Seen").count() == 0
    assert header_height(page) < 60, "the offline page's header wrapped at 360 px"
    assert visits_holding(live_server, child_id, OBSERVATIONS) == []

    # On the caseload and the child's page: the reason, and one tap to fix it.
    page.goto("/")
    banner = page.locator(".seen-refused")
    banner.get_by_text("Choose why the child was not seen alone").wait_for()
    wait_status(page, "Online · 1 to fix")
    assert header_height(page) < 60, "the header wrapped at 360 px"
    check_screen(page, "refused-draft-caseload-phone")
    page.goto(f"/child/{child_id}")
    banner.get_by_text("Choose why the child was not seen alone").wait_for()
    assert header_height(page) < 60, "the child page's header wrapped at 360 px"
    banner.get_by_role("link", name="Fix this visit").click()

    page.locator("#editor").get_by_text("Choose why the child was not seen alone").first.wait_for()
    # GOV.UK's error summary, as on the screens: focused, and each problem a link into its field.
    summary = page.locator("#editor .seen-error-summary")
    summary.get_by_role("heading", name="There is a problem").wait_for()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    summary.get_by_role("link", name="Choose why the child was not seen alone").click()
    assert page.evaluate("document.activeElement.id") == "f-not_alone_reason"
    page.get_by_label("If not alone, why not").select_option("refused")
    page.get_by_role("button", name="Submit visit").click()
    page.get_by_text("1 record sent to Seen and stored.").wait_for(timeout=30000)
    ours = visits_holding(live_server, child_id, OBSERVATIONS)
    assert len(ours) == 1 and ours[0].seen_alone is False and ours[0].not_alone_reason == "refused"
    page.goto("/")
    wait_status(page, "Online")
    assert page.locator(".seen-refused").count() == 0


def test_a_copy_seen_already_holds_is_let_go(page, context, live_server: LiveServer) -> None:
    """The same form stored under its key by another path: the phone's copy is stale and goes."""
    _ben, child_id = ben_and_child(live_server)
    sign_in(page, "ben")
    wait_for_caseload_copy(page)
    # Yesterday at 09:30: a visit "today at 09:30" would be in the future for a run before half past nine.
    page.evaluate("""async (childId) => {
      const draft = SeenDrafts.newDraft({ kind: 'visit', childId, fields: {
        visit_date: new Date(Date.now() - 86400000).toISOString().slice(0, 10), visit_time: '09:30', location: 'placement', seen: 'yes',
        seen_alone: 'yes', bedroom_seen: 'yes', observations: 'Held already', child_words: 'Fine.' } });
      const sent = await fetch('/api/offline/drafts', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ idempotency_key: draft.id, kind: 'visit', child_id: childId, fields: draft.fields }) });
      if (!sent.ok) throw new Error('not stored: ' + sent.status);
      await SeenDrafts.saveDraft(draft);  // the phone still keeps a copy, as if it had never heard back
    }""", child_id)
    assert page.evaluate("SeenDrafts.counts()")["total"] == 1
    page.reload()
    wait_until_phone_holds_no_drafts(page)
    assert len(visits_holding(live_server, child_id, "Held already")) == 1


def test_a_form_that_stays_on_its_page_is_never_covered(page, context, live_server: LiveServer) -> None:
    """The life-story form (it keeps photos on its page) stays put with no signal; nothing covers it."""
    _ben, child_id = ben_and_child(live_server)
    sign_in(page, "ben")
    wait_for_worker(page)
    page.goto(f"/child/{child_id}/life-story")
    page.get_by_text("The book so far").wait_for()
    wait_connected(page)
    context.set_offline(True)
    wait_status(page, "Offline · 1 draft waiting")
    page.wait_for_function("!window.socket.connected")
    assert page.locator("#popup").is_hidden()
    page.get_by_label("Title").fill("Still here")
    context.set_offline(False)
