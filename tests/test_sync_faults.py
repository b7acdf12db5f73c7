"""The sync server is SIGKILLed at random points during pushes and pulls: nothing is lost or held twice.

Two real server processes on one PostgreSQL, forked from a zygote so each restart is quick. The number
of kills comes from SEEN_FAULT_SIZE: "small" (the default) kills 50 times, "full" 200.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pwa.sync.client import Phase, SyncClient
from storage.sync import devices
from storage.sync import node as sync_node
from tests.browser_support import free_port
from tests.support import postgres_reachable, postgres_schema, unavailable
from tests.sync_support import (
    FaultRounds,
    alive,
    new_store,
    seed,
    server_store,
    zygote,
)

pytestmark = pytest.mark.postgres
KILLS = {"small": 50, "full": 200}[os.environ.get("SEEN_FAULT_SIZE", "small")]


def wait_dead(pid: int) -> None:
    """Until the SIGKILLed server `pid` has died (a zombie its zygote has not reaped yet counts as dead)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.005)
    raise AssertionError(f"the server {pid} did not die within 10 s of SIGKILL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    reason = postgres_reachable()
    if reason:
        unavailable(reason)
    with postgres_schema() as url:
        new_store(url).engine.dispose()
        yield url


def test_server_killed_at_random_holds_every_change_exactly_once(pg_url: str, tmp_path: Path):
    server = server_store(pg_url)
    caseload = seed(server, suffix="-" + uuid.uuid4().hex[:6])
    rng = random.Random(20261123)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    with zygote(pg_url, tmp_path / "servers") as forks:
        pids = [forks.spawn(p) for p in ports]
        clients = []
        for username in ("ben", "amara"):
            node = new_store(f"sqlite:///{tmp_path / f'{username}.db'}")
            code = devices.issue_enrolment_code(server, caseload.workers[username], caseload.workers["admin"])
            http = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
            client = SyncClient(node, http=http, urls=urls, batch_size=3, page_size=4, rng=random.Random(username))
            client.enrol(urls[0], code, username)
            assert client.sync_once().phase == Phase.idle
            clients.append((username, client))

        rounds = FaultRounds(caseload)
        for round_ in range(KILLS):
            rounds.write(clients, rng, round_, visits=(1, 3))
            syncing = [threading.Thread(target=c.sync_once) for _, c in clients]
            for thread in syncing:
                thread.start()
            victim = rng.randrange(2)
            threading.Event().wait(rng.uniform(0.0, 0.25))  # somewhere in a push or a pull
            os.kill(pids[victim], signal.SIGKILL)
            # Back on its port as soon as it is dead (its socket closes as it dies), while the syncs still under
            # way carry on: they may reach the new server too, as a device does when a server comes back.
            wait_dead(pids[victim])
            pids[victim] = forks.spawn(ports[victim])
            for thread in syncing:
                thread.join(60)

        for _ in range(3):
            for _, client in clients:
                assert client.sync_once().phase == Phase.idle
        for _, client in clients:  # every change left the outbox: pushed and acknowledged
            assert sync_node.sync_status(client.store).waiting == 0
            assert sync_node.sync_status(client.store).refused == 0

    rounds.assert_each_held_once(server, clients)
    server.engine.dispose()
