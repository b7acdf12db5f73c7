"""Push notifications: the public key and subscription API, delivery through pywebpush, and the scheduler.

What to send and to whom is decided in `storage.notify`; this module gets it to the workers' devices.

- `GET /api/push/key`: the server's VAPID public key, the browser's applicationServerKey.
- `POST /api/push/subscribe` / `POST /api/push/unsubscribe`: a signed-in worker's device, by its
  PushSubscription JSON; `POST /api/push/status` says whether the server holds it for them. `/api/` is
  open in the sign-in middleware (sync authenticates by device token), so these check the NiceGUI session
  themselves. Signing out (not the idle lock) forgets the subscriptions made in that browser session.
- `Sender`: pywebpush with a TTL, a timeout, fresh VAPID claims on every call, retries with back-off on
  429 and 5xx (honouring Retry-After), many subscriptions at once on a thread pool.
- `run_once` / `start_scheduler`: every SEEN_SCHEDULER_MINUTES, decide, queue and deliver. On
  PostgreSQL one instance at a time, by advisory lock.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Request
from fastapi.responses import JSONResponse
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from storage import notify, push_delivery
from storage.models import utcnow
from storage.store import Store

log = logging.getLogger("seen.push")

TTL_SECONDS = 24 * 60 * 60  # a phone that is off for the night still gets the alert in the morning
TIMEOUT = (5.0, 15.0)  # connect, read: a stuck push service must not hold a sending thread
TRIES = 4
BACKOFF_SECONDS = 0.5
MAX_INLINE_WAIT = 30.0  # a longer Retry-After is honoured by trying again at a later run
THREADS = 8
KEEP_DELIVERED = timedelta(days=7)
ENDPOINTS_KEY = "push_endpoints"  # in the browser's session storage: the subscriptions made while signed in


def vapid_subject() -> str:
    """Who the push services may contact about our traffic: a mailto: or https: address."""
    return os.environ.get("SEEN_VAPID_SUBJECT", "mailto:seen-admin@seen.invalid")


# ---------------------------------------------------------------- delivery


@dataclass
class Outcome:
    """How one message fared: delivered, gone (404/410: remove the subscription), retry later, or failed."""

    status: str
    code: int | None = None
    wait: float = 0.0
    detail: str = ""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


class Sender:
    """Delivers Web Push messages with pywebpush, many at once, each with its own retries."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, subject: str | None = None, *,
                 ttl: int = TTL_SECONDS, timeout: tuple[float, float] = TIMEOUT, tries: int = TRIES,
                 backoff: float = BACKOFF_SECONDS, threads: int = THREADS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.vapid = Vapid02(private_key=private_key)
        self.subject = subject or vapid_subject()
        self.ttl = ttl
        self.timeout = timeout
        self.tries = tries
        self.backoff = backoff
        self.sleep = sleep
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="seen-push")
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # One HTTP session per sending thread: connections to a push service are reused, not shared.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def send(self, info: dict[str, Any], data: str, topic: str = "") -> Outcome:
        """One message to one subscription, retried on 429/5xx/network errors. Blocks: run it on the pool."""
        try:
            push_delivery.check_endpoint(info["endpoint"])  # a subscription stored before the address was checked
        except push_delivery.BadSubscription as e:
            return Outcome("gone", detail=f"not sent, and the subscription removed: {e}")
        headers = {"Urgency": "normal"}
        if topic:
            headers["Topic"] = topic
        last = Outcome("retry", detail="not tried")
        for attempt in range(self.tries):
            wait = self.backoff * (2 ** attempt) * (1 + random.random() / 2)
            try:
                webpush(info, data, vapid_private_key=self.vapid,
                        # A fresh dict every call: pywebpush writes `aud` and `exp` into the one it is given.
                        vapid_claims={"sub": self.subject},
                        ttl=self.ttl, timeout=self.timeout, headers=headers, requests_session=self._session())
                return Outcome("delivered", 201)
            except WebPushException as e:
                code = e.status_code
                if code in (404, 410):
                    return Outcome("gone", code, detail=f"the push service answered {code}: subscription gone")
                if code is None or not (code == 429 or code >= 500):
                    return Outcome("failed", code, detail=f"the push service refused the message: {code}")
                wait = max(wait, retry_after_seconds(e.retry_after) or 0.0)
                last = Outcome("retry", code, wait, f"the push service answered {code}")
            except requests.RequestException as e:
                last = Outcome("retry", None, wait, f"could not reach the push service: {e.__class__.__name__}")
            if attempt == self.tries - 1 or wait > MAX_INLINE_WAIT:
                last.wait = wait
                return last
            self.sleep(wait)
        return last

    def send_many(self, jobs: Iterable[push_delivery.Job],
                  on_outcome: Callable[[push_delivery.Job, Outcome], None] | None = None) -> list[Outcome]:
        """Sends every job: subscriptions concurrently, each one's messages in order.

        `on_outcome` is called in this thread the moment each message is settled, so the caller can
        record it at once. After a 404/410 the subscription's remaining messages are not tried.
        """
        by_subscription: dict[str, list[push_delivery.Job]] = defaultdict(list)
        for job in jobs:
            by_subscription[job.subscription_id].append(job)
        settled: queue.Queue[tuple[push_delivery.Job, Outcome] | None] = queue.Queue()

        def send_in_order(batch: list[push_delivery.Job]) -> None:
            gone: Outcome | None = None
            try:
                for job in batch:
                    outcome = gone or self.send(job.info, job.data, job.topic)
                    if outcome.status == "gone":
                        gone = outcome
                    settled.put((job, outcome))
            finally:
                settled.put(None)

        for batch in by_subscription.values():
            self.pool.submit(send_in_order, batch)
        outcomes: list[Outcome] = []
        running = len(by_subscription)
        while running:
            item = settled.get()
            if item is None:
                running -= 1
                continue
            job, outcome = item
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(job, outcome)
        return outcomes

    async def send_many_async(self, jobs: Iterable[push_delivery.Job]) -> list[Outcome]:
        """The same, awaited from the event loop without blocking it."""
        loop = asyncio.get_running_loop()
        jobs = list(jobs)
        return list(await asyncio.gather(*(
            loop.run_in_executor(self.pool, self.send, job.info, job.data, job.topic) for job in jobs)))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


