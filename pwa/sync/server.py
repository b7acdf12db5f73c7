"""The sync server: a FastAPI router under /api/sync, mounted by the all-in-one app or run alone by `seen server`.

Devices authenticate with their device token (`Authorization: Bearer ...`); the server keeps no state
outside the database, so several processes can serve one PostgreSQL behind a load balancer. What a
device may push and pull is decided by `storage.sync` (devices, push, pull) on the server's own view of each child, and what a
pushed change may do by the same policy as the screens (`storage.policy`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pwa import state
from pwa.sync import messages
from pwa.sync.messages import PREFIX
from storage.models import Device, Worker
from storage.sync import audit_upload, server_log
from storage.sync import devices as sync_devices
from storage.sync import pull as sync_pull
from storage.sync import push as sync_push
from storage.sync.refusal import Reason, SyncRefused

log = logging.getLogger("seen.sync")

REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": messages.Refusal, "description": text}
    for status, text in ((400, "the batch was altered or the request is not valid"),
                         (401, "no device token, or one this server does not know"),
                         (403, "not this worker's child, or the device is revoked (then `wipe` is true)"),
                         (409, "the batch refers to records the server does not have"),
                         (422, "a change does not describe a valid record"))
}

router = APIRouter(prefix=PREFIX, tags=["sync"], responses=REFUSALS)

# The HTTP status the API answers a refusal with, by its reason (storage knows reasons, not statuses).
STATUS_OF: dict[Reason, int] = {
    Reason.bad_request: 400, Reason.bad_code: 400, Reason.tampered: 400, Reason.not_found: 404,
    Reason.no_token: 401, Reason.unknown_device: 401, Reason.revoked: 403, Reason.not_allowed: 403,
    Reason.integrity: 409, Reason.invalid: 422,
}


def status_of(refusal: SyncRefused) -> int:
    """The HTTP status for a refusal."""
    return STATUS_OF[refusal.code]

# Requests' database work runs in worker threads, at most this many at once: fewer than the connections the
# engine keeps open (10), so a burst of devices queues here instead of opening a connection per request
# (a new PostgreSQL connection costs both ends more than a whole small sync). More threads only fight over
# the GIL: with 200 devices at once, 4 used ~20% less CPU than 8 and 2 left the database idle between
# statements (p95 1.6-1.9 s with 4, 1.8-2.3 s with 8, 2.9 s with 2, on the 2-core benchmark machine).
DB_THREADS = 4
_db_threads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()
T = TypeVar("T")


async def run_in_threadpool(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs `fn` in a worker thread, at most `DB_THREADS` at once (a limit for each event loop)."""
    loop = asyncio.get_running_loop()
    limiter = _db_threads.get(loop)
    if limiter is None:
        limiter = _db_threads[loop] = anyio.CapacityLimiter(DB_THREADS)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)


# A device's push waits for the pushes before it to be applied, then goes in with those that arrived meanwhile: one
# transaction, one lock, one numbering and one commit for the group (`storage.sync.push.push_group`), which with
# many devices syncing at once is most of what each push costs. A lone push goes in at once, on its own.
GROUP_WORKERS = 2  # groups applied at once (each in a database thread)
GROUP_BATCHES = 64  # at most this many devices' batches a group
GROUP_CHANGES = messages.MAX_BATCH  # and no more changes than one device's largest batch (one is always taken)


