"""Real-browser fixtures: Seen running in its own process, and Debian's chromium driven by Playwright.

`live_server` starts `seen run --demo` on a free loopback port with a fresh data directory holding a copy of
the run's demo store (`demo_template`: what `seen run --demo` would make on its first start, made once per
run); `page` is a phone-sized (360x740) page in a fresh browser context. Playwright never downloads a browser here: it
drives /usr/bin/chromium.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlmodel import select

from storage.models import Child, Visit, Worker
from storage.store import Store
from tests.support import SERVER_KEY, unavailable

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 360, "height": 740}
OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def wait_up(url: str, process_alive: Any, log: Path, timeout: float = 60, *, what: str = "The sync server") -> None:
    """Until `url`/status answers 200; the process's log in the error if it exits first or is not up in time."""
    deadline = time.time() + timeout
    # One client for every try (each `httpx.get` sets one up again, ~30 ms), tried every 20 ms: the fault loop
    # restarts a server hundreds of times.
    with httpx.Client(timeout=1) as http:
        while time.time() < deadline:
            if not process_alive():
                raise RuntimeError(f"{what} exited on start:\n{log.read_text()}")
            try:
                if http.get(f"{url}/status").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not start within {timeout} s:\n{log.read_text()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    """A Seen process on loopback; `restart()` kills it and starts it again on the same data."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        # Without pytest's variables: NiceGUI takes PYTEST_CURRENT_TEST to mean "run as a screen test".
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
        env.update({
            "SEEN_DATA_DIR": str(self.data_dir),
            "SEEN_SERVER_KEY": base64.b64encode(SERVER_KEY).decode(),
            "SEEN_STORAGE_SECRET": "browser-test-secret",
            "SEEN_DATABASE_URL": f"sqlite:///{self.data_dir / 'seen.db'}",
        })
        env.pop("SEEN_NODE_MODE", None)
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.log = self.data_dir / f"server-{int(time.time() * 1000)}.log"
        handle = open(self.log, "w")  # noqa: SIM115 - kept open for the process's life
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pwa.cli", "run", "--demo", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env(), stdout=handle, stderr=subprocess.STDOUT,
        )
        process = self.process
        wait_up(self.url, lambda: process.poll() is None, self.log, what="Seen")

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart(self, kill: bool = True) -> None:
        self.stop(kill=kill)
        self.start()

    def store(self) -> Store:
        """The server's store opened from the test, to check what was really written."""
        s = Store(__import__("storage.db", fromlist=["make_engine"]).make_engine(
            f"sqlite:///{self.data_dir / 'seen.db'}"), outbox=False)
        s.unlock_with_server_key(SERVER_KEY)
        return s


@pytest.fixture
def live_server(tmp_path: Path, demo_template: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path / "server", demo=demo_template) as server:
        yield server


@contextmanager
def running_server(data_dir: Path, demo: Path | None = None, **env: str) -> Iterator[LiveServer]:
    """Seen started in its own process on a new data directory, with `env` added to its environment. `demo`
    (the `demo_template` fixture's file) is copied in as its store first: the demo caseload `seen run --demo`
    would otherwise spend seconds making on its first start (it adds it only to an empty store)."""
    server = LiveServer(data_dir, extra_env=env)
    server.data_dir.mkdir()
    if demo is not None:
        shutil.copy(demo, server.data_dir / "seen.db")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in this thread
    # while it is open, and the NiceGUI User tests in other modules need the thread's loop to themselves.
    if not Path(CHROMIUM).exists():
        unavailable("Debian's chromium is not installed (./test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: object, live_server: LiveServer) -> Iterator[object]:
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, service_workers="allow",  # type: ignore[attr-defined]
                                  is_mobile=True, has_touch=True)
    yield context
    context.close()


@pytest.fixture
def page(context: object) -> object:
    return context.new_page()  # type: ignore[attr-defined]


def sign_in(page: object, username: str = "ben", password: str = "seen-demo") -> None:
    page.goto("/login")  # type: ignore[attr-defined]
    # "Sign in" is answered over NiceGUI's socket: a tap before it connects (seconds, on a loaded machine)
    # would go nowhere, so wait for the page to be ready as a person waits for it to appear.
    wait_connected(page)
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    # A worker lands on their caseload, a manager on their team.
    page.get_by_role("heading", name=re.compile("^(My caseload|Team dashboard)$")).wait_for()  # type: ignore[attr-defined]


def wait_for_caseload_copy(page: object) -> None:
    """Until the page has kept its sealed copy of the caseload (the offline page's child picker reads it).

    Polled here rather than with `wait_for_function`: that treats the promise the check returns as a true value."""
    for _ in range(300):
        if page.evaluate("SeenDrafts.loadCaseload().then(c => c !== null && c.children.length > 0)"):  # type: ignore[attr-defined]
            return
        page.wait_for_timeout(100)  # type: ignore[attr-defined]
    raise AssertionError("the caseload was never kept on the phone for the offline picker")


def wait_until_phone_holds_no_drafts(page: object, timeout_s: float = 60) -> None:
    """Until the phone keeps no draft: each sent and acknowledged, or let go as one Seen holds (polled, as
    `wait_for_function` would take the promise the check returns for a true value)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate("SeenDrafts.counts().then(c => c.total)") == 0:  # type: ignore[attr-defined]
            return
        page.wait_for_timeout(200)  # type: ignore[attr-defined]
    raise AssertionError("the phone still keeps a draft")


def screenshot(page: object, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def no_horizontal_scroll(page: object) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # type: ignore[attr-defined]


# Elements in the page's main column that reach outside the screen (visible ones only).
OUTSIDE_SCREEN = """() => {
  const width = window.innerWidth;
  return [...document.querySelectorAll('main *, [role=main] *')].filter(el => {
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!r.width || !r.height || style.visibility === 'hidden') return false;
    return r.left < -1 || r.right > width + 1;
  }).map(el => el.tagName + '.' + el.className + ': ' + (el.textContent || '').slice(0, 40));
}"""


def outside_screen(page: object) -> list[str]:
    """What in the page's main column is cut off at the screen's left or right edge."""
    return page.evaluate(OUTSIDE_SCREEN)  # type: ignore[attr-defined]


def axe_problems(page: object, within: str | None = None) -> list[str]:
    """axe-core's violations of any impact (minor to critical) on the page (or the part `within` selects):
    WCAG 2.2 A and AA and axe's best practice."""
    from axe_playwright_python.sync_playwright import Axe

    # Every rule axe-core runs by default, and WCAG 2.2's target size (2.5.8), which it leaves off by default.
    options = {"resultTypes": ["violations"], "rules": {"target-size": {"enabled": True}}}
    violations = Axe().run(page, context=within, options=options).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[(n['target'], n['failureSummary']) for n in v['nodes']][:3]}"
            for v in violations]


