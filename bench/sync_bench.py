"""Sync at a council's scale, against real `seen server` processes on loopback and the real PostgreSQL.

- `sync_push`: 10,000 changes (visits written on a node) pushed through the HTTP API in the client's
  batches (up to 500), two in flight as SyncClient sends them, against psycopg `executemany` of the very
  rows the push wrote (read back afterwards), into twin tables (`CREATE TABLE ... (LIKE ... INCLUDING ALL)`) in the same run. The issue's target is
  executemany time / API time of at least 0.5; the harness holds figures under an upper bound, so it is
  reported as API time / executemany time under 2 (the same condition).
- `sync_pull`: a fresh node enrols and pulls a 30-child caseload with two years' history (about 3,000
  records, each in the server's change log as if its devices had pushed it), with the real SyncClient.
- `sync_load`: 200 devices (one per worker) sync at once against one server process: each pushes a new
  visit and pulls what is new for its children (sending back its cursor and directory version, as
  SyncClient does). p95 of the whole sync per device, and the errors. The devices are one aiohttp
  client on the same machine (see `_load_round`). Then a second round with two server processes on the
  same database, the devices alternating between them as behind a load balancer (`sync_load_2_servers_*`).
  `sync_server_cpu_per_device` is the server process's CPU time a device's sync in the first round.

Seeding happens before any clock starts. The server runs in its own process, so what is timed includes
HTTP, JSON and pydantic on both ends, sealing, the merge and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from bench import Figure, benchmark
from pwa.sync import messages
from pwa.sync.client import Phase, SyncClient, refers_to
from pwa.sync.server import PREFIX
from storage.models import (
    CarePlan,
    CarePlanAction,
    CarePlanActionBody,
    CarePlanBody,
    Child,
    ChildBody,
    LifeStoryBody,
    LifeStoryEntry,
    Placement,
    PlacementBody,
    Review,
    ReviewBody,
    Role,
    SafetyScore,
    Team,
    Visit,
    VisitBody,
    WishesAndFeelings,
    WishesBody,
    Worker,
)
from storage.store import Store, hash_password
from storage.sync import devices as sync_devices
from storage.sync import node as sync_node
from storage.sync import server_log
from tests.support import PG_URL, postgres_reachable
from tests.sync_support import SyncServer, new_store, server_store

PUSH_CHANGES = {"tiny": 50, "full": 10_000}
PULL_CHILDREN = {"tiny": 2, "full": 30}
LOAD_DEVICES = {"tiny": 5, "full": 200}
BATCH = messages.MAX_BATCH  # SyncClient's default batch size (a batch also stops at 4 MB)
TODAY = date(2026, 11, 23)
PASSWORD = hash_password("bench")


def _require_postgres() -> None:
    reason = postgres_reachable()
    if reason:
        raise RuntimeError(f"The sync benchmarks need PostgreSQL (SEEN_TEST_DATABASE_URL): {reason}")


@contextmanager
def bench_database() -> Iterator[str]:
    """A PostgreSQL database of the benchmark's own, dropped afterwards.

    Not a schema in the test database: the server's push lock is a database-wide advisory lock, and the
    test suite's sync tests, if running, would hold it in the test database and be timed with us.
    """
    _require_postgres()
    name = f"seen_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _server(url: str) -> Iterator[SyncServer]:
    """One `seen server` process on a free loopback port, on the database `url` names."""
    with tempfile.TemporaryDirectory(prefix="seen-bench-server-") as tmp:
        server = SyncServer(url, Path(tmp), processes=-1)  # as `seen server` runs by default
        server.start()
        try:
            yield server
        finally:
            server.kill()


_shared: tuple[str, SyncServer] | None = None
_cleanup = ExitStack()
atexit.register(_cleanup.close)


def shared_server() -> tuple[str, SyncServer]:
    """The database and server process all three sync benchmarks use, made once per run.

    Starting `seen server` takes seconds on a busy machine; each benchmark seeds its own workers and
    children (their own ids and usernames), so they do not see each other's data.
    """
    global _shared
    if _shared is None:
        url = _cleanup.enter_context(bench_database())
        new_store(url).engine.dispose()  # migrated and keyed before the server starts
        _shared = (url, _cleanup.enter_context(_server(url)))
    return _shared


def _cpu_seconds(server: SyncServer) -> float:
    """The CPU time the server has used (user and system, from /proc): its process and its apply processes
    (pwa/sync/processes.py). Steadier on a shared machine than the wall-clock figures, which move with everyone
    else's load."""
    assert server.process is not None
    ticks = 0
    for pid in _process_tree(server.process.pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # gone since it was listed
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc."""
    out, todo = [], [pid]
    while todo:
        at = todo.pop()
        out.append(at)
        for task in Path(f"/proc/{at}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except FileNotFoundError:
                pass
    return out


def _visit_body(rng: random.Random) -> VisitBody:
    return VisitBody(
        present="Foster carer", observations="The bedroom was clean and personalised with posters. " * 6,
        analysis="The child appears settled and has a warm relationship with the carer. " * 4,
        child_words="I like it here because the dog sleeps on my bed.", worries="Contact is inconsistent.",
        working_well="Settled at school.", needs_to_happen="Arrange a life-story session.",
        safety_scale=[SafetyScore(who="Child", score=rng.randint(4, 10))], actions=["Book a dental check-up"])


def _key(rng: random.Random) -> str:
    """A submission key, as the visit form gives each visit it makes (storage/submissions.py)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


@dataclass
class Org:
    prefix: str
    team_id: str
    workers: list[str]  # ids, one practitioner per device
    children: dict[str, list[str]]  # worker id -> their children's ids
    admin: str = ""


def _seed_org(store: Store, prefix: str, n_workers: int, children_each: int) -> Org:
    """A team of `n_workers` practitioners, each with `children_each` children who have a care plan.

    Ids come from a generator seeded by `prefix`, so a node can be given the very same rows.
    """
    rng = random.Random(prefix)
    ids = lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))  # noqa: E731 - same ids on every store
    with store.session() as session:
        team = Team(id=ids(), name="Bench team")
        session.add(team)
        session.flush()
        org = Org(prefix, team.id, [], {})
        for w in range(n_workers):
            worker = Worker(id=ids(), username=f"{prefix}{w:03d}", display_name=f"Worker {w}",
                            role=Role.practitioner.value, team_id=team.id, password_hash=PASSWORD)
            session.add(worker)
            org.workers.append(worker.id)
            org.children[worker.id] = []
        admin = Worker(id=ids(), username=f"{prefix}-admin", display_name="Admin", role=Role.admin.value,
                       team_id=team.id, password_hash=PASSWORD)
        session.add(admin)
        org.admin = admin.id
        session.flush()
        for worker_id in org.workers:
            for c in range(children_each):
                child = Child(id=ids(), category="cic", team_id=team.id, worker_id=worker_id,
                              looked_after_since=TODAY - timedelta(days=700))
                store.write(session, child, ChildBody(first_name=f"Child{c}", last_name="Bench"), action="create")
                plan = CarePlan(id=ids(), child_id=child.id, start=TODAY - timedelta(days=690))
                store.write(session, plan, CarePlanBody(summary="Stay with current carers."), action="create")
                org.children[worker_id].append(child.id)
    return org


