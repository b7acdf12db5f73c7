"""Fixtures: real databases (SQLite file and the machine's PostgreSQL), stores, and the app's User."""

from __future__ import annotations

import ctypes
import gc
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import make_url

from storage.demo import create_demo
from storage.store import Store
from tests.support import (
    SERVER_KEY,
    postgres_database,
    postgres_reachable,
    postgres_schema,
    set_current_test_store,
    unavailable,
)

if TYPE_CHECKING:
    from tests.sync_support import Caseload

ROOT = Path(__file__).resolve().parent.parent
# Tests only: the tests' push service (tests/push_service.py) listens on http://127.0.0.1, which Seen
# otherwise refuses as a push address. Set here, so the servers the tests start inherit it too.
os.environ["SEEN_PUSH_ALLOW_LOOPBACK"] = "1"
pytest_plugins = ["tests.browser_support"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs on both engines: SQLite in a temporary file, and the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'seen.db'}"
        return
    reason = postgres_reachable()
    if reason:
        unavailable(reason)
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL schema shared by a module's `seen server` processes, migrated and keyed before they start."""
    from tests.sync_support import new_store

    reason = postgres_reachable()
    if reason:
        unavailable(reason)
    with postgres_schema() as url:
        new_store(url).engine.dispose()
        yield url


@pytest.fixture(scope="module")
def server_url(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `seen server` process on the module's PostgreSQL schema, for the module's tests."""
    from tests.sync_support import SyncServer

    running = SyncServer(pg_url, tmp_path_factory.mktemp("server"))
    running.start()
    yield running.url
    running.kill()


@pytest.fixture
def seeded(pg_url: str, server_url: str) -> Iterator[tuple[Store, Caseload]]:
    """The server's store with a small caseload of its own (names made unique), while the server runs."""
    from tests.sync_support import seed, server_store

    server = server_store(pg_url)
    caseload = seed(server, suffix="-" + uuid.uuid4().hex[:6])
    yield server, caseload
    server.engine.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url, outbox=True)
    s.initialise_with_server_key(SERVER_KEY)
    yield s
    s.engine.dispose()


DEMO_DAY = date(2026, 11, 23)
PR_SET_CHILD_SUBREAPER = 36  # prctl(2), Linux


class DemoTemplates:
    """The demo caseload on DEMO_DAY, made once per run on each engine a test asks for (making one takes
    seconds); each test gets a copy of its own: a copy of the SQLite file, or on PostgreSQL a new database
    made from the template one (CREATE DATABASE ... TEMPLATE). A copy is the store the test would have made:
    the same rows, the same data key, the outbox on."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqlite: Path | None = None
        self.postgres: str | None = None  # the template database's name
        self.cleanup = ExitStack()

    @staticmethod
    def build(url: str) -> None:
        s = Store.open(url, outbox=True)
        s.initialise_with_server_key(SERVER_KEY)
        create_demo(s, today=DEMO_DAY)
        s.engine.dispose()  # no connection left: SQLite checkpoints its WAL; PostgreSQL can copy the database

    def sqlite_copy(self, path: Path) -> str:
        if self.sqlite is None:
            template = self.folder / "demo.db"
            self.build(f"sqlite:///{template}")
            assert not template.with_name("demo.db-wal").exists()
            self.sqlite = template
        shutil.copy(self.sqlite, path)
        return f"sqlite:///{path}"

    @contextmanager
    def postgres_copy(self) -> Iterator[str]:
        reason = postgres_reachable()
        if reason:
            unavailable(reason)
        if self.postgres is None:
            url = self.cleanup.enter_context(postgres_database())
            self.build(url)
            self.postgres = make_url(url).database
        with postgres_database(template=self.postgres) as url:
            yield url


@pytest.fixture(scope="session")
def demo_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoTemplates]:
    templates = DemoTemplates(tmp_path_factory.mktemp("demo_day"))
    with templates.cleanup:
        yield templates


@contextmanager
def demo_copy(engine: str, templates: DemoTemplates, folder: Path) -> Iterator[Store]:
    with ExitStack() as stack:
        if engine == "sqlite":
            url = templates.sqlite_copy(folder / "seen.db")
        else:
            url = stack.enter_context(templates.postgres_copy())
        store = Store.open(url, outbox=True)
        store.unlock_with_server_key(SERVER_KEY)
        try:
            yield store
        finally:
            store.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_store(request: pytest.FixtureRequest, tmp_path: Path, demo_templates: DemoTemplates) -> Iterator[Store]:
    """The demo caseload on DEMO_DAY, on each engine: the test's own copy."""
    with demo_copy(request.param, demo_templates, tmp_path) as store:
        yield store


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_demo_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                      demo_templates: DemoTemplates) -> Iterator[Store]:
    """One demo caseload per engine for a whole test module: for modules whose tests each use children, keys or
    records of their own, so they do not see each other's work."""
    with demo_copy(request.param, demo_templates, tmp_path_factory.mktemp("module_demo")) as store:
        yield store


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Today's demo caseload built once per run; each test gets its own copy of the file."""
    path = tmp_path_factory.mktemp("template") / "demo.db"
    s = Store.open(f"sqlite:///{path}", outbox=False)
    s.initialise_with_server_key(SERVER_KEY)
    create_demo(s)
    s.engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name("demo.db-wal").exists()
    return path