class _Groups:
    """The pushes of one event loop waiting to be applied, taken a group at a time by up to `GROUP_WORKERS`
    tasks; each push's request waits for its own outcome (or refusal)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[sync_push.Pushed, asyncio.Future[Any]]] = []
        self.working = 0  # workers running: counted down in the same step as they find nothing waiting
        self.tasks: set[asyncio.Task[None]] = set()  # held, so a running worker is not garbage-collected

    async def apply(self, pushed: sync_push.Pushed) -> sync_push.PushOutcome:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append((pushed, future))
        if self.working < GROUP_WORKERS:
            self.working += 1
            task = asyncio.create_task(self._work())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        result = await future
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, sync_push.PushOutcome)
        return result

    def _take(self) -> list[tuple[sync_push.Pushed, asyncio.Future[Any]]]:
        group: list[tuple[sync_push.Pushed, asyncio.Future[Any]]] = []
        changes = 0
        while self.waiting and len(group) < GROUP_BATCHES and (
                not group or changes + len(self.waiting[0][0].changes) <= GROUP_CHANGES):
            changes += len(self.waiting[0][0].changes)
            group.append(self.waiting.pop(0))
        return group

    async def _work(self) -> None:
        # No await between finding nothing waiting and counting this worker out: a push added meanwhile would
        # otherwise see every worker still counted and wait for a worker that has gone.
        try:
            while self.waiting:
                group = self._take()
                try:
                    results: list[Any] = await run_in_threadpool(
                        sync_push.push_group, state.store(), [pushed for pushed, _future in group])
                except Exception as e:  # noqa: BLE001 - the server's own failure: each request of the group answers it
                    results = [e] * len(group)
                for (_pushed, future), result in zip(group, results, strict=True):
                    if not future.done():  # a request cancelled (its client gone) is not answered
                        future.set_result(result)
        finally:
            self.working -= 1


_groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Groups] = weakref.WeakKeyDictionary()


async def apply_push(pushed: sync_push.Pushed) -> sync_push.PushOutcome:
    """`sync_push.push` of a device's batch, applied with other devices' pushes waiting at the same time."""
    loop = asyncio.get_running_loop()
    groups = _groups.get(loop)
    if groups is None:
        groups = _groups[loop] = _Groups()
    return await groups.apply(pushed)


async def _token(authorization: Annotated[str | None, Header()] = None) -> str:
    # async: FastAPI runs a plain function dependency in a worker thread, a thread hop a request for nothing.
    if not authorization or not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        raise SyncRefused("This request has no device token. Enrol the device first.", code=Reason.no_token)
    return authorization[7:].strip()


Token = Annotated[str, Depends(_token)]


async def device(token: Token) -> tuple[Device, Worker]:
    """The calling device and its worker; a revoked device is refused and told to wipe itself."""
    return await run_in_threadpool(sync_devices.device_for_token, state.store(), token)


Caller = Annotated[tuple[Device, Worker], Depends(device)]


async def _audit_tampered(caller: tuple[Device, Worker], batch_id: str, what: str, reason: str) -> None:
    # Before the refusal is answered: a device (or someone with its token) sending altered batches is traced.
    await run_in_threadpool(sync_push.record_tampered, state.store(), *caller, batch_id, what, reason)


@router.post("/enrol", response_model=messages.Enrolled, summary="Enrol a device with a one-time code")
async def enrol(request: messages.EnrolRequest, http: Request) -> messages.Enrolled:
    found, worker, token = await run_in_threadpool(
        sync_devices.enrol_device, state.store(), request.code, request.device_name,
        http.client.host if http.client else None)
    return messages.Enrolled(device_id=found.id, token=token, worker_id=worker.id, username=worker.username)


async def _signed_changes(batch: messages.PushBatch, token: str) -> tuple[str, list[dict[str, Any]], list[bytes]]:
    """The batch's key, changes and their canonical encodings, once its signature is checked; an altered batch
    (or one naming a change twice) is refused whole and audited."""
    # The device is looked up in the batch's own transaction; the signature is keyed by what the server
    # keeps of the token (its hash), so it is checked first, without the database.
    key = messages.token_key(token)
    # What was signed, and what is applied. A change's fields are JSON values already (parsed from JSON),
    # so each change as a dict is its `model_dump(mode="json")`, made ~40x faster. Its fields are its
    # `__dict__` (a Change has no extra or private attributes): `dict(c)` gives the same, but asks pydantic for
    # a `keys` it lacks first (an AttributeError raised and caught: 5.5 us a change, the copy 0.2).
    wire = [c.__dict__.copy() for c in batch.changes]
    encoded = messages.signed_encodings(key, batch, wire)
    if encoded is None:
        # An unknown or revoked device is told so first (and that is audited); then the tampering is.
        await _audit_tampered(await device(token), batch.batch_id, "sync", "bad signature")
        raise SyncRefused("This batch was altered on the way (its signature does not match), so none of it "
                          "was applied. Sync again from the device.", code=Reason.tampered)
    ids = [c.change_id for c in batch.changes]
    if len(set(ids)) != len(ids):
        await _audit_tampered(await device(token), batch.batch_id, "sync", "a change named twice")
        raise SyncRefused("This batch names the same change twice, so none of it was applied.", code=Reason.tampered)
    return key, wire, encoded


def _push_result(outcome: sync_push.PushOutcome) -> messages.PushResult:
    return messages.PushResult(applied=outcome.applied, duplicates=outcome.duplicates, conflicts=outcome.conflicts,
                               cursor=outcome.cursor, outdated=outcome.outdated, refused=outcome.refused,
                               held=outcome.held)


def _pull_page(page: sync_pull.PullPage) -> messages.PullPage:
    return messages.PullPage(changes=[messages.Change.model_validate(c) for c in page.changes],
                             removals=page.removals, directory=page.directory, cursor=page.cursor, more=page.more,
                             directory_version=page.directory_version, photo_limit=page.photo_limit)


@router.post("/push", response_model=messages.PushResult, summary="Push a signed batch of changes")
async def push(batch: messages.PushBatch, token: Token) -> messages.PushResult:
    key, wire, encoded = await _signed_changes(batch, token)
    outcome = await apply_push(sync_push.Pushed(key, batch.batch_id, wire, encoded))
    return _push_result(outcome)


@router.post("/sync", response_model=messages.SyncResult,
             summary="Push a signed batch and pull the first page after it, in one request and one transaction")
async def push_and_pull(request: messages.SyncRequest, token: Token) -> messages.SyncResult:
    """What `/push` and then `/pull` do, with half the requests and one transaction (one lookup of the
    device): the client sends its last batch this way. A refused batch refuses the whole request."""
    if request.pull.child_ids is not None:
        raise SyncRefused("A pull of some children only goes to /pull, not with a push.", code=Reason.bad_request)
    batch, wanted = request.push, request.pull
    key, wire, encoded = await _signed_changes(batch, token)
    then = sync_pull.after_push(state.store(), len(wire), cursor=wanted.cursor, held=wanted.held, limit=wanted.limit,
                                directory_version=wanted.directory_version,
                                holds=wanted.holds.model_dump() if wanted.holds is not None else None)
    outcome = await apply_push(sync_push.Pushed(key, batch.batch_id, wire, encoded, then))
    return messages.SyncResult(push=_push_result(outcome), pull=_pull_page(outcome.then))


@router.post("/pull", response_model=messages.PullPage, summary="Pull the next page of changes")
async def pull(request: messages.PullRequest, token: Token) -> messages.PullPage:
    page = await run_in_threadpool(
        sync_pull.pull, state.store(), messages.token_key(token), cursor=request.cursor, held=request.held,
        child_ids=request.child_ids, limit=request.limit, directory_version=request.directory_version,
        holds=request.holds.model_dump() if request.holds is not None else None)
    return _pull_page(page)


@router.post("/audit", response_model=messages.AuditResult, summary="Send this device's own audit events")
async def send_audit(upload: messages.AuditUpload, caller: Caller) -> messages.AuditResult:
    """The node's own audit trail (what its worker read and did there, online or not) joins the server's.

    Signed as a push batch is; each event is recorded once, with this device's id. Refused (403, the
    events named in `change_ids`) if any names a worker other than the device's.
    """
    found, worker = caller
    wire = [e.model_dump(mode="json") for e in upload.events]
    if not messages.audit_signature_ok(found.token_hash, upload, wire):
        await _audit_tampered(caller, upload.batch_id, "audit", "bad signature")
        raise SyncRefused("This upload of audit events was altered on the way (its signature does not match), so "
                          "none of it was recorded. Sync again from the device.", code=Reason.tampered)
    ids = [e.id for e in upload.events]
    if len(set(ids)) != len(ids):
        await _audit_tampered(caller, upload.batch_id, "audit", "an event named twice")
        raise SyncRefused("This upload names the same audit event twice, so none of it was recorded.",
                          code=Reason.tampered)
    outcome = await run_in_threadpool(audit_upload.record_device_audit, state.store(), found, worker,
                                      upload.batch_id, [e.model_dump() for e in upload.events])
    return messages.AuditResult(recorded=outcome.recorded, duplicates=outcome.duplicates)


@router.get("/status", response_model=messages.DeviceStatus, summary="Who this device is, and the latest change")
async def device_status(caller: Caller) -> messages.DeviceStatus:
    found, worker = caller
    latest = await run_in_threadpool(server_log.latest_seq, state.store())
    return messages.DeviceStatus(device_id=found.id, worker_id=worker.id, latest_seq=latest)


# The largest request the sync API reads: a push batch stops at 4 MB of changes (sync_changes.MESSAGE_BYTES),
# which JSON and base64 photos make bigger; a request past this is refused before it is held in memory.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
TOO_BIG = messages.Refusal(
    code="too_large", message=f"This request is bigger than the sync server takes ({MAX_REQUEST_BYTES // 2**20} MB). "
    "Nothing in it was applied; the device sends its changes in smaller batches.").model_dump_json().encode()


class BodyLimit:
    """ASGI middleware: a sync request whose body passes `limit` bytes is answered 413 and read no further,
    whether it says its length or streams (chunked). Other paths pass through untouched."""

    def __init__(self, app: Any, limit: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _send_too_big(send)
            return
        read = 0
        over = False

        async def limited() -> dict[str, Any]:
            # Past the limit the body is cut short (what the app makes of it is not sent: see `answer`).
            nonlocal read, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.limit:
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def answer(message: dict[str, Any]) -> None:
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await _send_too_big(send)

        await self.app(scope, limited, answer)


async def _send_too_big(send: Any) -> None:
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(TOO_BIG)).encode())]})
    await send({"type": "http.response.body", "body": TOO_BIG})


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SyncRefused)
    body = messages.Refusal(code=exc.code.value, message=exc.message, wipe=exc.wipe, change_ids=exc.change_ids,
                            reasons=exc.reasons)
    return JSONResponse(body.model_dump(), status_code=status_of(exc))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith(PREFIX):
        from fastapi.exception_handlers import request_validation_exception_handler

        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    what = first.get("msg", "")
    if (first.get("ctx") or {}).get("pattern") == messages.TEXT_PATTERN:
        what = "it holds a control character (such as NUL), which Seen does not keep"
    body = messages.Refusal(code="invalid", message=f"This request is not valid ({where}: {what}).")
    return JSONResponse(body.model_dump(), status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """A request the framework refused before the API saw it (a body that is not JSON, say): under the sync
    API, answered in the documented shape of every refusal."""
    assert isinstance(exc, StarletteHTTPException)
    if not request.url.path.startswith(PREFIX):
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, exc)
    words = {400: "This request's body is not JSON Seen can read. Nothing in it was applied.",
             404: "There is no such sync API route.", 405: "The sync API does not take that method here."}
    body = messages.Refusal(code="bad_request" if exc.status_code == 400 else "http",
                            message=words.get(exc.status_code, str(exc.detail)))
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _handlers(app: FastAPI) -> None:
    app.add_exception_handler(SyncRefused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)


# The routes every device calls on every sync, with the message each takes and the function that answers it.
_HOT: dict[str, tuple[type[BaseModel], Callable[[Any, str], Awaitable[BaseModel]]]] = {
    f"{PREFIX}/push": (messages.PushBatch, push),
    f"{PREFIX}/sync": (messages.SyncRequest, push_and_pull),
    f"{PREFIX}/pull": (messages.PullRequest, pull),
}


class HotRoutes:
    """ASGI middleware: POSTs to `/push`, `/sync` and `/pull` answered by the routes' own functions, without
    FastAPI's routing, dependency solving and second validation of the answer, which were as much of the
    server's CPU as a small sync's own work. The same checks in the same order (the token, then the body,
    parsed and validated in one step by pydantic), the same answers and refusals; FastAPI still describes
    these routes (OpenAPI) and serves every other."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        hot = _HOT.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if hot is None:
            await self.app(scope, receive, send)
            return
        message, answer = hot
        request = Request(scope, receive)
        response: Response
        # As FastAPI takes them: the body read whole (a body that is not JSON is refused), then the token,
        # then the body's validation.
        body = await request.body()
        parsed: BaseModel | None = None
        errors: list[Any] = []
        try:
            parsed = message.model_validate_json(body)
        except ValidationError as e:
            errors = e.errors()
        try:
            if any(error["type"] == "json_invalid" for error in errors):
                response = await _http_error(request, StarletteHTTPException(400))
            else:
                token = await _token(request.headers.get("authorization"))
                if parsed is None:
                    response = await _invalid(request, RequestValidationError(
                        [{**error, "loc": ("body", *error["loc"])} for error in errors]))
                else:
                    result = await answer(parsed, token)
                    response = Response(result.model_dump_json(), media_type="application/json")
        except SyncRefused as refusal:
            response = await _refused(request, refusal)
        await response(scope, receive, send)


