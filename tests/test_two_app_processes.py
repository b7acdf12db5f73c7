"""Two hosted app processes (`seen run`) on one PostgreSQL and one Redis, as the README's hosting section has them.

A worker signs in through one process and carries on through the other (NiceGUI's sessions live in Redis,
not in either process); a draft the phone sends through both is held once; and the alert scheduler, running
in both, sends each alert once. Each process keeps its own data directory, so nothing is shared by files.
"""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from storage import push_delivery
from storage.demo import create_demo
from storage.models import Child, PushDelivery, Visit, Worker
from storage.store import Store
from storage.timescales.calendar import today_in_england
from tests.browser_support import PHONE, LiveServer, running_server, wait_connected
from tests.push_service import Device, PushService
from tests.support import SERVER_KEY, postgres_reachable, postgres_schema, unavailable

REDIS = ("127.0.0.1", 6379)


def redis_reachable() -> str | None:
    """None if Redis answers a PING at 127.0.0.1:6379, else the reason it does not."""
    try:
        with socket.create_connection(REDIS, timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            if connection.recv(16).startswith(b"+PONG"):
                return None
            return "Redis at 127.0.0.1:6379 did not answer PING"
    except OSError as e:
        return f"Redis is not reachable at 127.0.0.1:6379: {e.__class__.__name__}"


def forget_sessions(prefix: str) -> None:
    """Deletes the test's session keys from Redis."""
    import redis

    client = redis.Redis(*REDIS)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class TwoApps:
    def __init__(self, first: LiveServer, second: LiveServer, url: str, push: PushService, phone: Device) -> None:
        self.first, self.second, self.url, self.push, self.phone = first, second, url, push, phone

    def store(self) -> Store:
        store = Store.open(self.url, outbox=False)
        store.unlock_with_server_key(SERVER_KEY)
        return store


@pytest.fixture
def two_apps(tmp_path: Path) -> Iterator[TwoApps]:
    for reason in (postgres_reachable(), redis_reachable()):
        if reason:
            unavailable(reason)
    prefix = f"seen-test-{uuid.uuid4().hex[:12]}:"
    with ExitStack() as stack:
        url = stack.enter_context(postgres_schema())
        push = PushService()
        stack.callback(push.close)
        # The store made and filled before either process starts, Ben's phone subscribed to alerts: both
        # schedulers then find the same work at their first run, five seconds after they start.
        store = Store.open(url, outbox=False)
        store.initialise_with_server_key(SERVER_KEY)
        create_demo(store, today_in_england())
        phone = Device(push, "ben-phone")
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        push_delivery.subscribe(store, ben.id, phone.subscription())
        store.engine.dispose()
        env = {"SEEN_DATABASE_URL": url, "SEEN_SERVER_KEY": base64.b64encode(SERVER_KEY).decode(),
               "NICEGUI_REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0", "NICEGUI_REDIS_KEY_PREFIX": prefix,
               "SEEN_SCHEDULER_MINUTES": "1", "SEEN_NOTIFY_HOURS": "0-24", "SEEN_PUSH_ALLOW_LOOPBACK": "1"}
        stack.callback(forget_sessions, prefix)
        first = stack.enter_context(running_server(tmp_path / "first", **env))
        second = stack.enter_context(running_server(tmp_path / "second", **env))
        yield TwoApps(first, second, url, push, phone)


@pytest.fixture
def phone_page(browser: object, two_apps: TwoApps) -> Iterator[object]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    yield context.new_page()
    context.close()


def test_a_worker_signs_in_through_one_process_and_carries_on_through_the_other(
        phone_page: object, two_apps: TwoApps) -> None:
    page = phone_page
    first, second = two_apps.first.url, two_apps.second.url
    page.goto(f"{second}/")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").wait_for()  # type: ignore[attr-defined]  # nobody signed in yet

    page.goto(f"{first}/login")  # type: ignore[attr-defined]
    wait_connected(page)
    page.get_by_label("Username").fill("ben")  # type: ignore[attr-defined]
    page.get_by_label("Password").fill("seen-demo")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="My caseload").wait_for()  # type: ignore[attr-defined]

    # The other process has never seen this browser: it knows Ben from the session Redis keeps.
    page.goto(f"{second}/")  # type: ignore[attr-defined]
    page.get_by_role("heading", name="My caseload").wait_for()  # type: ignore[attr-defined]
    assert page.get_by_role("button", name="Sign in").count() == 0  # type: ignore[attr-defined]

    # A draft the phone sends through one process and again through the other (its answer was lost) is held once.
    store = two_apps.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            child_id = session.exec(select(Child.id).where(Child.worker_id == ben.id, Child.category == "cic")
                                    .order_by(Child.id)).first()
    finally:
        store.engine.dispose()
    key = str(uuid.uuid4())
    yesterday = (today_in_england() - timedelta(days=1)).isoformat()
    fields = {"visit_date": yesterday, "visit_time": "10:00", "location": "placement", "seen": "yes",
              "seen_alone": "yes", "bedroom_seen": "yes", "observations": f"Sent twice {key}", "child_words": "Fine."}
    send = """async ([key, childId, fields]) => {
      const r = await fetch('/api/offline/drafts', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ idempotency_key: key, kind: 'visit', child_id: childId, fields }) });
      return [r.status, await r.json()];
    }"""
    answers = []
    for origin in (first, second):
        page.goto(f"{origin}/")  # type: ignore[attr-defined]
        page.get_by_role("heading", name="My caseload").wait_for()  # type: ignore[attr-defined]
        answers.append(page.evaluate(send, [key, child_id, fields]))  # type: ignore[attr-defined]
    assert [status for status, _ in answers] == [200, 200], answers
    assert answers[0][1]["record_id"] == answers[1][1]["record_id"]
    store = two_apps.store()
    try:
        with store.session() as session:
            ours = [v for v in (store.opened(v) for v in session.exec(select(Visit).where(Visit.child_id == child_id)))
                    if key in (v.observations or "")]
    finally:
        store.engine.dispose()
    assert len(ours) == 1 and ours[0].id == answers[0][1]["record_id"]

    # Signing out through the second process signs the browser out of both.
    page.goto(f"{second}/logout")  # type: ignore[attr-defined]
    page.goto(f"{first}/")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").wait_for()  # type: ignore[attr-defined]


def test_the_alert_scheduler_sends_each_alert_once_with_two_processes_running(two_apps: TwoApps) -> None:
    """Both processes run the scheduler, five seconds after they start; each alert reaches Ben's phone once."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not two_apps.push.to(two_apps.phone.path):
        time.sleep(0.5)
    time.sleep(8)  # the other process's first run, and any second send, would have come by now
    store = two_apps.store()
    try:
        with store.session() as session:
            queued = list(session.exec(select(PushDelivery)))
    finally:
        store.engine.dispose()
    received = two_apps.push.to(two_apps.phone.path)
    assert received, "no alert reached Ben's phone: neither scheduler ran"
    assert queued and all(d.delivered_at is not None for d in queued)
    titles = [two_apps.phone.decrypt(r)["title"] for r in received]
    assert len(received) == len(queued), f"an alert was sent twice: {titles}"
    assert len(set(titles)) == len(titles), f"the same alert came twice: {titles}"
