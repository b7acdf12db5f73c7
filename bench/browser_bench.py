"""The app in a real browser: Debian's headless chromium (never a downloaded one) against `seen run` on loopback.

- `page_caseload`: time from navigation until all 40 children of a caseload are in the page, against
  NiceGUI's own minimal page (one `ui.label`, served by a tiny NiceGUI app in its own process) in the
  same run and the same browser. Rounds alternate between the two; the medians are compared.
  Target: ratio under 1.5.
- `memory_clients`: the Seen process's resident memory with 50 browser pages connected (each signed in
  and showing that 40-child caseload: NiceGUI keeps each page's element tree on the server while its
  websocket is open), against the same process, warmed up, with none. Target: under 150 MB more.

Both use one Seen process (`seen run --demo`, SQLite, its demo caseload with all 40 children given to
one worker) started once per run.
"""

from __future__ import annotations

import atexit
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select

from bench import Figure, benchmark
from storage.models import Child, Worker
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, PHONE, LiveServer, free_port, sign_in

ROUNDS = {"tiny": 2, "full": 15}
CLIENTS = {"tiny": 3, "full": 50}
CASELOAD = 40
WORKER = "ben"

MINIMAL_APP = textwrap.dedent("""
    from nicegui import ui

    @ui.page("/")
    def index() -> None:
        ui.label("Hello from NiceGUI")

    ui.run(host="127.0.0.1", port={port}, reload=False, show=False, show_welcome_message=False)
""")

_cleanup = ExitStack()
atexit.register(_cleanup.close)
_seen: LiveServer | None = None


def _seen_server() -> LiveServer:
    """`seen run --demo` in its own process, every demo child allocated to one worker; once per run."""
    global _seen
    if _seen is None:
        tmp = Path(_cleanup.enter_context(tempfile.TemporaryDirectory(prefix="seen-bench-browser-")))
        server = LiveServer(tmp / "server")
        server.data_dir.mkdir()
        server.start()
        _cleanup.callback(server.stop)
        store = server.store()
        with store.session() as session:
            worker = session.exec(select(Worker).where(Worker.username == WORKER)).one()
            children = list(session.exec(select(Child)))
            if len(children) < CASELOAD:
                raise RuntimeError(f"the demo caseload has {len(children)} children, not {CASELOAD}")
            for child in children[:CASELOAD]:
                child.worker_id = worker.id
                session.add(child)
        store.engine.dispose()
        _seen = server
    return _seen


class MinimalNiceGUI:
    """NiceGUI's own minimal page, served by a NiceGUI app in its own process."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        script = folder / "minimal_app.py"
        script.write_text(MINIMAL_APP.format(port=self.port))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
        self.process = subprocess.Popen([sys.executable, str(script)], cwd=folder, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the minimal NiceGUI app exited on start")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the minimal NiceGUI app did not start within 60 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _browser(stack: ExitStack) -> Any:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"The browser benchmarks need Debian's chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    playwright = stack.enter_context(sync_playwright())
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    stack.callback(browser.close)
    return browser


def _shown(page: Any, url: str, condition: str) -> float:
    """Seconds from navigating to `url` until `condition` (a JS expression) holds in the page."""
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(condition, polling="raf", timeout=60_000)
    return time.perf_counter() - started


CASELOAD_SHOWN = f"document.querySelectorAll('[data-child]').length >= {CASELOAD}"
LABEL_SHOWN = "document.body && document.body.innerText.includes('Hello from NiceGUI')"


@benchmark("page_caseload")
def page_caseload(size: str) -> list[Figure]:
    seen = _seen_server()
    rounds = ROUNDS[size]
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="seen-bench-minimal-") as tmp:
        minimal = MinimalNiceGUI(Path(tmp))
        stack.callback(minimal.stop)
        browser = _browser(stack)
        seen_context = browser.new_context(viewport=PHONE, base_url=seen.url, is_mobile=True, has_touch=True)
        stack.callback(seen_context.close)
        plain_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        stack.callback(plain_context.close)
        seen_page = seen_context.new_page()
        sign_in(seen_page, WORKER)
        plain_page = plain_context.new_page()
        # Warm both: first loads fetch and cache NiceGUI's scripts and styles.
        _shown(seen_page, f"{seen.url}/", CASELOAD_SHOWN)
        _shown(plain_page, minimal.url, LABEL_SHOWN)
        caseload, plain = [], []
        for _ in range(rounds):
            caseload.append(_shown(seen_page, f"{seen.url}/", CASELOAD_SHOWN))
            plain.append(_shown(plain_page, minimal.url, LABEL_SHOWN))
    value, baseline = statistics.median(caseload), statistics.median(plain)
    ratio = value / baseline
    full = size == "full"
    return [
        Figure("page_caseload", value * 1000, "ms", baseline=baseline * 1000, ratio=ratio),
        Figure("page_caseload_ratio", ratio, "x", target=1.5 if full else None),
    ]


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as kids:
                    pending.extend(int(k) for k in kids.read().split())
        except FileNotFoundError:
            continue
    return total / 1024


def _settled_rss(pid: int, seconds: float = 3.0) -> float:
    """RSS after the process has been left alone for a moment (the highest of a few readings)."""
    readings = []
    for _ in range(int(seconds / 0.5)):
        time.sleep(0.5)
        readings.append(_rss_mb(pid))
    return max(readings[-3:])


@benchmark("memory_clients")
def memory_clients(size: str) -> list[Figure]:
    seen = _seen_server()
    assert seen.process is not None
    n = CLIENTS[size]
    full = size == "full"
    with ExitStack() as stack:
        browser = _browser(stack)
        context = browser.new_context(viewport=PHONE, base_url=seen.url, is_mobile=True, has_touch=True)
        stack.callback(context.close)
        first = context.new_page()
        sign_in(first, WORKER)
        _shown(first, f"{seen.url}/", CASELOAD_SHOWN)  # warm: code paths, caches and the sign-in done
        first.goto("about:blank")  # its client disconnects; NiceGUI drops it after the reconnect timeout
        time.sleep(5 if full else 1)
        idle = _settled_rss(seen.process.pid, 3.0 if full else 1.5)
        pages = []
        for _ in range(n):
            page = context.new_page()
            _shown(page, f"{seen.url}/", CASELOAD_SHOWN)
            pages.append(page)
        connected = _settled_rss(seen.process.pid, 3.0 if full else 1.5)
        for page in pages:
            page.close()
    more = connected - idle
    return [
        Figure("memory_clients", more, "MB", baseline=idle, target=150.0 if full else None),
        Figure("memory_per_client", more / n, "MB"),
    ]
