"""A device sends its next batch while the server applies one (issue 19 part 5), only when that is safe.

Two batches in flight may be applied by the server in either order, so a batch that names a record of the
batch before it (a visit of a child it creates, a second edit of one record) waits for the answer first:
applied out of order, an edit would be judged to have crossed itself and logged as a conflict. Through the
real sync API on PostgreSQL; the device's requests pass a transport that counts how many are in flight.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from pwa.sync.client import Phase, SyncClient, refers_to
from storage.models import CarePlanAction, ChangeLog, Conflict, Visit
from storage.store import Store
from storage.sync import node as sync_node
from tests.sync_support import Caseload, SyncServer, add_visit, device, edit_action, new_store

pytestmark = pytest.mark.postgres


class CountingTransport(httpx.HTTPTransport):
    """The real transport, with each push held back a little on its way (a slow network), counting how
    many pushes are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.pushes = 0
        self.ports: set[int | None] = set()  # the servers pushed to

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/push"):
            return super().handle_request(request)
        with self.lock:
            self.now += 1
            self.pushes += 1
            self.ports.add(request.url.port)
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.3)
            return super().handle_request(request)
        finally:
            with self.lock:
                self.now -= 1


def laptop(server: Store, caseload: Caseload, server_url: str, tmp_path: Any, username: str,
           transport: CountingTransport) -> SyncClient:
    client = device(server, caseload, server_url, tmp_path, username)
    client.http = httpx.Client(transport=transport, timeout=httpx.Timeout(120.0, connect=10.0))
    client.batch_size = 5
    return client


def test_independent_batches_go_two_at_a_time_and_each_change_is_held_once(seeded, server_url, tmp_path):
    server, caseload = seeded
    transport = CountingTransport()
    ben = laptop(server, caseload, server_url, tmp_path, "ben", transport)
    visits = [add_visit(ben.store, caseload.children[("Alfie", "Bella")[i % 2]], caseload.workers["ben"],
                        f"Visit {i}") for i in range(23)]

    report = ben.sync_once()

    assert report.phase == Phase.idle and report.pushed == 23 and report.refused == 0
    assert transport.pushes == 4 and transport.most == 2  # 4 batches of 5 pushed, the last 3 with the pull
    assert sync_node.sync_status(ben.store).waiting == 0
    with server.session() as session:
        assert all(session.get(Visit, v) is not None for v in visits)
        logged = session.exec(select(ChangeLog.change_id).where(col(ChangeLog.record_id).in_(visits))).all()
    assert len(logged) == len(set(logged)) == 23


def test_a_batch_that_edits_a_record_of_the_batch_in_flight_waits_for_its_answer(seeded, server_url, tmp_path):
    server, caseload = seeded
    transport = CountingTransport()
    ben = laptop(server, caseload, server_url, tmp_path, "ben", transport)
    ben.batch_size = 1
    action = caseload.actions["Alfie"]
    for n in range(4):  # four edits of one action, one batch each: each must wait for the one before
        edit_action(ben.store, action, outcome=f"Edit {n}")
        time.sleep(0.01)  # change stamps are milliseconds

    assert ben.sync_once().phase == Phase.idle

    assert transport.pushes == 3 and transport.most == 1
    with server.session() as session:
        assert not session.exec(select(Conflict).where(Conflict.record_id == action)).all()
    other = device(server, caseload, server_url, tmp_path / "other", "ben")
    with other.store.session() as session:
        row = session.get(CarePlanAction, action)
        assert row is not None and other.store.opened(row).body.outcome == "Edit 3"


def test_batches_in_flight_to_two_servers_are_each_held_once_and_edits_still_wait(seeded, server_url, pg_url,
                                                                                   tmp_path):
    # Behind a load balancer the two batches in flight may reach two server processes, which apply them at the
    # same time: each change is still held once, and a batch editing a record of the one in flight still waits.
    server, caseload = seeded
    second = SyncServer(pg_url, tmp_path / "second")
    second.start()
    try:
        transport = CountingTransport()
        ben = laptop(server, caseload, server_url, tmp_path, "ben", transport)
        ben.urls, ben.rng = [server_url, second.url], random.Random(4)
        action = caseload.actions["Alfie"]
        visits = []
        for n in range(2):  # batches of 6: five visits and an edit of one action, twice, then eight visits
            visits += [add_visit(ben.store, caseload.children[("Alfie", "Bella")[i % 2]], caseload.workers["ben"],
                                 f"Visit {n}.{i}") for i in range(5)]
            edit_action(ben.store, action, outcome=f"Edit {n}")
            time.sleep(0.01)
        visits += [add_visit(ben.store, caseload.children["Bella"], caseload.workers["ben"], f"Visit {i}")
                   for i in range(8)]
        ben.batch_size = 6

        report = ben.sync_once()

        assert report.phase == Phase.idle and report.pushed == 20 and report.refused == 0
        assert len(transport.ports) == 2 and transport.most == 2
        with server.session() as session:
            assert all(session.get(Visit, v) is not None for v in visits)
            logged = session.exec(select(ChangeLog.change_id).where(
                col(ChangeLog.record_id).in_([*visits, action]))).all()
            assert not session.exec(select(Conflict).where(Conflict.record_id == action)).all()
        assert len(logged) == len(set(logged)) == 20
        other = device(server, caseload, server_url, tmp_path / "other", "ben")
        with other.store.session() as session:
            row = session.get(CarePlanAction, action)
            assert row is not None and other.store.opened(row).body.outcome == "Edit 1"
    finally:
        second.kill()


def test_what_a_batch_names_of_the_batch_before_is_found_in_fields_and_body(tmp_path):
    node = new_store(f"sqlite:///{tmp_path / 'node.db'}")
    node.engine.dispose()
    child = {"kind": "child", "record_id": "c1", "fields": {"team_id": "t"}, "body": {}}
    visit = {"kind": "visit", "record_id": "v1", "fields": {"child_id": "c1"}, "body": {"child_words": "hi"}}
    other = {"kind": "visit", "record_id": "v2", "fields": {"child_id": "c2"}, "body": {"supersedes": "v1"}}
    lone = {"kind": "visit", "record_id": "v3", "fields": {"child_id": "c2"}, "body": {"actions": [{"x": "y"}]}}
    assert refers_to([visit], [child])  # a visit of the child the batch before creates
    assert refers_to([other], [visit])  # a body naming a record of the batch before
    assert refers_to([dict(visit, change_id="again")], [visit])  # the same record again
    assert not refers_to([lone], [child, visit])
