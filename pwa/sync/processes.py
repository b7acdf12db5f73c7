"""`seen server`'s apply processes: the sync API's heavy requests answered in processes of their own, so that
one server uses every core of its machine.

A Python process runs its Python one thread at a time. With a device's two batches in flight, one merges while
the other waits for PostgreSQL, and the server's one core is the limit: pushing 10,000 changes took ~0.8 s of
server CPU on one core while the other sat a third idle (`python -m bench sync_push`). So `seen server` starts
`SEEN_SYNC_PROCESSES` apply processes (by default one a core on PostgreSQL; none on SQLite, whose one writer at a
time they would only queue behind).

- The server still takes every connection. It reads each POST to /push, /sync and /pull (within the body limit,
  `BodyLimit`) and hands the request, whole, to the apply process with the fewest requests in hand. That process
  answers it with the very app `seen server` runs (the same checks, grouping, refusals and audit), and the server
  sends the answer on. Every other request stays with the server, and so does the due-alert scheduler.
- An apply process opens the store and says it is ready; the server listens only once they are (or a minute has
  passed), and answers a request itself while none is ready.
- An apply process that stops (killed, or crashed) fails the requests it held with 503: the device keeps those
  changes and sends them again, and a change the process had already committed is then counted a duplicate. Another
  process is started in its place.
- An apply process stops when the server does, however the server stopped (even killed): the kernel sends it
  SIGTERM (`PR_SET_PDEATHSIG`), and its end of the socket closes.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from pwa.sync import messages

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
READY = "ready"
STARTING_SECONDS = 60.0  # how long the server waits for its apply processes before it listens anyway
YOUNG_OBJECTS = 50_000  # an apply process's first garbage-collector generation (`serve_apply`)
RESTART_SECONDS = 2.0  # at most one start of an apply process this often, if one keeps stopping
_LOST = messages.Refusal(code="unavailable", message="The server stopped part of itself while answering this "
                         "request. Nothing on the device was lost: Seen will send it again.")

# (id, method, path, query string, headers, client, body): a request as an apply process takes it.
Request = tuple[int, str, str, bytes, list[tuple[bytes, bytes]], tuple[str, int] | None, bytes]
# (status, headers, body): its answer.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))  # noqa: S301 - our own child's frames, on a socketpair


@dataclass
class _Process:
    """One apply process, as the server sees it."""

    number: int
    popen: subprocess.Popen[bytes]
    sock: socket.socket
    started: float
    writer: asyncio.StreamWriter | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    held: dict[int, asyncio.Future[Answer]] = field(default_factory=dict)  # request id -> its answer, to come

    @property
    def open(self) -> bool:
        """Ready, and attached: a request can be handed to it."""
        return self.ready.is_set() and self.writer is not None


class Pool:
    """The server's apply processes. `start` them before the server runs, `attach` them on its event loop (it
    waits until they are ready), `forward` requests to them, and `stop` them once it has stopped."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.processes: list[_Process] = []
        self.ids = itertools.count()
        self.stopping = False
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.processes = [self._spawn(n) for n in range(self.count)]

    def _spawn(self, number: int) -> _Process:
        ours, theirs = socket.socketpair()
        code = f"from pwa.sync.processes import serve_apply; serve_apply({theirs.fileno()}, {os.getpid()})"
        popen = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()])  # noqa: S603
        theirs.close()
        return _Process(number, popen, ours, time.monotonic())

    async def attach(self) -> None:
        """Reads each process's answers from now on (on the running loop), and waits for them to be ready."""
        for process in self.processes:
            await self._attach(process)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in self.processes)), STARTING_SECONDS)
        except TimeoutError:
            log.warning("Not every apply process was ready after %s s: the server answers for those.",
                        STARTING_SECONDS)

    async def _attach(self, process: _Process) -> None:
        reader, process.writer = await asyncio.open_unix_connection(sock=process.sock)
        task = asyncio.create_task(self._read(process, reader))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _read(self, process: _Process, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                frame = await _read_frame(reader)
                if frame == READY:
                    process.ready.set()
                    continue
                request_id, answer = frame
                future = process.held.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, pickle.UnpicklingError):
            pass
        process.ready.clear()
        for future in process.held.values():
            if not future.done():
                future.set_exception(_Stopped())
        process.held.clear()
        if process.writer is not None:
            process.writer.close()
        process.popen.poll()
        if self.stopping:
            return
        log.warning("Apply process %s stopped (exit %s): starting another.", process.number, process.popen.returncode)
        await asyncio.sleep(max(0.0, process.started + RESTART_SECONDS - time.monotonic()))
        if not self.stopping:
            self.processes[process.number] = fresh = self._spawn(process.number)
            await self._attach(fresh)

    def pick(self) -> _Process | None:
        """The ready process with the fewest requests in hand (the first of those, on a tie), if any is ready."""
        ready = [p for p in self.processes if p.open]
        return min(ready, key=lambda p: len(p.held)) if ready else None

    async def forward(self, process: _Process, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The request, read whole, answered by the ready process with the fewest in hand by then (`process`, the
        first picked, if none is ready); 503 if the process stops before it answers."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nothing to answer
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        # Picked again now the request is whole: the one with the fewest in hand now. (Requests that arrive together
        # all found the same one least busy as they began; and a process may have stopped while the body was read:
        # if all have, the one first picked answers 503.)
        process = self.pick() or process
        request_id = next(self.ids)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        process.held[request_id] = future
        request: Request = (request_id, scope["method"], scope["path"], scope.get("query_string", b""),
                            list(scope.get("headers") or []), scope.get("client"), bytes(body))
        try:
            writer = process.writer if process.open else None
            if writer is None:
                raise _Stopped
            writer.write(_frame(request))
            await writer.drain()
            status, headers, content = await future
        except (_Stopped, ConnectionError, OSError):
            process.held.pop(request_id, None)
            content = _LOST.model_dump_json().encode()
            status, headers = 503, [(b"content-type", b"application/json")]
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    def stop(self) -> None:
        """Stops the processes (each finishes the requests it holds first) and waits for them."""
        self.stopping = True
        for process in self.processes:
            process.sock.close()
        for process in self.processes:
            try:
                process.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()


class _Stopped(Exception):
    """The apply process holding a request stopped before answering it."""


class WithProcesses:
    """The server's ASGI app with its apply processes attached as it starts (before it listens)."""

    def __init__(self, app: Any, pool: Pool) -> None:
        self.app = app
        self.pool = pool

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and not self.pool.tasks:
            await self.pool.attach()
        await self.app(scope, receive, send)


# ------------------------------------------------------------ in an apply process


def serve_apply(fd: int, server_pid: int) -> None:
    """An apply process's life: the store opened, the app built, then requests answered until the server goes."""
    _stop_with(server_pid)
    from pwa import state
    from pwa.sync.server import build_app
    from storage.bootstrap import open_server_store

    state.set_store(open_server_store(outbox=True, standalone=True))
    app = build_app()
    gc.collect()
    gc.freeze()  # as `seen server` does (pwa/sync/commands.py)
    # A batch of 500 changes makes ~400,000 objects, almost all freed by their counts as it goes; collected every 700
    # as Python does by default, the young survivors (the batch's own rows and dicts) were walked again and again.
    # Every 50,000 the walks cost ~6% less of a push's CPU (sync_push, three runs each way); cycles still go.
    gc.set_threshold(YOUNG_OBJECTS, 20, 100)
    asyncio.run(_answer_all(socket.socket(fileno=fd), app))


def _stop_with(server_pid: int) -> None:
    """SIGTERM to this process when the server's process ends, on Linux; if it has ended already, exit now."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    if os.getppid() != server_pid:
        sys.exit(0)


async def _answer_all(sock: socket.socket, app: Any) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    writer.write(_frame(READY))
    answering: set[asyncio.Task[None]] = set()
    try:
        while True:
            request: Request = await _read_frame(reader)
            task = asyncio.create_task(_answer(app, request, writer))
            answering.add(task)
            task.add_done_callback(answering.discard)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass  # the server has gone: finish what is in hand (its transactions), then stop
    if answering:
        await asyncio.gather(*answering, return_exceptions=True)


async def _answer(app: Any, request: Request, writer: asyncio.StreamWriter) -> None:
    request_id, method, path, query, headers, client, body = request
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query, "headers": headers, "client": client, "server": None, "state": {}}
    given = False
    status, out_headers, chunks = 500, [(b"content-type", b"text/plain")], [b"Internal Server Error"]

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the connection stays open until the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, out_headers, chunks
        if message["type"] == "http.response.start":
            status, out_headers, chunks = message["status"], list(message.get("headers") or []), []
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception:  # noqa: BLE001 - the app's own 500 (already sent, and logged by it); this process carries on
        log.exception("The sync API failed on %s %s", method, path)
    writer.write(_frame((request_id, (status, out_headers, b"".join(chunks)))))
    await writer.drain()
