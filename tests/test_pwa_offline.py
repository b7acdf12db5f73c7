"""The installable app in a real chromium at phone size: installable, a visit typed with no signal is
stored exactly once with every word (even when the link flaps mid-send), nothing typed sits in the
browser in plaintext, and a new deployment's service worker takes over with no stale page."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlmodel import select

from storage.models import Child, Visit, Worker
from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    READ_INDEXEDDB,
    LiveServer,
    screenshot,
    sign_in,
    wait_connected,
    wait_for_caseload_copy,
    wait_for_worker,
    wait_status,
)
from tests.support import unavailable

pytestmark = pytest.mark.browser

# Typed before the signal goes, and after: every word must arrive.
BEFORE = "Arrived at 4pm; the carer let me in and M was in the garden."
AFTER = "Later M showed me the new bike and talked about school."
WORDS = "I like it here but I miss my brother Tom, can I see him at Christmas?"
ANALYSIS = "Settled placement; sibling contact is the priority to raise at review."

def worker_version(page) -> str:
    return page.evaluate("""() => new Promise((ok) => {
        const channel = new MessageChannel();
        channel.port1.onmessage = (e) => ok(e.data.version);
        navigator.serviceWorker.controller.postMessage({type: 'seen-version'}, [channel.port2]);
    })""")


def a_cic_child(server: LiveServer) -> str:
    """One of ben's children in care (their visits also ask about the bedroom)."""
    store = server.store()
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        child = session.exec(select(Child).where(Child.category == "cic", Child.worker_id == ben.id)).first()
    store.engine.dispose()
    return child.id


def visits_with(server: LiveServer, child_id: str) -> list:
    store = server.store()
    with store.session() as session:
        visits = [store.opened(v) for v in session.exec(select(Visit).where(Visit.child_id == child_id))]
    store.engine.dispose()
    return visits


def ours(server: LiveServer, child_id: str) -> list:
    """The child's visits holding the words this test typed (the demo has visits of its own)."""
    return [v for v in visits_with(server, child_id) if WORDS in v.child_words]


def start_visit_and_go_offline(page, context, child_id: str) -> None:
    """Opens the visit form, answers the choices and types the first words online, then loses the signal."""
    sign_in(page, "ben")
    wait_for_worker(page)
    page.goto(f"/child/{child_id}/visit")
    page.get_by_label("Observations (fact)").wait_for()
    page.locator('[data-field="seen_alone"]').get_by_text("Yes").click()
    page.locator('[data-field="bedroom_seen"]').get_by_text("Yes").click()
    page.get_by_label("Observations (fact)").fill(BEFORE)
    wait_for_caseload_copy(page)  # the picker's copy is kept
    context.set_offline(True)  # the form is handed to the offline page, with every answer
    page.get_by_text("No signal. This visit is kept on this phone").wait_for()
    wait_status(page, "Offline · 1 draft waiting")
    page.get_by_label("Observations (fact)").fill(BEFORE + " " + AFTER)
    page.get_by_label("In the child's own words").fill(WORDS)
    page.get_by_label("Analysis (your professional opinion)").fill(ANALYSIS)
    page.evaluate("SeenOffline.keepNow()")


def finish_on_the_offline_page(page) -> None:
    """Reloads with no signal: the offline page reopens the draft; the worker checks it and submits."""
    page.reload()
    page.get_by_role("heading", name="Seen · offline").wait_for()
    page.get_by_role("button", name="Submit visit").wait_for()
    assert page.get_by_label("Observations (fact)").input_value() == BEFORE + " " + AFTER
    assert page.get_by_label("In the child's own words").input_value() == WORDS
    screenshot(page, "offline-draft-phone")
    page.get_by_role("button", name="Submit visit").click()
    wait_status(page, "Offline · 1 draft waiting")


def assert_stored_once(server: LiveServer, child_id: str) -> None:
    visits = ours(server, child_id)
    assert len(visits) == 1
    visit = visits[0]
    assert visit.observations == BEFORE + " " + AFTER
    assert visit.analysis == ANALYSIS
    assert visit.seen_alone is True and visit.bedroom_seen is True and visit.status == "submitted"