class Forward:
    """ASGI middleware: in `seen server` with apply processes (pwa/sync/processes.py), a POST to /push, /sync or
    /pull is handed to one of them, which answers it with this same app; anywhere else, and while none is ready,
    the request passes through."""

    pool: Any = None  # the server's `processes.Pool`, once it has one

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        pool = Forward.pool
        process = (pool.pick() if pool is not None and scope["type"] == "http" and scope["method"] == "POST"
                   and scope["path"] in _HOT else None)
        if process is None:
            await self.app(scope, receive, send)
        else:
            await pool.forward(process, scope, receive, send)


def mount(app: FastAPI) -> None:
    """Mounts the sync API on an app (NiceGUI's, or the bare one `seen server` runs), once."""
    if not any(getattr(r, "path", "").startswith(PREFIX) for r in app.router.routes):
        app.include_router(router)
        app.add_middleware(HotRoutes)
        app.add_middleware(Forward)
        app.add_middleware(BodyLimit)  # added last, so it runs first: no route reads a body past the limit
    _handlers(app)


def build_app() -> FastAPI:
    """The sync server alone, as `seen server` runs it: the API, its OpenAPI document and /status."""
    app = FastAPI(title="Seen sync", version="1", description=__doc__)
    mount(app)

    @app.get("/status")
    def status() -> dict[str, str]:
        return {"status": "ok"}

    return app
