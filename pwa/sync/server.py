"""The sync server: a FastAPI router under /api/sync, mounted by the all-in-one app or run alone by `seen server`.

Devices authenticate with their device token (`Authorization: Bearer ...`); the server keeps no state
outside the database, so several processes can serve one PostgreSQL behind a load balancer. What a
device may push and pull is decided by `storage.sync_store` on the server's own view of each child.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pwa import state
from pwa.sync import messages
from storage import sync_store
from storage.models import Device, Worker
from storage.sync_store import SyncRefused

PREFIX = "/api/sync"
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


def _token(authorization: Annotated[str | None, Header()] = None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        return ""
    return authorization[7:].strip()


async def device(token: Annotated[str, Depends(_token)]) -> tuple[Device, Worker]:
    """The calling device and its worker; a revoked device is refused and told to wipe itself."""
    return await run_in_threadpool(sync_store.device_for_token, state.store(), token)


Caller = Annotated[tuple[Device, Worker], Depends(device)]


@router.post("/enrol", response_model=messages.Enrolled, summary="Enrol a device with a one-time code")
async def enrol(request: messages.EnrolRequest) -> messages.Enrolled:
    found, worker, token = await run_in_threadpool(
        sync_store.enrol_device, state.store(), request.code, request.device_name)
    return messages.Enrolled(device_id=found.id, token=token, worker_id=worker.id, username=worker.username)


@router.post("/push", response_model=messages.PushResult, summary="Push a signed batch of changes")
async def push(batch: messages.PushBatch, caller: Caller) -> messages.PushResult:
    found, worker = caller
    wire = [c.model_dump(mode="json") for c in batch.changes]  # what was signed, and what is applied
    if not messages.signature_ok(found.token_hash, batch, wire):
        raise SyncRefused("This batch was altered on the way (its signature does not match), so none of it "
                          "was applied. Sync again from the device.", status=400, code="tampered")
    ids = [c.change_id for c in batch.changes]
    if len(set(ids)) != len(ids):
        raise SyncRefused("This batch names the same change twice, so none of it was applied.", code="tampered")
    outcome = await run_in_threadpool(sync_store.apply_batch, state.store(), found, worker, batch.batch_id, wire)
    return messages.PushResult(applied=outcome.applied, duplicates=outcome.duplicates,
                               conflicts=outcome.conflicts, cursor=outcome.cursor)


@router.post("/pull", response_model=messages.PullPage, summary="Pull the next page of changes")
async def pull(request: messages.PullRequest, caller: Caller) -> messages.PullPage:
    _found, worker = caller
    page = await run_in_threadpool(lambda: sync_store.pull_page(
        state.store(), worker, cursor=request.cursor, held=request.held, child_ids=request.child_ids,
        limit=request.limit, directory_version=request.directory_version))
    return messages.PullPage(changes=[messages.Change.model_validate(c) for c in page.changes],
                             removals=page.removals, directory=page.directory, cursor=page.cursor, more=page.more,
                             directory_version=page.directory_version)


@router.get("/status", response_model=messages.DeviceStatus, summary="Who this device is, and the latest change")
async def device_status(caller: Caller) -> messages.DeviceStatus:
    found, worker = caller
    latest = await run_in_threadpool(sync_store.latest_seq, state.store())
    return messages.DeviceStatus(device_id=found.id, worker_id=worker.id, latest_seq=latest)


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SyncRefused)
    body = messages.Refusal(code=exc.code, message=exc.message, wipe=exc.wipe, change_ids=exc.change_ids)
    return JSONResponse(body.model_dump(), status_code=exc.status)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith(PREFIX):
        from fastapi.exception_handlers import request_validation_exception_handler

        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    body = messages.Refusal(code="invalid", message=f"This request is not valid ({where}: {first.get('msg', '')}).")
    return JSONResponse(body.model_dump(), status_code=422)


def install(app: FastAPI) -> None:
    """Mounts the sync API on an app (NiceGUI's, or the bare one `seen server` runs).

    On a personal node the API is not served: the node is a client, and its background sync starts instead.
    """
    from pwa.sync.status import add_to_settings
    from storage.config import settings

    add_to_settings()
    if settings().node_mode == "personal":
        from pwa.sync import client

        client.install_background(app)
        return
    # Writes made on the server itself (the hosted app) reach the change log through the outbox.
    state.store().outbox_enabled = True
    if not any(getattr(r, "path", "").startswith(PREFIX) for r in app.router.routes):
        app.include_router(router)
    app.add_exception_handler(SyncRefused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)


def build_app() -> FastAPI:
    """The sync server alone, as `seen server` runs it: the API, its OpenAPI document and /status."""
    app = FastAPI(title="Seen sync", version="1", description=__doc__)
    app.include_router(router)
    app.add_exception_handler(SyncRefused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)

    @app.get("/status")
    def status() -> dict[str, str]:
        return {"status": "ok"}

    return app