@pytest.fixture
def app_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_template: Path) -> Iterator[Store]:
    """The store the app runs on in page tests: SQLite with today's demo caseload."""
    monkeypatch.setenv("SEEN_DATA_DIR", str(tmp_path))
    shutil.copy(demo_template, tmp_path / "app.db")
    s = Store.open(f"sqlite:///{tmp_path / 'app.db'}", outbox=False)
    s.unlock_with_server_key(SERVER_KEY)
    set_current_test_store(s)
    yield s
    set_current_test_store(None)
    s.engine.dispose()


@pytest.fixture
async def user(app_store: Store, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    """NiceGUI's simulated user, on the app built over `app_store`."""
    async with user_simulation(main_file=ROOT / "tests" / "app_main.py") as simulated:
        yield simulated
    errors = [r for r in caplog.get_records("call") if r.levelname == "ERROR"]
    if errors:
        pytest.fail(f"There were unexpected ERROR logs: {errors[0].getMessage()}", pytrace=False)


async def sign_in(user: User, username: str, password: str = "seen-demo", *, wait: bool = True) -> None:
    await user.open("/login")
    user.find("Username").type(username)
    user.find("Password").type(password)
    user.find(marker="sign-in").click()
    if wait:  # the password is checked off the event loop: signed in once the sign-in form has gone
        await user.should_not_see(marker="sign-in", retries=300)



def _descendants() -> dict[int, str]:
    """This pytest process's live descendants (not zombies), by pid, with their command lines."""
    parent: dict[int, int] = {}
    command: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            parent[int(entry.name)] = int(fields[1])
            command[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    me = os.getpid()

    def descends(pid: int) -> bool:
        seen: set[int] = set()
        while pid in parent and pid not in seen:
            seen.add(pid)
            pid = parent[pid]
            if pid == me:
                return True
        return False

    return {pid: command[pid] for pid in parent if pid != me and descends(pid)}


# The slowest modules (the long fault-injection loops, the bench's real processes), started first when the suite
# runs on several workers (./test: pytest-xdist, a whole module to a worker), so none is left running alone at the end.
SLOWEST_FIRST = ("test_browser_capture_random.py", "test_sync_api.py", "test_sync_faults.py", "test_bench_smoke.py",
                 "test_browser_accessibility.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # one process: the files' own order
        return
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything alive once the tests are collected (the modules, pytest's items) lives to the end of the run:
    frozen (gc.freeze), so the garbage collector no longer walks it at every full collection. NiceGUI's User
    fixture runs two full collections per test (nicegui.testing.general.nicegui_reset_globals): walking the
    whole heap, they took about a second of every page test."""
    gc.collect()
    gc.freeze()


def pytest_sessionstart(session: pytest.Session) -> None:
    # Orphans (a server whose parent was killed) are re-parented to this process rather than to init, so the
    # check at the end finds everything the run started, and nothing another run on the machine started.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves nothing running: a server, zygote or browser a test started and did not stop fails the run.
    Under pytest-xdist each worker checks what it started; the controller's descendants are the workers."""
    if session.config.pluginmanager.has_plugin("dsession"):
        return
    left: dict[int, str] = {}
    for _ in range(50):  # processes told to stop get a few seconds to go
        while True:  # reap orphans that have ended
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        left = _descendants()
        if not left:
            return
        time.sleep(0.1)
    lines = "\n".join(f"  {pid}: {cmd[:200]}" for pid, cmd in sorted(left.items()))
    print(f"\nFAILED: the test run left {len(left)} process(es) running (now killed):\n{lines}", file=sys.stderr)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
