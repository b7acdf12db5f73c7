"""Property: whatever the order of edits, syncs and network failures across three nodes, all converge and no
change is lost or held twice.

The server runs in-process (its ASGI app behind httpx) so hypothesis can try many sequences quickly; the
network fails both ways: a request that never arrives, and a reply that is lost after the server acted.
"""

from __future__ import annotations

import random
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from pwa import state
from pwa.sync.client import Phase, SyncClient
from pwa.sync.server import build_app
from storage.db import make_engine
from storage.models import Visit
from storage.store import Store
from storage.sync import node as sync_node
from tests.support import SERVER_KEY

with warnings.catch_warnings():  # starlette suggests httpx2; the test client works as it is
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tests.sync_support import Caseload, add_visit, edit_action, enrol, log_counts, new_store, seed, state_of

NODES = ("ben", "chloe", "amara")
# Which care plan action each node's worker may edit: ben and amara share Alfie's; chloe and amara Caleb's.
EDITS = {"ben": ["Alfie"], "chloe": ["Caleb"], "amara": ["Alfie", "Caleb"]}


class Flaky(httpx.BaseTransport):
    """The network between a node and the server: up, or failing before or after the server acts."""

    def __init__(self, inner: httpx.BaseTransport, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.down:
            return self.inner.handle_request(request)
        if self.rng.random() < 0.5:
            raise httpx.ConnectError("the network is down")
        self.inner.handle_request(request).read()
        raise httpx.ReadError("the reply was lost")


@dataclass
class Template:
    dir: Path
    caseload: Caseload


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """A server with a small caseload and three enrolled nodes, made once and copied for each example."""
    base = tmp_path_factory.mktemp("sync-property")
    server = new_store(f"sqlite:///{base / 'server.db'}")
    server.outbox_enabled = False
    caseload = seed(server)
    state.set_store(server)
    http = TestClient(build_app())
    for name in NODES:
        node = new_store(f"sqlite:///{base / f'{name}.db'}")
        client = enrol(server, node, name, caseload, http=http, urls=["http://testserver"])
        assert client.sync_once().phase == Phase.idle
        node.engine.dispose()
    server.engine.dispose()
    yield Template(base, caseload)


def opened(path: Path) -> Store:
    store = Store(make_engine(f"sqlite:///{path}"), outbox=True)
    store.unlock_with_server_key(SERVER_KEY)
    return store


operation = st.one_of(
    st.tuples(st.just("visit"), st.sampled_from(NODES)),
    st.tuples(st.just("edit"), st.sampled_from(NODES), st.integers(0, 1), st.text("abc ", max_size=4)),
    st.tuples(st.just("sync"), st.sampled_from(NODES)),
    st.tuples(st.just("network"), st.sampled_from(NODES), st.booleans()),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=14), seed_=st.integers(0, 2**16))
def test_three_nodes_converge_and_nothing_is_lost_or_duplicated(template, tmp_path_factory, operations, seed_):
    work = tmp_path_factory.mktemp("example")
    for name in ("server", *NODES):
        shutil.copy(template.dir / f"{name}.db", work / f"{name}.db")
    caseload = template.caseload
    server = opened(work / "server.db")
    server.outbox_enabled = False
    state.set_store(server)
    inner = TestClient(build_app())._transport
    rng = random.Random(seed_)
    networks = {name: Flaky(inner, rng) for name in NODES}
    clients = {name: SyncClient(opened(work / f"{name}.db"), urls=["http://testserver"], batch_size=2,
                                page_size=3, http=httpx.Client(transport=networks[name], base_url="http://testserver"))
               for name in NODES}
    made: set[str] = set()
    visits: set[str] = set()
    try:
        for op in operations:
            name = op[1]
            client = clients[name]
            if op[0] == "visit":
                visits.add(add_visit(client.store, caseload.children[EDITS[name][0]], caseload.workers[name],
                                     f"{name} says hello"))
            elif op[0] == "edit":
                child = EDITS[name][op[2] % len(EDITS[name])]
                edit_action(client.store, caseload.actions[child], outcome=op[3] or name)
            elif op[0] == "sync":
                client.sync_once()
            else:
                networks[name].down = op[2]
            made.update(c["change_id"] for c in sync_node.pending_changes(client.store, 1000))

        for network in networks.values():
            network.down = False
        for _ in range(2):
            for client in clients.values():
                assert client.sync_once().phase == Phase.idle

        counts = log_counts(server)
        assert made <= set(counts), "a change was lost"
        assert all(n == 1 for n in counts.values()), "a change is held twice"
        with server.session() as session:
            assert visits <= set(session.exec(select(Visit.id)))
            assert len(list(session.exec(select(Visit.id).where(col(Visit.id).in_(list(visits)))))) == len(visits)
        server_state = state_of(server)
        for name, client in clients.items():
            assert sync_node.sync_status(client.store).waiting == 0
            assert sync_node.sync_status(client.store).refused == 0
            node_state = state_of(client.store)
            assert node_state == {k: server_state[k] for k in node_state}, f"{name} differs from the server"
        assert set(state_of(clients["ben"].store)) <= set(state_of(clients["amara"].store))
    finally:
        for client in clients.values():
            client.store.engine.dispose()
        server.engine.dispose()
