"""Helpers for the sync tests: a small caseload on a server store, nodes, and real server processes.

`SyncServer` runs `seen server` in its own process on loopback (SIGKILL-able); `Zygote` is a process
that has imported Seen once and forks a fresh `seen server` on request, so the fault test can kill and
restart a real server process many times quickly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from pwa.sync.client import Phase, SyncClient
from storage.db import make_engine
from storage.models import (
    CarePlan,
    CarePlanAction,
    CarePlanActionBody,
    CarePlanBody,
    ChangeLog,
    Child,
    ChildBody,
    ManagedTeam,
    Role,
    Team,
    Visit,
    VisitBody,
    Worker,
)
from storage.store import Store, hash_password
from storage.sync import changes, devices, node
from tests.browser_support import free_port, wait_up
from tests.support import SERVER_KEY

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_HASH = hash_password("seen-demo")


@dataclass
class Caseload:
    """Ids of the small caseload `seed` makes."""

    workers: dict[str, str] = field(default_factory=dict)  # username -> id
    teams: dict[str, str] = field(default_factory=dict)
    children: dict[str, str] = field(default_factory=dict)  # name -> id
    actions: dict[str, str] = field(default_factory=dict)  # child name -> its care plan action's id


def seed(store: Store, suffix: str = "") -> Caseload:
    """Two teams; ben and chloe (CiC, manager amara), erin (CiN, manager dev); four children, each with a plan.

    `suffix` makes the usernames unique, so several tests can share one server database.
    """
    out = Caseload()
    with store.session() as session:
        for key, name in (("cic", "Children in Care Team"), ("cin", "Children in Need Team")):
            team = Team(name=name)
            session.add(team)
            out.teams[key] = team.id
        session.flush()
        for username, role, team in (("amara", Role.manager, "cic"), ("ben", Role.practitioner, "cic"),
                                     ("chloe", Role.practitioner, "cic"), ("dev", Role.manager, "cin"),
                                     ("erin", Role.practitioner, "cin"), ("admin", Role.admin, "cic")):
            worker = Worker(username=username + suffix, display_name=username.title(), role=role.value,
                            team_id=out.teams[team], password_hash=PASSWORD_HASH)
            session.add(worker)
            out.workers[username] = worker.id
        session.flush()
        session.add(ManagedTeam(manager_id=out.workers["amara"], team_id=out.teams["cic"]))
        session.add(ManagedTeam(manager_id=out.workers["dev"], team_id=out.teams["cin"]))
        session.flush()
        for name, owner, team, category in (("Alfie", "ben", "cic", "cic"), ("Bella", "ben", "cic", "cic"),
                                            ("Caleb", "chloe", "cic", "cic"), ("Daisy", "erin", "cin", "cin")):
            child = Child(category=category, team_id=out.teams[team], worker_id=out.workers[owner],
                          looked_after_since=date(2026, 1, 5))
            store.write(session, child, ChildBody(first_name=name, last_name="Applewick"), action="create")
            plan = CarePlan(child_id=child.id, start=date(2026, 2, 1))
            store.write(session, plan, CarePlanBody(summary=f"{name}'s plan"), action="create")
            action = CarePlanAction(plan_id=plan.id, child_id=child.id, due=date(2026, 12, 1))
            store.write(session, action, CarePlanActionBody(description="Arrange contact", owner="carer"),
                        action="create")
            out.children[name] = child.id
            out.actions[name] = action.id
    return out


def new_store(url: str) -> Store:
    store = Store.open(url, outbox=True)
    store.initialise_with_server_key(SERVER_KEY)
    return store


def server_store(url: str) -> Store:
    """A second handle on a server's database, from the test, to check what was really written."""
    store = Store(make_engine(url), outbox=False)
    store.unlock_with_server_key(SERVER_KEY)
    return store


def enrol(server: Store, node: Store, username: str, caseload: Caseload, *, http: httpx.Client | None = None,
          urls: list[str], name: str = "laptop") -> SyncClient:
    """Issues a code on the server and spends it from the node; returns the node's sync client."""
    code = devices.issue_enrolment_code(server, caseload.workers[username], caseload.workers["admin"])
    # A generous timeout: the suite shares two cores with other suites, and slow is not failed.
    http = http or httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0))
    client = SyncClient(node, http=http, urls=urls, batch_size=5, page_size=20)
    client.enrol(urls[0], code, name)
    return client


# ------------------------------------------------------------------------------------------------ edits on a node


def device(server: Store, caseload: Caseload, url: str, tmp_path: Path, username: str) -> SyncClient:
    """A worker's laptop node enrolled with the server at `url`, synced once."""
    client = enrol(server, new_store(f"sqlite:///{tmp_path / f'{username}.db'}"), username, caseload, urls=[url])
    assert client.sync_once().phase == Phase.idle
    return client


def worker(store: Store, worker_id: str) -> Worker:
    with store.session() as session:
        found = session.get(Worker, worker_id)
    assert found is not None
    return found


def edit_action(node: Store, action_id: str, *, outcome: str | None = None, status: str | None = None) -> None:
    with node.session() as session:
        row = session.get(CarePlanAction, action_id)
        assert row is not None
        body = node.opened(row).body
        changed = []
        if outcome is not None:
            body.outcome = outcome
            changed.append("body.outcome")
        if status is not None:
            row.status = status
            changed.append("status")
        node.write(session, row, body, action="update", changed=changed)


def add_visit(node: Store, child_id: str, worker_id: str, words: str) -> str:
    with node.session() as session:
        visit = Visit(child_id=child_id, worker_id=worker_id, visited_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
                      status="submitted", seen_alone=True)
        node.write(session, visit, VisitBody(child_words=words, observations="Seen in the garden."),
                   action="create")
        return visit.id