def _history(store: Store, worker_id: str, child_id: str, rng: random.Random) -> int:
    """Two years of a looked-after child's records: ~100 (visits, placements, reviews, plan, direct work)."""
    first = TODAY - timedelta(days=730)
    made = 0
    with store.session() as session:
        for p in range(3):
            start = first + timedelta(days=240 * p)
            placement = Placement(child_id=child_id, placement_type="U3", start=start,
                                  end=None if p == 2 else start + timedelta(days=240))
            store.write(session, placement, PlacementBody(provider="Bench Fostering", carer="Mr and Mrs Carer",
                                                          address="1 High Street", town="Leeds"), action="create")
            made += 1
        plan = CarePlan(child_id=child_id, start=first)
        store.write(session, plan, CarePlanBody(summary="Remain with carers; contact with mum monthly."),
                    action="create")
        made += 1
        for a in range(8):
            action = CarePlanAction(plan_id=plan.id, child_id=child_id, due=first + timedelta(days=90 * a))
            store.write(session, action, CarePlanActionBody(description="Arrange contact", owner="carer"),
                        action="create")
            made += 1
        for r in range(6):
            review = Review(child_id=child_id, kind="lac_review", held_on=first + timedelta(days=20 + 120 * r))
            store.write(session, review, ReviewBody(notes="The plan continues."), action="create")
            made += 1
        day = first + timedelta(days=3)
        while day < TODAY and made < 96:
            visit = Visit(child_id=child_id, worker_id=worker_id, visited_at=_at(day), status="submitted",
                          seen_alone=True, bedroom_seen=True, submission_key=_key(rng))
            store.write(session, visit, _visit_body(rng), action="create")
            made += 1
            day += timedelta(days=10)
        for k in range(2):
            store.write(session, WishesAndFeelings(child_id=child_id, worker_id=worker_id,
                                                   on=first + timedelta(days=300 * k + 30), status="submitted"),
                        WishesBody(child_words="I want to stay here.", reflection="Consistent views."),
                        action="create")
            store.write(session, LifeStoryEntry(child_id=child_id, worker_id=worker_id,
                                                on=first + timedelta(days=300 * k + 60), status="submitted"),
                        LifeStoryBody(title="My first school", text="I started at Hill Primary."), action="create")
            made += 2
    return made


