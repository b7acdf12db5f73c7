"""Push in a real browser: the service worker shows a pushed alert, and tapping it opens the child's page.

The push message is delivered to the service worker through the DevTools protocol
(ServiceWorker.deliverPushMessage), as a push service would deliver it; Debian's chromium has no push
service of its own to subscribe to.
"""

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import select

from storage.models import Child, Worker
from tests.browser_support import LiveServer, sign_in

pytestmark = pytest.mark.browser


def bens_child(live_server: LiveServer) -> tuple[str, str]:
    store = live_server.store()
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        child = session.exec(select(Child).where(Child.worker_id == ben.id)).first()
        assert child is not None
        initials = store.opened(child).body.initials
    store.engine.dispose()
    return child.id, initials


def test_a_pushed_alert_is_shown_and_tapping_it_opens_the_childs_page(page, context, live_server: LiveServer) -> None:
    context.grant_permissions(["notifications"], origin=live_server.url)
    sign_in(page, "ben")
    page.wait_for_function("navigator.serviceWorker.ready.then(() => true)", timeout=30_000)
    if not page.evaluate("navigator.serviceWorker.controller !== null"):
        # The worker activated while the page was loading: the next load is the one it controls.
        page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
    child_id, initials = bens_child(live_server)

    registrations: list[dict] = []
    cdp = context.new_cdp_session(page)
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.time() + 10
    while not [r for r in registrations if not r["isDeleted"]] and time.time() < deadline:
        page.wait_for_timeout(100)
    registration = next(r for r in registrations if not r["isDeleted"])

    payload = {"title": f"Visit due today — {initials}", "body": "Due today. Tap to open.",
               "url": f"/child/{child_id}", "tag": "t1", "child": child_id, "clock": "cic_visit",
               "due": "2026-11-23", "stage": "due_today"}
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": live_server.url, "registrationId":
                                                  registration["registrationId"], "data": json.dumps(payload)})
    shown = None
    deadline = time.time() + 15
    while not shown and time.time() < deadline:
        page.wait_for_timeout(100)
        shown = page.evaluate("""async () => {
            const registration = await navigator.serviceWorker.ready;
            const shown = await registration.getNotifications();
            return shown.map(n => ({title: n.title, body: n.body, url: n.data.url}));
        }""")
    assert shown == [{"title": f"Visit due today — {initials}", "body": "Due today. Tap to open.",
                      "url": f"/child/{child_id}"}]

    # The tap: the worker's notificationclick path, run on the notification that is showing. The open
    # Seen window is taken to the child's page rather than a second window opened.
    worker = context.service_workers[0]
    worker.evaluate("""async () => {
        const [notification] = await self.registration.getNotifications();
        notification.close();
        await self.seenPushOpen(notification.data.url);
    }""")
    page.wait_for_url(f"**/child/{child_id}", timeout=15_000)
    assert len(context.pages) == 1
    page.wait_for_function("async () => (await (await navigator.serviceWorker.ready).getNotifications()).length === 0")