def state_of(store: Store) -> dict[str, Any]:
    """Every synced record on a node, opened, without the fields that are each node's own (revision...)."""
    out: dict[str, Any] = {}
    with store.session() as session:
        for kind, model in changes.MODEL_OF.items():
            for row in session.exec(select(model)):
                clear = row.model_dump(mode="json", exclude={"sealed", "revision", "updated_at", "ref_hash"})
                if kind == "photo":  # a photo's image, as a digest: the same bytes everywhere
                    body = hashlib.sha256(store.sealer.open_bytes("photo", row.id, row.sealed)).hexdigest()
                else:
                    body = store.opened(row).body.model_dump(mode="json")
                out[f"{kind}:{row.id}"] = (clear, body)  # type: ignore[attr-defined]
    return out


def log_counts(store: Store, caseload: Caseload | None = None) -> dict[str, int]:
    """change id -> how many times the server's change log holds it (for one caseload's children)."""
    counts: dict[str, int] = {}
    query = select(ChangeLog.change_id)
    if caseload is not None:
        query = query.where(col(ChangeLog.child_id).in_(list(caseload.children.values())))
    with store.session() as session:
        for change_id in session.exec(query):
            counts[change_id] = counts.get(change_id, 0) + 1
    return counts


@dataclass
class FaultRounds:
    """What two devices wrote over a fault test's rounds (the server killed, or one of its apply processes): each
    round some visits of Alfie and an edit of Bella's action, by each; and the check that it all arrived once."""

    caseload: Caseload
    made: set[str] = field(default_factory=set)  # every change id written
    visits: list[str] = field(default_factory=list)  # every visit's id

    def write(self, clients: list[tuple[str, SyncClient]], rng: random.Random, round_: int,
              visits: tuple[int, int]) -> None:
        """Each device's edits for one round: between `visits[0]` and `visits[1]` visits, and the action's edit."""
        for username, client in clients:
            for _ in range(rng.randint(*visits)):
                self.visits.append(add_visit(client.store, self.caseload.children["Alfie"],
                                             self.caseload.workers[username], f"{username} round {round_}"))
            edit_action(client.store, self.caseload.actions["Bella"], outcome=f"{username} {round_}")
            self.made.update(c["change_id"] for c in node.pending_changes(client.store, 1000))

    def assert_each_held_once(self, server: Store, clients: list[tuple[str, SyncClient]]) -> None:
        """Every change in the server's log once, every visit once, and the server and devices alike."""
        counts = log_counts(server, self.caseload)
        assert self.made <= set(counts) and all(n == 1 for n in counts.values())
        with server.session() as session:
            held = list(session.exec(select(Visit.id).where(col(Visit.child_id) == self.caseload.children["Alfie"])))
        assert sorted(held) == sorted(self.visits)  # every visit, once
        ids = {self.caseload.children["Alfie"], self.caseload.children["Bella"]}
        states = [{k: v for k, v in state_of(s).items() if v[0].get("child_id", v[0].get("id")) in ids}
                  for s in (server, clients[0][1].store, clients[1][1].store)]
        assert states[0] == states[1] == states[2]


# ------------------------------------------------------------------------------------------------ server processes


def server_env(db_url: str, data_dir: Path, processes: int = 0) -> dict[str, str]:
    """A test server's environment. It applies requests in its own process unless given apply `processes`
    (pwa/sync/processes.py; -1: as many as `seen server` starts by default): most tests are about what is applied,
    and tests/test_sync_processes.py is about where."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
    env.update({"SEEN_DATA_DIR": str(data_dir), "SEEN_DATABASE_URL": db_url,
                "SEEN_SERVER_KEY": base64.b64encode(SERVER_KEY).decode(), "PYTHONPATH": str(ROOT),
                "SEEN_SCHEDULER_MINUTES": "0",  # no due alerts from the test caseload
                "SEEN_SYNC_PROCESSES": str(processes)})
    env.pop("SEEN_NODE_MODE", None)
    return env


@dataclass
class SyncServer:
    """`seen server` in its own process on a free loopback port; with `today`, England's date there is that day
    (tests/frozen_day.py), not the machine's."""

    db_url: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    today: date | None = None
    processes: int = 0  # apply processes (`server_env`)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / f"server-{self.port}.log"
        if self.today is None:
            code = "import sys; from pwa.cli import main; sys.exit(main())"
        else:
            code = f"import sys; from tests.frozen_day import run_server_on; sys.exit(run_server_on('{self.today}', sys.argv[1:]))"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "server", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=server_env(self.db_url, self.data_dir, self.processes), stdout=log.open("w"),
            stderr=subprocess.STDOUT)
        wait_up(self.url, lambda: self.process is not None and self.process.poll() is None, log)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None


class Zygote:
    """A process that imported Seen once and forks a real `seen server` process on request."""

    def __init__(self, db_url: str, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "zygote.log"
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "sync_zygote.py")], cwd=ROOT, env=server_env(db_url, data_dir),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True, bufsize=1)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the zygote did not start: {ready!r}\n{self.log.read_text()}")

    def spawn(self, port: int) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"port": port}) + "\n")
        pid = int(self.process.stdout.readline())
        wait_up(f"http://127.0.0.1:{port}", lambda: alive(pid), self.log)
        return pid

    def close(self) -> None:
        """Stops the zygote and every server it forked (closing its stdin makes it kill them and exit; a server
        whose zygote is killed dies with it)."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def alive(pid: int) -> bool:
    """Whether `pid` is running: not gone, and not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child stays a zombie until the zygote reaps it.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@contextmanager
def zygote(db_url: str, data_dir: Path) -> Iterator[Zygote]:
    z = Zygote(db_url, data_dir)
    try:
        yield z
    finally:
        z.close()