# ---------------------------------------------------------------- one run of the scheduler


@dataclass
class RunReport:
    """What one scheduler run did."""

    ran: bool = True  # False: another instance holds the lock
    decided: int = 0
    delivered: int = 0
    gone: int = 0  # subscriptions removed
    retry: int = 0
    failed: int = 0
    details: list[str] = field(default_factory=list)


_senders: dict[int, Sender] = {}
_senders_lock = threading.Lock()


def sender_for(store: Store) -> Sender:
    """The store's sender, made once with its VAPID key."""
    with _senders_lock:
        sender = _senders.get(id(store))
        if sender is None:
            sender = _senders[id(store)] = Sender(push_delivery.vapid_private_key(store))
        return sender


def _settler(store: Store, report: RunReport, now: datetime, sender: Sender
             ) -> Callable[[push_delivery.Job, Outcome], None]:
    """What to do with each answer the push service gives in one run (counted in `report`)."""
    removed: set[str] = set()

    def settle(job: push_delivery.Job, outcome: Outcome) -> None:
        # Marked the moment the push service answers: a crash now can repeat one message, never lose one.
        if outcome.status == "delivered":
            push_delivery.mark_delivered(store, job.delivery_id, utcnow())
            report.delivered += 1
        elif outcome.status == "gone":
            if job.subscription_id not in removed:
                push_delivery.remove_subscription(store, job.subscription_id)
                removed.add(job.subscription_id)
                report.gone += 1
        elif outcome.status == "retry":
            # `now` is the run's clock (a test's or `seen notify --at`'s too): the next try is judged by it.
            push_delivery.mark_retry(store, job.delivery_id, now + timedelta(seconds=max(outcome.wait, 60)),
                                     outcome.detail, timedelta(seconds=sender.ttl))
            report.retry += 1
        else:
            push_delivery.mark_failed(store, job.delivery_id, outcome.detail)
            report.failed += 1
        if outcome.detail:
            report.details.append(outcome.detail)

    return settle