def _token_for(store: Store, worker_id: str, admin_id: str, name: str) -> str:
    code = sync_devices.issue_enrolment_code(store, worker_id, admin_id)
    _device, _worker, token = sync_devices.enrol_device(store, code, name)
    return token


def _signed(token: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """A push batch as SyncClient makes it."""
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
    batch_id = str(uuid.uuid4())
    return {"batch_id": batch_id, "changes": wire,
            "signature": messages.batch_signature(messages.token_key(token), batch_id, wire)}


def _node_with(url: str, org: Org) -> Store:
    """A SQLite node holding the same workers and children as the server (same ids), outbox on."""
    node = new_store(url)
    node.outbox_enabled = False
    _seed_org(node, org.prefix, len(org.workers), len(next(iter(org.children.values()))))
    node.outbox_enabled = True
    return node


# ------------------------------------------------------------------------------------------------ sync_push


def _pg_conninfo(url: str) -> tuple[str, str]:
    """(libpq conninfo, schema) of the benchmark database's SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False), "public"


def _tables(conn: psycopg.Connection, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
        (schema,))]


def _primary_key(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary", (f'"{schema}"."{table}"',))]


def _keys(conn: psycopg.Connection, schema: str) -> dict[str, set[tuple]]:
    """Every table's primary keys now: what the push finds already there."""
    out = {}
    for table in _tables(conn, schema):
        names = ", ".join(f'"{k}"' for k in _primary_key(conn, schema, table))
        out[table] = {tuple(r) for r in conn.execute(f'SELECT {names} FROM "{schema}"."{table}"')}  # noqa: S608
    return out


Rows = dict[str, tuple[list[str], list[tuple]]]


def _written_rows(conn: psycopg.Connection, schema: str, before: dict[str, set[tuple]]) -> Rows:
    """Every row the push added, table by table: (columns, rows), those whose primary key is new."""
    out: Rows = {}
    for table in _tables(conn, schema):
        cursor = conn.execute(f'SELECT * FROM "{schema}"."{table}"')  # noqa: S608 - our own table names
        columns = [d.name for d in cursor.description or ()]
        at = [columns.index(k) for k in _primary_key(conn, schema, table)]
        rows = [r for r in cursor.fetchall() if tuple(r[i] for i in at) not in before.get(table, set())]
        if rows:
            out[table] = (columns, rows)
    return out


def _executemany_baseline(conninfo: str, schema: str, written: Rows) -> float:
    """The same rows inserted with psycopg executemany, one transaction, into twin tables of a new schema."""
    twin = f"{schema}_twin"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{twin}"')
        try:
            for table in written:
                conn.execute(f'CREATE TABLE "{twin}"."{table}" (LIKE "{schema}"."{table}" INCLUDING ALL)')
            conn.autocommit = False
            started = time.perf_counter()
            with conn.cursor() as cursor:
                for table, (columns, rows) in written.items():
                    names = ", ".join(f'"{c}"' for c in columns)
                    marks = ", ".join(["%s"] * len(columns))
                    cursor.executemany(f'INSERT INTO "{twin}"."{table}" ({names}) VALUES ({marks})', rows)  # noqa: S608
            conn.commit()
            elapsed = time.perf_counter() - started
        finally:
            conn.autocommit = True
            conn.execute(f'DROP SCHEMA "{twin}" CASCADE')
    return elapsed


def _push_two_in_flight(http: httpx.Client, url: str, headers: dict[str, str], batches: list[dict[str, Any]]) -> None:
    """The batches posted as SyncClient posts them: the next sent while the server applies one (two in flight),
    unless it names a record of the one in flight (`refers_to`); answers taken in order."""
    def post(batch: dict[str, Any]) -> None:
        response = http.post(url, content=messages.request_body(batch),
                             headers={**headers, "Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"push refused: HTTP {response.status_code} {response.text[:300]}")

    with ThreadPoolExecutor(max_workers=2) as sender:
        in_flight: tuple[dict[str, Any], Future[None]] | None = None
        for batch in batches:
            if in_flight is not None and refers_to(batch["changes"], in_flight[0]["changes"]):
                in_flight[1].result()
                in_flight = None
            sent = sender.submit(post, batch)
            if in_flight is not None:
                in_flight[1].result()
            in_flight = (batch, sent)
        if in_flight is not None:
            in_flight[1].result()


@benchmark("sync_push")
def sync_push(size: str) -> list[Figure]:
    n = PUSH_CHANGES[size]
    rng = random.Random(11)
    url, running = shared_server()
    with tempfile.TemporaryDirectory(prefix="seen-bench-push-") as tmp:
        server = server_store(url)
        org = _seed_org(server, "push", 1, 20)
        worker_id = org.workers[0]
        token = _token_for(server, worker_id, org.admin, "bench laptop")
        node = _node_with(f"sqlite:///{Path(tmp) / 'node.db'}", org)
        with node.session() as session:
            for i in range(n):
                child_id = org.children[worker_id][i % 20]
                visit = Visit(child_id=child_id, worker_id=worker_id, visited_at=_at(TODAY - timedelta(days=i % 700)),
                              status="submitted", seen_alone=True, submission_key=_key(rng))
                node.write(session, visit, _visit_body(rng), action="create")
        batches = []
        while changes := sync_node.pending_changes(node, BATCH):  # as SyncClient takes them, batch by batch
            batches.append(_signed(token, changes))
            sync_node.mark_pushed(node, [c["change_id"] for c in changes])
        conninfo, schema = _pg_conninfo(url)
        with httpx.Client(timeout=120) as http:
            headers = {"Authorization": f"Bearer {token}"}
            # Warm the server's connection pool and code paths with a request that writes nothing.
            http.get(f"{running.url}{PREFIX}/status", headers=headers).raise_for_status()
            with psycopg.connect(conninfo) as conn:
                before = _keys(conn, schema)
            cpu_before = _cpu_seconds(running)
            started = time.perf_counter()
            _push_two_in_flight(http, f"{running.url}{PREFIX}/push", headers, batches)
            pushed = time.perf_counter() - started
            server_cpu = _cpu_seconds(running) - cpu_before
        with psycopg.connect(conninfo) as conn:
            written = _written_rows(conn, schema, before)
        if len(written.get("visit", ([], []))[1]) != n:
            raise RuntimeError("the server did not hold every pushed visit")
        plain = _executemany_baseline(conninfo, schema, written)
        server.engine.dispose()
        node.engine.dispose()
    ratio = pushed / plain
    full = size == "full"
    rows = sum(len(r) for _c, r in written.values())
    return [
        Figure("sync_push", pushed, "s", baseline=plain, ratio=ratio),
        Figure("sync_push_per_change", pushed / n * 1000, "ms"),
        Figure("sync_push_server_cpu_per_change", server_cpu / n * 1000, "ms"),
        Figure("sync_push_ratio", ratio, "x", target=2.0 if full else None),
        Figure("sync_push_rows_written", float(rows), "rows"),
    ]


# ------------------------------------------------------------------------------------------------ sync_pull


@benchmark("sync_pull")
def sync_pull(size: str) -> list[Figure]:
    n_children = PULL_CHILDREN[size]
    rng = random.Random(12)
    url, running = shared_server()
    with tempfile.TemporaryDirectory(prefix="seen-bench-pull-") as tmp:
        seeding = server_store(url)
        seeding.outbox_enabled = True  # each record reaches the change log as a device's push would
        org = _seed_org(seeding, "pull", 1, n_children)
        worker_id = org.workers[0]
        records = sum(_history(seeding, worker_id, c, rng) for c in org.children[worker_id]) + 2 * n_children
        while server_log.absorb_local_changes(seeding):
            pass
        admin = org.admin
        timings = []
        for attempt in range(3 if size == "full" else 1):
            node = new_store(f"sqlite:///{Path(tmp) / f'node{attempt}.db'}")
            client = SyncClient(node, urls=[running.url])
            client.enrol(running.url, sync_devices.issue_enrolment_code(seeding, worker_id, admin), "fresh")
            started = time.perf_counter()
            report = client.sync_once()
            timings.append(time.perf_counter() - started)
            if report.phase != Phase.idle:
                raise RuntimeError(f"the fresh node's sync failed: {report.message}")
            if _visits_on(node, worker_id) != _visits_on(seeding, worker_id):
                raise RuntimeError("the fresh node does not hold every visit")
            client.http.close()
            node.engine.dispose()
        seeding.engine.dispose()
    seconds = statistics.median(timings)
    return [
        Figure("sync_pull", seconds, "s", target=2.0 if size == "full" else None),
        Figure("sync_pull_records", float(records), "records"),
    ]


def _visits_on(store: Store, worker_id: str) -> int:
    with store.session() as session:
        return session.exec(select(func.count()).select_from(Visit).where(Visit.worker_id == worker_id)).one()


# ------------------------------------------------------------------------------------------------ sync_load


Device = tuple[str, dict[str, Any], int, list[str], str]  # token, batch, cursor, children held, directory version


async def _device_sync(http: aiohttp.ClientSession, url: str, token: str, batch: dict[str, Any], cursor: int,
                       held: list[str], directory_version: str) -> tuple[int, str]:
    """One device's sync as SyncClient makes it: its (last) batch with its first pull in one request (`/sync`),
    then pulls until nothing more; returns its new cursor and version."""
    headers = {"Authorization": f"Bearer {token}"}
    path, body = "/sync", {"push": batch}
    while True:
        # As SyncClient does: the cursor and the directory version the device holds.
        wanted = {"cursor": cursor, "held": held, "limit": 200, "directory_version": directory_version}
        async with http.post(f"{url}{PREFIX}{path}", headers=headers, json={**body, "pull": wanted} if body else wanted
                             ) as response:
            response.raise_for_status()
            page = await response.json()
        if body:
            page = page["pull"]
            path, body = "/pull", {}
        cursor = page["cursor"]
        directory_version = page.get("directory_version", "")
        if not page["more"]:
            return cursor, directory_version


async def _load_round(urls: list[str], devices: list[Device]
                      ) -> tuple[list[float], int, list[tuple[int, str] | None]]:
    """Every device syncs at once, device i with server `urls[i % len(urls)]` (round robin, as a load
    balancer would); returns each successful sync's seconds, how many failed, and each device's new
    cursor and directory version (None where it failed).

    The 200 devices are one aiohttp client (a dependency of NiceGUI's) on one event loop, on the same two
    cores as the server: httpx's async client cost several times the server's CPU for the same requests
    (2-6 s for the 400 requests of a round, against ~0.3 s with aiohttp), so the round timed the load
    generator more than the server.
    """
    connector = aiohttp.TCPConnector(limit=len(devices))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        go = asyncio.Event()

        async def one(url: str, token: str, batch: dict[str, Any], cursor: int, held: list[str],
                      version: str) -> tuple[float, tuple[int, str]] | None:
            await go.wait()
            started = time.perf_counter()
            try:
                after = await _device_sync(http, url, token, batch, cursor, held, version)
            except (TimeoutError, aiohttp.ClientError, ValueError, KeyError):
                return None
            return time.perf_counter() - started, after

        tasks = [asyncio.create_task(one(urls[i % len(urls)], *d)) for i, d in enumerate(devices)]
        await asyncio.sleep(0.05)
        go.set()
        results = await asyncio.gather(*tasks)
    ok = [r[0] for r in results if r is not None]
    return ok, len(results) - len(ok), [r[1] if r is not None else None for r in results]


def _p95(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else (latencies or [0.0])[0]


@benchmark("sync_load")
def sync_load(size: str) -> list[Figure]:
    """Two rounds, each device pushing a new visit and pulling: first against one `seen server` process
    (the issue's figure), then against two processes on the same database, devices alternating between
    them (README's deployment: several servers behind a load balancer), here on the same two cores."""
    n = LOAD_DEVICES[size]
    rng = random.Random(13)
    url, running = shared_server()
    with tempfile.TemporaryDirectory(prefix="seen-bench-load-") as tmp:
        server = server_store(url)
        org = _seed_org(server, "load", n, 3)
        admin = org.admin
        tokens = {w: _token_for(server, w, admin, f"phone {i}") for i, w in enumerate(org.workers)}
        node = _node_with(f"sqlite:///{Path(tmp) / 'node.db'}", org)
        rounds: list[dict[str, dict[str, Any]]] = [{}, {}]
        for batches in rounds:
            for worker_id in org.workers:  # one new visit per device and round, made before the clock starts
                with node.session() as session:
                    visit = Visit(child_id=org.children[worker_id][0], worker_id=worker_id, visited_at=_at(TODAY),
                                  status="submitted", seen_alone=True, submission_key=_key(rng))
                    node.write(session, visit, _visit_body(rng), action="create")
                batches[worker_id] = _signed(tokens[worker_id], sync_node.pending_changes(node, 10))
                sync_node.mark_pushed(node, [c["change_id"] for c in batches[worker_id]["changes"]])
        # Each device has synced before (it holds its children and a cursor), as phones in use have.
        with httpx.Client(timeout=60) as http:
            cursors, versions = {}, {}
            for worker_id in org.workers:
                headers = {"Authorization": f"Bearer {tokens[worker_id]}"}
                cursor, held, version = 0, [], ""
                while True:
                    page = http.post(f"{running.url}{PREFIX}/pull", headers=headers,
                                     json={"cursor": cursor, "held": held, "directory_version": version}
                                     ).raise_for_status().json()
                    cursor, version = page["cursor"], page.get("directory_version", "")
                    held = org.children[worker_id]
                    if not page["more"]:
                        break
                cursors[worker_id], versions[worker_id] = cursor, version
        devices = [(tokens[w], rounds[0][w], cursors[w], org.children[w], versions[w]) for w in org.workers]
        cpu_before = _cpu_seconds(running)
        started = time.perf_counter()
        latencies, errors, after = asyncio.run(_load_round([running.url], devices))
        wall = time.perf_counter() - started
        server_cpu = _cpu_seconds(running) - cpu_before
        with _server(url) as second:
            devices = []
            for i, w in enumerate(org.workers):
                cursor, version = after[i] or (cursors[w], versions[w])  # a device that failed: as it was
                devices.append((tokens[w], rounds[1][w], cursor, org.children[w], version))
            two, two_errors, _after = asyncio.run(_load_round([running.url, second.url], devices))
        server.engine.dispose()
        node.engine.dispose()
    full = size == "full"
    return [
        Figure("sync_load_p95", _p95(latencies) * 1000, "ms", target=500.0 if full else None),
        Figure("sync_load_median", statistics.median(latencies) * 1000 if latencies else 0.0, "ms"),
        Figure("sync_load_errors", float(errors), "errors", target=1.0 if full else None),
        Figure("sync_load_wall", wall, "s"),
        # The server process's CPU a device's sync (its push and pull), from /proc: what says how many devices
        # one core serves (1000 / this, a second), steadier than the wall-clock rows on a shared machine.
        Figure("sync_server_cpu_per_device", server_cpu / n * 1000, "ms", target=2.0 if full else None),
        Figure("sync_load_2_servers_p95", _p95(two) * 1000, "ms"),
        Figure("sync_load_2_servers_errors", float(two_errors), "errors", target=1.0 if full else None),
    ]
