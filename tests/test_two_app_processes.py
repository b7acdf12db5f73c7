"""Two `seen run` app processes on one PostgreSQL, sharing sessions through NiceGUI's Redis storage, as the
README's hosted deployment runs them behind a load balancer (issue 19, part 6).

A worker signs in through one process and carries on through the other; an offline draft sent through either
is held once. (That one process at a time runs the alert scheduler is its advisory lock's test, tests/test_push.py.)
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.browser_support import PHONE, LiveServer, sign_in
from tests.support import postgres_reachable, postgres_schema, unavailable
from tests.sync_support import server_store
from tests.test_offline_draft_photos_api import bens_child, held, life_story_draft

pytestmark = pytest.mark.postgres
REDIS_URL = os.environ.get("SEEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as e:
        return f"Redis is not reachable at {REDIS_URL}: {e}"
    return None


def test_a_worker_signs_in_through_one_process_and_carries_on_through_the_other(tmp_path: Path, browser):
    reason = postgres_reachable() or redis_reachable()
    if reason:
        unavailable(reason)
    import redis

    prefix = f"seen-test-{uuid.uuid4().hex[:8]}:"
    with postgres_schema() as url:
        env = {"SEEN_DATABASE_URL": url, "NICEGUI_REDIS_URL": REDIS_URL, "NICEGUI_REDIS_KEY_PREFIX": prefix,
               "SEEN_SCHEDULER_MINUTES": "0"}
        first, second = (LiveServer(tmp_path / name, extra_env=env) for name in ("first", "second"))
        context = None
        try:
            for server in (first, second):  # the first fills the empty database with the demo; the second finds it
                server.data_dir.mkdir()
                server.start()
            context = browser.new_context(viewport=PHONE, base_url=first.url, service_workers="block")
            page = context.new_page()
            sign_in(page, "ben")
            page.goto(f"{second.url}/")  # the load balancer sends the next request to the other process
            page.get_by_role("heading", name="My caseload").wait_for()
            assert page.url.startswith(second.url) and "/login" not in page.url

            store = server_store(url)
            child_id = bens_child(store)
            before = held(store, child_id)
            draft = life_story_draft(child_id, "key-two-processes-01", [])
            draft["fields"]["text"] = "We drew my family tree."
            answers = [context.request.post(f"{server.url}/api/offline/drafts", data=draft)
                       for server in (first, second)]
            assert [a.status for a in answers] == [200, 200], [a.text() for a in answers]
            assert answers[0].json()["record_id"] == answers[1].json()["record_id"]
            assert held(store, child_id) == (before[0] + 1, before[1])
            store.engine.dispose()
        finally:
            if context is not None:
                context.close()
            for server in (first, second):
                server.stop()
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
