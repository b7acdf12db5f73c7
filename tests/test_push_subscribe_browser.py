"""Turning notifications on and off from the settings screen, in a real browser against a real server.

What a worker depends on: tapping "Turn on notifications" asks the browser's permission, subscribes with
the server's VAPID key and hands the subscription to the server for the signed-in worker, so the server's
alerts reach this device; the section says where things stand, also after a reload; "Turn off" stops
them; and when the browser cannot or will not subscribe, the section says so and the server holds nothing.

Debian's headless chromium has no push service. In the test's browser context (off the record, like an
incognito window) `pushManager.subscribe` rejects at once with "AbortError: Registration failed -
permission denied", even with notifications allowed; in a persistent profile it had still not settled
after 40 seconds. The first test checks what a worker sees then. The others put a stand-in in place of
the browser's own push registration only (see `STAND_IN_PUSH_SERVICE`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from pwa import push
from storage import push_delivery
from storage.models import Child, PushSubscription, Worker
from storage.timescales.calendar import LONDON, today_in_england
from tests.browser_support import LiveServer, check_screen, running_server, sign_in
from tests.push_service import Device, PushService, check_vapid

pytestmark = pytest.mark.browser

ON = "Notifications are on for this device. You will hear when a visit or review is coming due."
OFF = "Notifications are off for this device."
BLOCKED = ("This browser is blocking notifications from Seen. Allow them in the browser's site settings, "
           "then turn them on here.")
FAILED = "Notifications could not be turned on: "
FAILED_OFF = "Notifications could not be turned off: "
PRIVATE_WINDOW = ("this browser window cannot receive them. A private or incognito window cannot; open Seen in an "
                  "ordinary window, or from your home screen, and turn them on there.")
WORKING = "Turning notifications on for this device…"

# The browser's own push registration, put in its place because headless chromium has none: subscribe
# hands back the subscription the test made (its endpoint is the test's loopback push service, its keys
# the test's, so the test can decrypt what arrives) and keeps it, as a browser would, until unsubscribe.
# Like chromium it refuses without notification permission or without userVisibleOnly and a key. It
# records the applicationServerKey the page passed, so the test can check it is the server's.
STAND_IN_PUSH_SERVICE = """
(() => {
  if (!('PushManager' in self) || location.protocol !== 'http:') return;
  const made = %s;
  const KEPT = 'test-push-application-server-key';
  const text = (key) => {
    if (typeof key === 'string') return key;
    const bytes = ArrayBuffer.isView(key) ? new Uint8Array(key.buffer, key.byteOffset, key.byteLength)
                                         : new Uint8Array(key);
    return btoa(String.fromCharCode(...bytes)).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  };
  const subscription = () => ({
    endpoint: made.endpoint,
    expirationTime: null,
    options: {userVisibleOnly: true, applicationServerKey: localStorage.getItem(KEPT)},
    toJSON: () => ({endpoint: made.endpoint, expirationTime: null, keys: made.keys}),
    unsubscribe: async () => { localStorage.removeItem(KEPT); return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    if (Notification.permission !== 'granted') {
      throw new DOMException('Registration failed - permission denied', 'NotAllowedError');
    }
    if (!options || !options.userVisibleOnly || !options.applicationServerKey) {
      throw new DOMException('Registration failed - missing applicationServerKey', 'AbortError');
    }
    localStorage.setItem(KEPT, text(options.applicationServerKey));
    return subscription();
  };
  PushManager.prototype.getSubscription = async function () {
    return localStorage.getItem(KEPT) === null ? null : subscription();
  };
})();
"""


@pytest.fixture
def live_server(tmp_path: Path, demo_template: Path) -> Iterator[LiveServer]:
    # The server's own scheduler stays off: the test sends at a moment it chooses, with the app's sending code.
    with running_server(tmp_path / "server", demo=demo_template, SEEN_SCHEDULER_MINUTES="0") as server:
        yield server


@pytest.fixture
def service() -> Iterator[PushService]:
    s = PushService()
    yield s
    s.close()


def section(page: object) -> object:
    return page.locator('[data-section="notifications"]')  # type: ignore[attr-defined]


def open_settings(page: object, says: str = OFF) -> None:
    """The settings screen, once the section has heard from the browser whether this device is subscribed."""
    page.goto("/settings")  # type: ignore[attr-defined]
    page.wait_for_function("navigator.serviceWorker.ready.then(() => true)", timeout=30_000)  # type: ignore[attr-defined]
    expect(section(page).get_by_role("status")).to_have_text(says, timeout=20_000)  # type: ignore[attr-defined]


def subscriptions_held(live_server: LiveServer) -> tuple[str, list[dict]]:
    """Ben's worker id, and every subscription the server's database holds (opened), whoever it is for."""
    store = live_server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            held = list(session.exec(select(PushSubscription)))
        return ben.id, [{"worker": s.worker_id} | push_delivery.open_subscription(store, s) for s in held]
    finally:
        store.engine.dispose()


def vapid_public_key(live_server: LiveServer) -> str:
    store = live_server.store()
    try:
        return push_delivery.public_key_b64url(push_delivery.vapid_private_key(store))
    finally:
        store.engine.dispose()


def run_the_scheduler_this_morning(live_server: LiveServer, worker_id: str) -> tuple[push.RunReport, set[str]]:
    """One run of the server's push scheduler at 9 am today, on the server's database with its VAPID key;
    and the ids of the worker's children, whom its alerts should be about."""
    store = live_server.store()
    sender = push.Sender(push_delivery.vapid_private_key(store), backoff=0.05)
    try:
        report = push.run_once(store, datetime.combine(today_in_england(), time(9, 0), LONDON), sender)
        with store.session() as session:
            children = {c.id for c in session.exec(select(Child).where(Child.worker_id == worker_id))}
        return report, children
    finally:
        sender.close()
        store.engine.dispose()


def test_without_a_push_service_the_worker_is_told_why_and_nothing_is_stored(
        page, context, live_server: LiveServer) -> None:
    context.grant_permissions(["notifications"], origin=live_server.url)
    sign_in(page, "ben")
    open_settings(page)
    page.get_by_role("button", name="Turn on notifications").click()

    status = section(page).get_by_role("status")
    # Chromium says "Registration failed - permission denied" though the worker has just allowed them: the
    # worker is told what that means (the test's context is off the record, like a private window).
    expect(status).to_have_text(FAILED + PRIVATE_WINDOW, timeout=20_000)
    expect(page.get_by_role("button", name="Turn on notifications")).to_be_visible()
    expect(page.get_by_role("button", name="Turn off notifications")).to_be_hidden()
    assert subscriptions_held(live_server)[1] == []


def test_while_the_browser_is_still_registering_the_worker_sees_it_is_under_way(
        page, context, live_server: LiveServer) -> None:
    """On a weak signal a browser's push registration can take a long time: after the tap, the section says it
    is turning them on (not silence, nor "off"), and nothing is stored until the browser has a subscription."""
    context.add_init_script("PushManager.prototype.subscribe = () => new Promise(() => {});")  # never settles
    context.grant_permissions(["notifications"], origin=live_server.url)
    sign_in(page, "ben")
    open_settings(page)
    page.get_by_role("button", name="Turn on notifications").click()
    expect(section(page).get_by_role("status")).to_have_text(WORKING, timeout=20_000)
    assert subscriptions_held(live_server)[1] == []


def test_turning_on_subscribes_this_device_for_the_worker_and_the_servers_alerts_reach_it(
        page, context, live_server: LiveServer, service: PushService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real here: the permission request, the page fetching the server's key and passing it to pushManager,
    the POSTs to the server, the server storing the subscription against the signed-in worker and sending
    to it (encrypted, VAPID-signed), the section's states and the status check after a reload, unsubscribe.
    Stood in: only the browser's own push registration (`STAND_IN_PUSH_SERVICE`), as headless chromium has
    no push service to register with."""
    monkeypatch.delenv("SEEN_NOTIFY_HOURS", raising=False)
    phone = Device(service, "ben-phone")
    context.add_init_script(STAND_IN_PUSH_SERVICE % json.dumps(phone.subscription()))
    context.grant_permissions(["notifications"], origin=live_server.url)
    status_checks: list[dict] = []
    page.on("request", lambda r: status_checks.append(r.post_data_json) if r.url.endswith("/api/push/status") else None)
    sign_in(page, "ben")
    open_settings(page)
    page.get_by_role("button", name="Turn on notifications").click()

    status = section(page).get_by_role("status")
    expect(status).to_have_text(ON, timeout=20_000)
    expect(page.get_by_role("button", name="Turn off notifications")).to_be_visible()
    expect(page.get_by_role("button", name="Turn on notifications")).to_be_hidden()
    ben, held = subscriptions_held(live_server)
    assert held == [{"worker": ben, "endpoint": phone.endpoint, "keys": phone.subscription()["keys"]}]
    # The key the page subscribed with is the one the server signs with.
    server_key = vapid_public_key(live_server)
    assert page.evaluate("localStorage.getItem('test-push-application-server-key')") == server_key
    assert page.evaluate("fetch('/api/push/key').then(r => r.json())") == {"publicKey": server_key}
    check_screen(page, "settings-notifications-on")

    # A morning's run of the server's scheduler reaches this device, readable with its keys only.
    report, bens_children = run_the_scheduler_this_morning(live_server, ben)
    received = service.to(phone.path)
    assert report.delivered == len(received) > 0 and report.failed == report.retry == 0
    for message in received:
        check_vapid(message, server_key, service.origin)
        alert = phone.decrypt(message)
        assert alert["child"] in bens_children and alert["url"] == f"/child/{alert['child']}"

    # After a reload the section asks the server, which still holds this device for ben.
    status_checks.clear()
    open_settings(page, says=ON)
    assert status_checks == [{"endpoint": phone.endpoint}]
    expect(page.get_by_role("button", name="Turn off notifications")).to_be_visible()

    # Turning off with no connection: nothing changes, and the section says it could not turn them off.
    page.route("**/api/push/unsubscribe", lambda route: route.abort("internetdisconnected"))
    page.get_by_role("button", name="Turn off notifications").click()
    expect(status).to_have_text(f"{FAILED_OFF}Seen could not reach the server. Check this device is online, then "
                                "try again.", timeout=20_000)
    expect(page.get_by_role("button", name="Turn off notifications")).to_be_visible()
    assert len(subscriptions_held(live_server)[1]) == 1
    page.unroute("**/api/push/unsubscribe")

    page.get_by_role("button", name="Turn off notifications").click()
    expect(status).to_have_text(OFF, timeout=20_000)
    expect(page.get_by_role("button", name="Turn on notifications")).to_be_visible()
    expect(page.get_by_role("button", name="Turn off notifications")).to_be_hidden()
    assert subscriptions_held(live_server)[1] == []
    assert page.evaluate("navigator.serviceWorker.ready.then(r => r.pushManager.getSubscription())") is None
    open_settings(page, says=OFF)


def test_when_the_browser_blocks_notifications_the_worker_is_told_and_nothing_is_stored(
        page, context, live_server: LiveServer, service: PushService) -> None:
    # No permission granted: headless chromium answers the permission request with "denied", as a worker
    # tapping "Block" would. The stand-in push service is there so only the permission can stop it.
    context.add_init_script(STAND_IN_PUSH_SERVICE % json.dumps(Device(service, "ben-phone").subscription()))
    sign_in(page, "ben")
    open_settings(page)
    page.get_by_role("button", name="Turn on notifications").click()

    expect(section(page).get_by_role("status")).to_have_text(BLOCKED, timeout=20_000)
    assert page.evaluate("Notification.permission") == "denied"
    expect(page.get_by_role("button", name="Turn on notifications")).to_be_visible()
    assert page.evaluate("navigator.serviceWorker.ready.then(r => r.pushManager.getSubscription())") is None
    assert subscriptions_held(live_server)[1] == []
    # The next visit says so straight away, before any tap.
    open_settings(page, says=BLOCKED)