def run_once(store: Store, now: datetime | None = None, sender: Sender | None = None) -> RunReport:
    """Decides what is new, queues it, and delivers everything queued whose time has come. Blocking."""
    now = now or utcnow()
    with push_delivery.scheduler_lock(store) as held:
        if not held:
            return RunReport(ran=False)
        sender = sender or sender_for(store)
        report = RunReport(decided=len(notify.record(store, now)))
        settle = _settler(store, report, now, sender)
        if not notify.is_quiet(now):  # a retry due at night waits for the morning too
            sender.send_many(push_delivery.due_jobs(store, now), settle)
        push_delivery.forget_delivered(store, now - KEEP_DELIVERED)
    if report.decided or report.delivered or report.gone or report.retry or report.failed:
        log.info("push run: %s alerts decided, %s delivered, %s gone, %s to retry, %s failed",
                 report.decided, report.delivered, report.gone, report.retry, report.failed)
    return report


def deliver_now(store: Store, delivery_ids: Iterable[str], sender: Sender | None = None) -> RunReport:
    """Sends these queued messages at once, at any hour: a child who does not feel safe is not kept till
    morning. Blocking; what the push service does not take now, the scheduler retries."""
    wanted = set(delivery_ids)
    now = utcnow()
    report = RunReport()
    if not wanted:
        return report
    sender = sender or sender_for(store)
    jobs = [job for job in push_delivery.due_jobs(store, now) if job.delivery_id in wanted]
    sender.send_many(jobs, _settler(store, report, now, sender))
    return report


async def run_once_async(store: Store, now: datetime | None = None, sender: Sender | None = None) -> RunReport:
    return await asyncio.get_running_loop().run_in_executor(None, run_once, store, now, sender)


class SchedulerHandle:
    """A running scheduler: an asyncio task on the app's loop, or a thread of its own."""

    def __init__(self, store: Store, minutes: float, first_delay: float) -> None:
        self.store = store
        self.minutes = minutes
        self.first_delay = first_delay
        self.task: asyncio.Task[None] | None = None
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while not self._stop.is_set():
            try:
                await run_once_async(self.store)
            except Exception:  # noqa: BLE001 - the scheduler must outlive one bad run
                log.exception("the push scheduler run failed; it will run again")
            await asyncio.sleep(self.minutes * 60)

    def _thread_main(self) -> None:
        if self._stop.wait(self.first_delay):
            return
        while True:
            try:
                run_once(self.store)
            except Exception:  # noqa: BLE001
                log.exception("the push scheduler run failed; it will run again")
            if self._stop.wait(self.minutes * 60):
                return

    def stop(self) -> None:
        self._stop.set()
        if self.task is not None:
            self.task.cancel()
        if self.thread is not None:
            self.thread.join(timeout=30)


def start_scheduler(store: Store | None = None, minutes: float | None = None, first_delay: float = 5.0
                    ) -> SchedulerHandle:
    """Starts the scheduler: on the running event loop if there is one, else on a thread of its own.

    For the all-in-one server `install` starts it on app start-up; `seen server` can call this too.
    """
    from storage.config import settings

    if store is None:
        from pwa import state

        store = state.store()
    handle = SchedulerHandle(store, float(minutes if minutes is not None else settings().scheduler_minutes),
                             first_delay)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        handle.thread = threading.Thread(target=handle._thread_main, name="seen-push-scheduler", daemon=True)
        handle.thread.start()
    else:
        handle.task = loop.create_task(handle._loop())
    return handle


# ---------------------------------------------------------------- the HTTP API


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise push_delivery.BadSubscription("Send the subscription as JSON (Content-Type: application/json).")
    try:
        return await request.json()
    except ValueError:
        raise push_delivery.BadSubscription("The subscription is not valid JSON.") from None