def check_screen(page: object, name: str, within: str | None = None) -> None:
    """Screenshot; no sideways scrolling, nothing cut off at the screen's edge; no axe-core violation of any
    impact. With a modal open, pass `within` to check only the modal: what lies under its backdrop is
    dimmed on purpose."""
    # Anything fading in is half-transparent: axe would measure its contrast mid-fade.
    page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")  # type: ignore[attr-defined]
    screenshot(page, name)
    assert no_horizontal_scroll(page), f"{name} scrolls sideways at 360 px"
    outside = outside_screen(page)
    assert not outside, f"{name}: cut off at the screen's edge: {outside[:5]}"
    bad = axe_problems(page, within)
    assert not bad, f"{name}: " + "; ".join(bad)


# ---------------------------------------------------------------- the offline part (IndexedDB, service worker)

# Everything the offline part keeps in IndexedDB, bytes as text, so a test can look for plaintext in it.
READ_INDEXEDDB = """async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('seen-offline'); r.onsuccess = () => ok(r.result);
                                               r.onerror = () => no(r.error); });
  const text = (v) => {
    if (v instanceof ArrayBuffer) v = new Uint8Array(v);
    if (ArrayBuffer.isView(v)) return Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
                                                 (b) => String.fromCharCode(b)).join('');
    if (v instanceof CryptoKey) return 'CryptoKey(extractable=' + v.extractable + ')';
    if (v && typeof v === 'object') return Object.entries(v).map(([k, x]) => k + ':' + text(x)).join('|');
    return String(v);
  };
  const out = {};
  for (const name of db.objectStoreNames) {
    out[name] = await new Promise((ok) => { const r = db.transaction(name).objectStore(name).getAll();
                                            r.onsuccess = () => ok(r.result.map(text)); });
  }
  const key = await new Promise((ok) => { const r = db.transaction('keys').objectStore('keys').get('drafts-key');
                                          r.onsuccess = () => ok(r.result); });
  let exported = 'refused';
  try { await crypto.subtle.exportKey('raw', key); exported = 'exported'; } catch (e) {}
  return {stores: out, extractable: key.extractable, exported};
}"""


