"""Push fan-out: 1,000 notifications encrypted (RFC 8291), signed (VAPID) and delivered to a push service
on loopback, against plain HTTP POSTs of the very same bodies by the same number of threads.

Target: the ratio under 3 — encryption and signing must not cost more than twice the HTTP itself, so
an authority's morning of alerts goes out at network speed. Subscriptions (each device's own P-256 key
pair and auth secret) are made before the clock starts.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench import Figure, benchmark
from pwa.push import THREADS, Sender
from storage.push_delivery import Job

SIZES = {"tiny": 50, "full": 1000}


class _LoopbackPushService:
    """Answers 201 to every POST and keeps the bodies, like a push service that accepts everything."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        lock = threading.Lock()
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    bodies.append(body)
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jobs(origin: str, n: int) -> list[Job]:
    jobs = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        info = {"endpoint": f"{origin}/push/{i}", "keys": {"p256dh": _b64url(public), "auth": _b64url(os.urandom(16))}}
        data = json.dumps({"title": "Visit due today — J.S.", "body": "Due today, Mon 23 Nov. Tap to open.",
                           "url": f"/child/{i:08d}-0000-4000-8000-000000000000", "tag": f"{i:032d}"[:32],
                           "stage": "due_today"})
        jobs.append(Job(f"d{i}", f"s{i}", info, data, f"{i:032d}"[:32], datetime.now(UTC), 0))
    return jobs


def _plain_posts(origin: str, bodies: list[bytes]) -> float:
    """The same bodies POSTed by as many threads, each with its own keep-alive session."""
    local = threading.local()

    def post(i: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.post(f"{origin}/push/{i}", data=bodies[i], timeout=(5, 15),
                                headers={"TTL": "86400", "Content-Encoding": "aes128gcm"})
        response.raise_for_status()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(post, range(min(2, len(bodies)))))  # warm: connections open before the clock
        started = time.perf_counter()
        list(pool.map(post, range(len(bodies))))
        return time.perf_counter() - started


@benchmark("push_fanout")
def push_fanout(size: str) -> list[Figure]:
    n = SIZES[size]
    service = _LoopbackPushService()
    try:
        jobs = _jobs(service.origin, n)
        sender = Sender(ec.generate_private_key(ec.SECP256R1()), "mailto:bench@seen.invalid")
        try:
            sender.send_many(jobs[:2])  # warm: connections and the VAPID key's first use
            service.bodies.clear()
            started = time.perf_counter()
            outcomes = sender.send_many(jobs)
            pushed = time.perf_counter() - started
        finally:
            sender.close()
        if sum(o.status == "delivered" for o in outcomes) != n:
            raise RuntimeError("not every notification was delivered to the loopback push service")
        plain = _plain_posts(service.origin, list(service.bodies))
    finally:
        service.close()
    ratio = pushed / plain
    full = size == "full"
    return [
        Figure("push_fanout", pushed, "s", baseline=plain, ratio=ratio),
        Figure("push_fanout_ratio", ratio, "x", target=3.0 if full else None),
    ]
