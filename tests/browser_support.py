"""Real-browser fixtures: Seen running in its own process, and Debian's chromium driven by Playwright.

`live_server` starts `seen run --demo` on a free loopback port with a fresh data directory; `page` is a
phone-sized (360x740) page in a fresh browser context. Playwright never downloads a browser here: it
drives /usr/bin/chromium.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from storage.store import Store
from tests.support import SERVER_KEY

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 360, "height": 740}
OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


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
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Seen exited on start:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/status", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Seen did not start within 60 s:\n{self.log.read_text()}")

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
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "server")
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in this thread
    # while it is open, and the NiceGUI User tests in other modules need the thread's loop to themselves.
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (./test installs it)")
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
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="My caseload").wait_for()  # type: ignore[attr-defined]


def screenshot(page: object, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def no_horizontal_scroll(page: object) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # type: ignore[attr-defined]