def install(app: Any) -> None:
    """Adds the push API and the settings section, and starts the scheduler with the app.

    The service worker's push script (pwa/static/sw-push.js) is served at /pwa/ by the PWA shell.
    """
    from pwa import state
    from pwa.auth import SIGN_OUT_HOOKS, signed_in_worker
    from pwa.security import same_origin
    from pwa.threads import io_bound

    @app.get("/api/push/key")
    async def push_key() -> dict[str, str]:
        key = await io_bound(push_delivery.vapid_private_key, state.store())
        return {"publicKey": push_delivery.public_key_b64url(key)}

    @app.post("/api/push/subscribe")
    async def push_subscribe(request: Request) -> JSONResponse:
        worker = await signed_in_worker()
        if worker is None:
            return _refuse(401, "Sign in to Seen to turn on notifications.")
        if not same_origin(request):
            return _refuse(403, "Notifications can only be turned on from Seen itself.")
        try:
            body = await _json_body(request)
            sub = await io_bound(push_delivery.subscribe, state.store(), worker.id, body)
        except push_delivery.BadSubscription as e:
            return _refuse(400, str(e))
        # Remembered with this browser's session, so signing out here forgets this device.
        user = app.storage.user
        user[ENDPOINTS_KEY] = sorted({*user.get(ENDPOINTS_KEY, []), sub.endpoint_hash})
        return JSONResponse({"ok": True})

    @app.post("/api/push/status")
    async def push_status(request: Request) -> JSONResponse:
        """Whether the server holds this browser's subscription for the signed-in worker."""
        worker = await signed_in_worker()
        if worker is None:
            return _refuse(401, "Sign in to Seen to see whether notifications are on.")
        try:
            body = await _json_body(request)
            endpoint = body.get("endpoint") if isinstance(body, dict) else None
            held = await io_bound(push_delivery.is_subscribed, state.store(), worker.id, endpoint)
        except push_delivery.BadSubscription as e:
            return _refuse(400, str(e))
        return JSONResponse({"subscribed": held})

    @app.post("/api/push/unsubscribe")
    async def push_unsubscribe(request: Request) -> JSONResponse:
        worker = await signed_in_worker()
        if worker is None:
            return _refuse(401, "Sign in to Seen to turn off notifications.")
        if not same_origin(request):
            return _refuse(403, "Notifications can only be turned off from Seen itself.")
        try:
            body = await _json_body(request)
            endpoint = body.get("endpoint") if isinstance(body, dict) else None
            removed = await io_bound(push_delivery.unsubscribe, state.store(), worker.id, endpoint)
        except push_delivery.BadSubscription as e:
            return _refuse(400, str(e))
        return JSONResponse({"ok": True, "removed": removed})

    from pwa.push_settings import add_to_settings

    add_to_settings()
    if forget_this_device not in SIGN_OUT_HOOKS:
        SIGN_OUT_HOOKS.append(forget_this_device)
    install_scheduler(app)


def forget_this_device(worker_id: str, session_storage: dict[str, Any]) -> None:
    """A worker who signs out of a browser stops getting alerts on it (a shared laptop, a handed-back phone)."""
    from pwa import state

    push_delivery.forget_devices(state.store(), worker_id, session_storage.get(ENDPOINTS_KEY, []))


def install_scheduler(app: Any) -> None:
    """Runs the scheduler for as long as `app` runs (on a server node with SEEN_SCHEDULER_MINUTES > 0).

    On NiceGUI's app it starts with the app's event loop and stops with it; on a plain ASGI app (`seen
    server`) it starts now, on a thread of its own that ends with the process.
    """
    from pwa import state
    from storage.config import settings

    config = settings()
    holder: dict[str, SchedulerHandle] = {}

    def start() -> None:
        store = state.store()
        if config.node_mode != "server" or config.scheduler_minutes <= 0 or store.locked:
            return  # a personal node never sends; the server does
        holder["scheduler"] = start_scheduler(store, config.scheduler_minutes)

    def stop() -> None:
        if "scheduler" in holder:
            holder.pop("scheduler").stop()

    if hasattr(app, "on_startup") and hasattr(app, "on_shutdown"):
        app.on_startup(start)
        app.on_shutdown(stop)
    else:
        start()
