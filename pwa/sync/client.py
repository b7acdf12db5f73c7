"""The node's sync client: a small state machine, in the manner of PouchDB's replicator.

    idle -> pushing -> sending_audit -> pulling -> checkpointing -> (pulling ...) -> idle
                 \\___________\\__________________\\______________-> backing_off (network or server down)
    any -> wiped (the server says this device is revoked: local records and keys are deleted)

Every step is idempotent: a batch pushed twice is applied once (the server keys changes by id), the
node's audit events likewise (the server keys them by device and event, and the node moves its audit
cursor only when the server has confirmed them), and the cursor is saved in the same transaction as the
pulled changes it covers, so a crash anywhere loses nothing and repeats nothing. The loop runs in the
node's background and on demand ("Sync now").
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from pydantic import ValidationError

from pwa.sync import messages
from pwa.sync.messages import PREFIX
from storage.store import Store
from storage.sync import node as sync_node
from storage.sync import pull as sync_pull
from storage.sync.node import Enrolment

log = logging.getLogger("seen.sync")
INTERVAL_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 300.0


class Phase(StrEnum):
    idle = "idle"
    pushing = "pushing"
    sending_audit = "sending_audit"
    pulling = "pulling"
    checkpointing = "checkpointing"
    backing_off = "backing_off"
    wiped = "wiped"
    not_enrolled = "not_enrolled"
    locked = "locked"


class SyncUnavailable(Exception):
    """The server could not be reached or failed: try again later (with back-off)."""


class SyncFailed(Exception):
    """The server refused something it will go on refusing: the worker must be told."""


class DeviceWiped(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass
class SyncReport:
    phase: Phase
    pushed: int = 0
    duplicates: int = 0
    pulled: int = 0
    removed: int = 0
    conflicts: int = 0
    refused: int = 0
    outdated: int = 0  # pushed, but later writes held by the server won: they changed nothing there
    audit_sent: int = 0
    audit_refused: int = 0
    held: int = 0  # changes for a child who has left this worker, held on the server for a manager
    message: str = ""


class SyncClient:
    """Pushes this node's outbox and pulls the server's changes; one sync at a time."""

    def __init__(self, store: Store, *, http: httpx.Client | None = None, urls: list[str] | None = None,
                 batch_size: int = messages.MAX_BATCH, page_size: int = 200,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.http = http or httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0))
        self.urls = urls
        self.batch_size = batch_size
        self.page_size = page_size
        self.rng = rng or random.Random()
        self.phase = Phase.idle
        self.failures = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------ enrolment

    def enrol(self, server_url: str, code: str, device_name: str) -> Enrolment:
        """Spends a one-time code with the server and keeps the device token, sealed, in this node."""
        server_url = server_url.rstrip("/")
        answer = self._post_to(server_url, "/enrol", {"code": code, "device_name": device_name}, token="")
        enrolled = messages.Enrolled.model_validate(answer)
        enrolment = Enrolment(server_url=server_url, device_id=enrolled.device_id, token=enrolled.token,
                              worker_id=enrolled.worker_id, username=enrolled.username)
        sync_node.save_enrolment(self.store, enrolment)
        return enrolment

    # ------------------------------------------------------------ the loop

    def sync_once(self) -> SyncReport:
        """One full sync: push everything waiting, then pull until the server has nothing more."""
        with self._lock:
            try:
                report = self._sync()
            except SyncUnavailable as e:
                self.failures += 1
                self.phase = Phase.backing_off
                sync_node.record_error(self.store, str(e))
                return SyncReport(Phase.backing_off, message=str(e))
            except SyncFailed as e:
                self.failures += 1
                self.phase = Phase.backing_off
                sync_node.record_error(self.store, str(e))
                return SyncReport(Phase.backing_off, message=str(e))
            except DeviceWiped as e:
                self.phase = Phase.wiped
                return SyncReport(Phase.wiped, message=str(e))
            self.failures = 0
            sync_node.record_error(self.store, "")
            return report

    def next_delay(self) -> float:
        """Seconds until the next background sync: the interval, or exponential back-off after failures."""
        if self.failures == 0:
            return INTERVAL_SECONDS
        return min(MAX_BACKOFF_SECONDS, 5.0 * 2 ** (self.failures - 1)) * (0.5 + self.rng.random() / 2)

    def _sync(self) -> SyncReport:
        if self.store.locked:
            self.phase = Phase.locked
            return SyncReport(Phase.locked, message="Seen is locked; unlock it to sync.")
        enrolment = sync_node.load_enrolment(self.store)
        if enrolment is None:
            self.phase = Phase.not_enrolled
            return SyncReport(Phase.not_enrolled, message="This device is not enrolled with a server yet.")
        report = SyncReport(Phase.idle)
        self.phase = Phase.pushing
        sync_node.send_photos_whole_once(self.store)
        last = self._push_all(enrolment, report)
        self.phase = Phase.sending_audit
        self._send_audit(enrolment, report)
        self.phase = Phase.pulling
        self._pull_all(enrolment, report, last)
        self.phase = Phase.idle
        return report

    def _push_all(self, enrolment: Enrolment, report: SyncReport) -> list[dict[str, Any]]:
        """Pushes every batch but the last, which is returned to go with the first pull (one request).

        While the server applies a batch, the next is sent (two in flight at most), so the device's reading and
        the network overlap the server's work, unless it refers to a record of the batch in flight (a visit of a
        child that batch creates, a second edit of one record): the server may apply two batches in flight in
        either order, so such a batch waits for the answer first. Answers are taken in the order sent."""
        key = messages.token_key(enrolment.token)
        in_flight: tuple[list[dict[str, Any]], Future[dict[str, Any]]] | None = None
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="seen-sync-push") as sender:
            while True:
                sending = [c["change_id"] for c in in_flight[0]] if in_flight is not None else []
                changes = sync_node.pending_changes(self.store, self.batch_size, skip=sending)
                if not changes:
                    break
                last = sync_node.holds(self.store)["waiting"] <= len(changes) + len(sending)
                if in_flight is not None and (last or refers_to(changes, in_flight[0])):
                    self._settle(enrolment, key, *in_flight, report)
                    in_flight = None
                    continue  # what is waiting now, with the answer taken
                if last:
                    return changes
                sent = sender.submit(self._send, enrolment, "/push", self._batch(key, changes))
                if in_flight is not None:
                    self._settle(enrolment, key, *in_flight, report)
                in_flight = (changes, sent)
            if in_flight is not None:
                self._settle(enrolment, key, *in_flight, report)
        return []

    def _settle(self, enrolment: Enrolment, key: str, changes: list[dict[str, Any]],
                sent: Future[dict[str, Any]], report: SyncReport) -> None:
        """A pushed batch's answer taken (as `_push` takes it); a batch refused as a whole is sent again change by
        change, so only the changes at fault are set aside."""
        try:
            answer = self._wiped_if_told(sent.result)
        except _Refused as refused:
            if self._push_refused(refused, changes, report) is None and len(changes) > 1:
                for change in changes:
                    self._push(enrolment, key, [change], report)
            return
        self._pushed(messages.PushResult.model_validate(answer), report)

    @staticmethod
    def _batch(key: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
        wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
        batch_id = str(uuid.uuid4())
        return {"batch_id": batch_id, "changes": wire, "signature": messages.batch_signature(key, batch_id, wire)}

    def _push(self, enrolment: Enrolment, key: str, changes: list[dict[str, Any]],
              report: SyncReport) -> messages.PushResult | None:
        try:
            answer = self._post(enrolment, "/push", self._batch(key, changes))
        except _Refused as refused:
            return self._push_refused(refused, changes, report)
        return self._pushed(messages.PushResult.model_validate(answer), report)

    def _push_refused(self, refused: _Refused, changes: list[dict[str, Any]],
                      report: SyncReport) -> messages.PushResult | None:
        """A batch refused whole: its changes the server named are set aside; None when the batch as a whole was
        not valid (then its changes are sent one by one)."""
        if refused.status == 403 and refused.body.change_ids:
            for change_id in refused.body.change_ids:
                sync_node.mark_refused(self.store, [change_id],
                                        refused.body.reasons.get(change_id, refused.body.message))
            report.refused += len(refused.body.change_ids)
            return None if len(changes) == 1 else messages.PushResult(applied=[], duplicates=[],
                                                                      conflicts=0, cursor=0)
        if refused.status in (409, 422) and len(changes) == 1:
            sync_node.mark_refused(self.store, [changes[0]["change_id"]], refused.body.message)
            report.refused += 1
            return None
        if refused.status in (409, 422):
            return None
        raise SyncFailed(refused.body.message)

    def _pushed(self, result: messages.PushResult, report: SyncReport) -> messages.PushResult:
        # A change held for a manager (its child has left this worker) is the server's to keep now.
        sync_node.mark_pushed(self.store, [*result.applied, *result.duplicates, *result.outdated, *result.held])
        for change_id, reason in result.refused.items():
            sync_node.mark_refused(self.store, [change_id], reason)
        report.refused += len(result.refused)
        report.held += len(result.held)
        report.pushed += len(result.applied)
        report.outdated += len(result.outdated)
        report.duplicates += len(result.duplicates)
        report.conflicts += result.conflicts
        return result

    def _send_audit(self, enrolment: Enrolment, report: SyncReport) -> None:
        """Sends this node's own audit events to the server's chain; the node's chain stays as it is."""
        key = messages.token_key(enrolment.token)
        while events := sync_node.pending_audit_events(self.store, messages.MAX_AUDIT_EVENTS):
            wire: list[dict[str, Any]] = []
            for event in events:
                try:
                    wire.append(messages.AuditEventUpload.model_validate(event).model_dump(mode="json"))
                except ValidationError:
                    sync_node.set_audit_aside(self.store, [event["id"]], "This audit event does not fit the "
                                               "server's (a field is too long), so it is kept on this device only.")
                    report.audit_refused += 1
            if len(wire) < len(events):
                continue
            batch_id = str(uuid.uuid4())
            payload = {"batch_id": batch_id, "events": wire,
                       "signature": messages.audit_signature(key, batch_id, wire)}
            try:
                answer = self._post(enrolment, "/audit", payload)
            except _Refused as refused:
                sent = {e["id"] for e in events}
                named = [i for i in refused.body.change_ids if i in sent]
                if refused.status != 403 or not named:
                    raise SyncFailed(refused.body.message) from None
                sync_node.set_audit_aside(self.store, named, refused.body.message)
                report.audit_refused += len(named)
                continue
            result = messages.AuditResult.model_validate(answer)
            if {*result.recorded, *result.duplicates} != {e["id"] for e in events}:
                raise SyncFailed("The sync server did not confirm every audit event sent; Seen will send them again.")
            sync_node.mark_audit_sent(self.store, events[-1]["seq"])
            report.audit_sent += len(result.recorded)

    def _push_and_pull(self, enrolment: Enrolment, changes: list[dict[str, Any]], request: dict[str, Any],
                       report: SyncReport) -> messages.PullPage | None:
        """The last batch and the first pull in one request (`/sync`); None when the batch was refused (its
        refusal handled as a push's) or the server has no `/sync`: then the pull goes alone."""
        key = messages.token_key(enrolment.token)
        try:
            answer = self._post(enrolment, "/sync", {"push": self._batch(key, changes), "pull": request})
        except _Refused as refused:
            if refused.status in (404, 405):  # a server older than `/sync`
                result = self._push(enrolment, key, changes, report)
            else:
                result = self._push_refused(refused, changes, report)
            if result is None and len(changes) > 1:
                for change in changes:
                    self._push(enrolment, key, [change], report)
            return None
        both = messages.SyncResult.model_validate(answer)
        self._pushed(both.push, report)
        return both.pull

    def _pull_all(self, enrolment: Enrolment, report: SyncReport, last: list[dict[str, Any]]) -> None:
        for page_no in range(10_000):
            request = {"cursor": sync_node.cursor(self.store), "held": sync_node.held_children(self.store),
                       "limit": self.page_size, "directory_version": sync_node.directory_version(self.store)}
            page = None
            if page_no == 0 and last:
                # What this node will hold once the batch is taken (the server counts a refused one as set aside).
                request["holds"] = sync_node.holds(self.store, taking=[c["change_id"] for c in last])
                page = self._push_and_pull(enrolment, last, request, report)
            if page is None:
                if page_no == 0:  # what this node still holds, after pushing: its manager sees it
                    request["holds"] = sync_node.holds(self.store)
                try:
                    answer = self._post(enrolment, "/pull", request)
                except _Refused as refused:
                    raise SyncFailed(refused.body.message) from None
                page = messages.PullPage.model_validate(answer)
            self.phase = Phase.checkpointing
            report.pulled += sync_node.apply_pulled(self.store, sync_pull.PullPage(
                changes=[c.model_dump(mode="json") for c in page.changes], removals=page.removals,
                directory=page.directory, cursor=page.cursor, more=page.more,
                directory_version=page.directory_version, photo_limit=page.photo_limit))
            report.removed += len(page.removals)
            self.phase = Phase.pulling
            if not page.more:
                return

    # ------------------------------------------------------------ talking to the server

    def _post(self, enrolment: Enrolment, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._wiped_if_told(lambda: self._send(enrolment, path, payload))

    def _send(self, enrolment: Enrolment, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.rng.choice(self.urls) if self.urls else enrolment.server_url
        return self._post_to(url, path, payload, token=enrolment.token)

    def _wiped_if_told(self, answer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """What `answer` gives; a device told it is revoked wipes itself (in the sync's own thread)."""
        try:
            return answer()
        except _Refused as refused:
            if refused.body.wipe:
                sync_node.wipe(self.store)
                raise DeviceWiped(refused.body.message) from None
            raise

    def _post_to(self, url: str, path: str, payload: dict[str, Any], *, token: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self.http.post(f"{url}{PREFIX}{path}", content=messages.request_body(payload),
                                      headers={**headers, "Content-Type": "application/json"})
        except httpx.HTTPError as e:
            raise SyncUnavailable(f"The sync server could not be reached ({e.__class__.__name__}); "
                                  "Seen will try again.") from e
        if response.status_code >= 500:
            raise SyncUnavailable(f"The sync server had a problem (HTTP {response.status_code}); "
                                  "Seen will try again.")
        if response.status_code >= 400:
            try:
                body = messages.Refusal.model_validate(response.json())
            except ValueError:
                body = messages.Refusal(code="http", message=f"The sync server refused (HTTP {response.status_code}).")
            raise _Refused(response.status_code, body)
        return response.json()


class _Refused(Exception):
    def __init__(self, status: int, body: messages.Refusal) -> None:
        super().__init__(body.message)
        self.status = status
        self.body = body


# ------------------------------------------------------------ in the app

_clients: dict[int, SyncClient] = {}


def refers_to(changes: list[dict[str, Any]], earlier: list[dict[str, Any]]) -> bool:
    """Whether any of `changes` names a record of `earlier` (its own id, or any id among its fields and body)."""
    ids = {c["record_id"] for c in earlier}
    return any(_names(change, ids) for change in changes)


def _names(value: Any, ids: set[str]) -> bool:
    """Whether `value` (text, or lists and objects of them, to any depth) holds one of `ids`. Looped, not walked by
    generators, which cost ~10 ms a batch of 500 visits while the next batch waited to be sent."""
    if isinstance(value, str):
        return value in ids
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ()
    for item in items:
        if type(item) is str:
            if item in ids:
                return True
        elif isinstance(item, dict | list | tuple) and _names(item, ids):
            return True
    return False


def client_for(store: Store) -> SyncClient:
    """The one sync client of a store, shared by the background loop and the "Sync now" button."""
    if id(store) not in _clients:
        _clients[id(store)] = SyncClient(store)
    return _clients[id(store)]


async def background_loop(store: Store) -> None:
    """Syncs while the app runs: every minute when the network is there, backing off when it is not."""
    from pwa.threads import io_bound

    sync = client_for(store)
    while True:
        started = time.monotonic()
        try:
            report = await io_bound(sync.sync_once)  # cancelled (the app stopping) ends the loop
            if report.phase == Phase.wiped:
                log.warning("This device was revoked and its local records wiped: %s", report.message)
                return
        except Exception:  # noqa: BLE001 - the loop must outlive any one failure
            log.exception("Background sync failed")
            sync.failures += 1
        delay = sync.next_delay() - (time.monotonic() - started)
        await asyncio.sleep(max(1.0, delay))


def install_background(app: Any) -> None:
    from pwa import state

    def start() -> None:
        asyncio.get_event_loop().create_task(background_loop(state.store()))

    app.on_startup(start)