def read_indexeddb(page: object) -> dict:
    """What the phone's offline store holds: {"stores": {name: [record as text]}, "extractable", "exported"}."""
    return page.evaluate(READ_INDEXEDDB)  # type: ignore[attr-defined]


def assert_sealed_on_the_phone(page: object, *secrets: str, drafts: int = 1) -> None:
    """The phone holds `drafts` drafts, none of `secrets` in plaintext, under a key script cannot read out."""
    stored = read_indexeddb(page)
    assert len(stored["stores"]["drafts"]) == drafts
    dump = repr(stored["stores"])
    for secret in secrets:
        assert secret not in dump, f"{secret!r} is in IndexedDB in plaintext"
    assert stored["extractable"] is False and stored["exported"] == "refused"


def wait_for_worker(page: object) -> None:
    """Until the service worker is active and controls the page (it claims clients as it activates)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        "navigator.serviceWorker.controller !== null && navigator.serviceWorker.controller.state === 'activated'",
        timeout=30000)


def wait_connected(page: object) -> None:
    """Until NiceGUI's socket is connected: a page can be on screen before it is, and until then the page
    treats itself as offline (a photo picked then goes into the draft, not to the uploader)."""
    page.wait_for_function("window.socket !== undefined && window.socket.connected", timeout=30000)  # type: ignore[attr-defined]


def tap_until_shown(button: Any, shown: Any, *, tries: int = 3, timeout: int = 10000) -> None:
    """Taps `button` until `shown` is visible, as a worker whose tap did nothing taps again: in the two-worker CI run
    a tap on a connected page was now and then lost on its way (the review's Save, then the care plan's). For tests
    of what the tap shows (an error summary's accessibility); whether every tap arrives once is the capture tests'."""
    for attempt in range(1, tries + 1):
        button.click()
        try:
            shown.wait_for(timeout=timeout)
            return
        except PlaywrightTimeout:
            if attempt == tries:
                raise


def wait_status(page: object, text: str, timeout: int = 20000) -> None:
    """Until the header's connection status reads `text` ("Online", "Offline · 1 draft waiting"...)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        "(t) => (document.getElementById('seen-connection')?.textContent || '') === t", arg=text, timeout=timeout)


def ben_and_child(server: LiveServer) -> tuple[Worker, str]:
    """Ben, and the first of his children in care."""
    store = server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            child = session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic")
                                 .order_by(Child.id)).first()
            return ben, child.id
    finally:
        store.engine.dispose()


def visits_holding(server: LiveServer, child_id: str, marker: str) -> list[Visit]:
    """The child's visits, opened, whose observations hold `marker`: a test's own visits, by their words."""
    store = server.store()
    try:
        with store.session() as session:
            rows = [store.opened(v) for v in session.exec(select(Visit).where(Visit.child_id == child_id))]
    finally:
        store.engine.dispose()
    return [v for v in rows if marker in (v.observations or "")]