@pytest.fixture
def phone(live_server: LiveServer, tmp_path: Path) -> Iterator[object]:
    """A phone-sized chromium with a real profile on disk: installability is never reported in incognito."""
    if not Path(CHROMIUM).exists():
        unavailable("Debian's chromium is not installed (./test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=PHONE, base_url=live_server.url, service_workers="allow", is_mobile=True, has_touch=True)
        yield context
        context.close()


def test_chromium_reports_the_app_installable(phone, live_server: LiveServer) -> None:
    page = phone.pages[0] if phone.pages else phone.new_page()
    sign_in(page, "ben")
    wait_for_worker(page)
    cdp = phone.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == []
    assert manifest["url"].endswith("/manifest.webmanifest")

    # The installable parts are reachable without signing in; the worker is served for the whole scope.
    sw = httpx.get(f"{live_server.url}/sw.js")
    assert sw.status_code == 200 and sw.headers["service-worker-allowed"] == "/"
    assert "no-cache" in sw.headers["cache-control"]
    assert httpx.get(f"{live_server.url}/offline").status_code == 200
    for size, name in ((192, "maskable-192.png"), (512, "maskable-512.png"), (512, "icon-512.png")):
        image = Image.open(io.BytesIO(httpx.get(f"{live_server.url}/icons/{name}").content))
        assert image.size == (size, size)
    # The offline API answers only to a signed-in worker.
    assert httpx.get(f"{live_server.url}/api/offline/caseload").status_code == 401
    assert httpx.post(f"{live_server.url}/api/offline/drafts", json={}).status_code == 401
    # Another site cannot make a signed-in phone send a draft.
    assert httpx.post(f"{live_server.url}/api/offline/drafts", json={},
                      headers={"Origin": "https://evil.example"}).status_code == 403


def test_a_visit_typed_with_no_signal_is_stored_once_with_every_word(page, context, live_server: LiveServer) -> None:
    child_id = a_cic_child(live_server)
    start_visit_and_go_offline(page, context, child_id)

    # Nothing typed is in the browser's storage in plaintext, and the key cannot be read out.
    stored = page.evaluate(READ_INDEXEDDB)
    dump = repr(stored["stores"])
    assert len(stored["stores"]["drafts"]) == 1
    for words in (BEFORE, AFTER, WORDS, ANALYSIS, "brother", "garden", child_id):
        assert words not in dump
    assert stored["extractable"] is False and stored["exported"] == "refused"
    assert "initials" not in dump and "A.A." not in dump  # the picker's caseload is sealed too

    finish_on_the_offline_page(page)
    assert ours(live_server, child_id) == []  # not sent yet

    context.set_offline(False)
    wait_status(page, "Online")
    assert_stored_once(live_server, child_id)
    assert page.evaluate("SeenDrafts.counts()")["total"] == 0


def test_a_send_cut_off_after_the_server_stored_it_is_not_stored_twice(page, context, live_server: LiveServer) -> None:
    child_id = a_cic_child(live_server)
    start_visit_and_go_offline(page, context, child_id)
    finish_on_the_offline_page(page)

    attempts: list[int] = []
    cut_off: list[bool] = []  # set once the first attempt has been stored and its answer lost

    def flap(route) -> None:
        attempts.append(route.request.method == "POST")
        if len(attempts) == 1:
            # The server stores the visit, then the signal goes before the answer reaches the phone.
            route.fetch()
            context.set_offline(True)
            route.abort("internetdisconnected")
            cut_off.append(True)
            return
        route.continue_()

    context.route("**/api/offline/drafts", flap)
    context.set_offline(False)
    for _ in range(300):  # Playwright runs the route handler while the test waits in the browser
        if cut_off:
            break
        page.wait_for_timeout(100)
    assert cut_off, "the phone tried to send the draft, and the first attempt was cut off"
    assert len(ours(live_server, child_id)) == 1  # stored by the first, cut-off, attempt
    assert page.evaluate("SeenDrafts.counts()")["total"] == 1  # not acknowledged: still on the phone

    context.set_offline(False)
    wait_status(page, "Online", timeout=30000)
    assert len(attempts) >= 2
    assert_stored_once(live_server, child_id)


def test_a_new_deployment_takes_over_without_a_stale_page(page, live_server: LiveServer) -> None:
    sign_in(page, "ben")
    wait_for_worker(page)
    old = worker_version(page)
    assert page.locator('meta[name="seen-pwa-version"]').get_attribute("content") == old

    live_server.extra_env["SEEN_PWA_VERSION"] = "next-deployment"
    live_server.restart()
    # The open page reconnects to the new server, finds its old client gone and reloads: a fresh page, whose
    # new worker installs, activates at once and takes control.
    page.wait_for_function("(old) => document.querySelector('meta[name=seen-pwa-version]')?.content !== old",
                           arg=old, timeout=45000)
    new = page.locator('meta[name="seen-pwa-version"]').get_attribute("content")
    # The new worker precaches, activates and claims the page: within a minute (on a loaded two-core CI run, 30 s
    # was once not enough, and the failure could not say why: now it says what the registration holds).
    for _ in range(600):
        if page.evaluate("navigator.serviceWorker.controller !== null") and worker_version(page) == new:
            break
        page.wait_for_timeout(100)
    registration = page.evaluate("""navigator.serviceWorker.getRegistration().then((r) => r && {
        installing: r.installing?.state ?? null, waiting: r.waiting?.state ?? null, active: r.active?.state ?? null})""")
    assert worker_version(page) == new, registration
    assert new != old
    page.get_by_role("heading", name="My caseload").wait_for()
    # The old worker's caches go as the new one activates (controlled pages switch at its start, so wait).
    for _ in range(100):
        if page.evaluate("caches.keys()") == [f"seen-{new}"]:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("caches.keys()") == [f"seen-{new}"]


def test_a_page_away_longer_than_nicegui_default_comes_back_as_it_was(page, live_server: LiveServer) -> None:
    """reconnect_timeout is raised (90 s): a phone that drops its socket for a while keeps its page.

    (A form page hands its form to the offline page instead, test_browser_offline_handover.py: the caseload
    and its search stand for every other page.)"""
    sign_in(page, "ben")
    wait_connected(page)
    search = page.get_by_label("Search by name")
    search.fill("zz-no-such-child")
    page.get_by_text("No children match that name.").wait_for()
    page.evaluate("window.seenSamePage = true; window.socket.disconnect()")
    page.wait_for_timeout(6000)  # twice NiceGUI's default of 3 s, after which the page would be dropped
    page.evaluate("window.socket.connect()")
    page.wait_for_function("window.socket.connected")
    search.fill("")  # the page still answers
    page.get_by_text("No children match that name.").wait_for(state="hidden")
    assert page.evaluate("window.seenSamePage === true")  # not reloaded


def test_an_unchanged_script_is_not_sent_again(live_server: LiveServer) -> None:
    # On a weak signal each page load checks its scripts; one the browser holds already costs no bytes.
    first = httpx.get(f"{live_server.url}/pwa/seen-page.js", timeout=10)
    assert first.status_code == 200 and "SeenPage" in first.text
    assert first.headers["cache-control"] == "no-cache"  # always checked: a new release takes effect at once
    tag = first.headers["etag"]
    again = httpx.get(f"{live_server.url}/pwa/seen-page.js", headers={"If-None-Match": tag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    stale = httpx.get(f"{live_server.url}/pwa/seen-page.js", headers={"If-None-Match": '"an-older-release"'},
                      timeout=10)
    assert stale.status_code == 200 and stale.content == first.content
    assert httpx.get(f"{live_server.url}/pwa/..%2Fauth.py", timeout=10).status_code == 404
