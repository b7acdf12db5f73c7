"""Who is signed in, and the one guard in front of every page.

The middleware sends anyone not signed in to the sign-in page, and a locked personal node to the unlock
page; pages never check this themselves. What a signed-in worker may see is decided in `storage.store`
(`may_see_child`, `visible_children`), on the server, for pages and API alike.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse
from nicegui import app, context, storage
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from pwa import state
from pwa.threads import io_bound
from storage import audit
from storage.models import Role, Worker
from storage.sign_in import SignInRefused
from storage.sign_in import sign_in as check_sign_in

__all__ = ["SignInRefused"]

# Reachable without signing in: sign-in itself, NiceGUI's assets and the PWA's installable parts.
OPEN_PATHS = {"/login", "/unlock", "/status", "/manifest.webmanifest", "/sw.js", "/offline", "/favicon.ico"}
OPEN_PREFIXES = ("/_nicegui", "/static/", "/icons/", "/api/", "/docs", "/openapi.json", "/pwa/")


# The hand-over to a child (pwa/pages/child_mode.py), kept in the browser's session: while it is there, every
# page but the child's screen leads back to it (and the idle lock's sign-out, which ends it).
CHILD_MODE = "child_mode"
CHILD_MODE_PATH = "/child-mode"
# The only API routes a phone in child mode may call: its drafts route (which takes only the child's own statement
# and flag then, pwa/pwa_shell.py) and the worker taking the phone back (pwa/child_offline.py).
CHILD_MODE_API = {"/api/offline/drafts", "/api/child-mode/leave"}
KEPT_BACK = "The phone is in child mode: only the child's own screen works until the worker takes it back."


def kept_back_in_child_mode(path: str) -> bool:
    """Whether this API (or API description) call is refused: the child has the phone, and the record, other
    children and the worker's drafts stay out of reach even by URL."""
    if not path.startswith(("/api/", "/docs", "/openapi.json")) or path in CHILD_MODE_API:
        return False
    return bool(app.storage.user.get(CHILD_MODE))


def audit_kept_back(user: dict[str, Any], path: str) -> None:
    """A call the child's phone may not make, in the trail (the path only: never what was asked for)."""
    child_id = str((user.get(CHILD_MODE) or {}).get("child_id", ""))
    with state.store().session() as session:
        audit.append(session, "denied", "child_mode", child_id, worker_id=user.get("worker_id"), child_id=child_id,
                     detail=f"{path} while the child has the phone")


def held_in_child_mode(request: Request) -> bool:
    """Whether this page request must go back to the child's screen: the phone is in the child's hands."""
    path = request.url.path
    if not app.storage.user.get(CHILD_MODE) or path == CHILD_MODE_PATH:
        return False
    return not (path == "/logout" and request.query_params.get("locked"))


# Run when a worker signs out on purpose (not when the idle lock signs them out): each gets the worker's id
# and this browser's session storage before it is cleared. Extensions add to it (push forgets this device).
SIGN_OUT_HOOKS: list[Callable[[str, dict[str, Any]], None]] = []
log = logging.getLogger(__name__)


def browser_device() -> str | None:
    """The browser session an audited read or change is made in, as the trail names its device: a keyed
    digest of NiceGUI's session id (never the id itself, which is a credential). None outside a page or the
    offline API (a syncing device names itself; the scheduler has no device)."""
    request = storage.request_contextvar.get()
    if request is None or request.url.path.startswith("/api/sync"):
        return None
    session_id = request.scope.get("session", {}).get("id")
    if not session_id:
        return None
    return "web-" + hashlib.sha256(f"seen-audit-device:{session_id}".encode()).hexdigest()[:12]


audit.set_device_source(browser_device)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def idle_limit_seconds() -> int:
    from storage.config import settings

    return settings().idle_lock_minutes * 60


class AuthMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if kept_back_in_child_mode(path):
            await run_in_threadpool(audit_kept_back, dict(app.storage.user), path)
            return JSONResponse({"message": KEPT_BACK}, status_code=423, headers={"Cache-Control": "no-store"})
        if is_open(path):
            return await call_next(request)
        if state.store().locked:
            return RedirectResponse(f"/unlock?next={quote(path)}")
        user = app.storage.user
        if not user.get("worker_id"):
            return RedirectResponse(f"/login?next={quote(path)}")
        if time.time() - float(user.get("last_active", 0)) > idle_limit_seconds():
            user.clear()
            return RedirectResponse(f"/login?next={quote(path)}&locked=1")
        user["last_active"] = time.time()
        if held_in_child_mode(request):
            return RedirectResponse(CHILD_MODE_PATH)
        return await call_next(request)


def session_worker_id() -> str | None:
    """The worker signed in on this browser (NiceGUI's session cookie), as the page guard sees them.

    Read in the request's own context, where NiceGUI finds the session; an idle session counts as none.
    """
    user = app.storage.user
    worker_id = user.get("worker_id")
    if not worker_id or time.time() - float(user.get("last_active", 0)) > idle_limit_seconds():
        return None
    return str(worker_id)


def active_worker(worker_id: str) -> Worker | None:
    with state.store().session() as session:
        worker = session.get(Worker, worker_id)
    return worker if worker is not None and worker.active else None


async def signed_in_worker() -> Worker | None:
    """Who is signed in, for an API route (the page guard lets /api/ through): nobody while the store is
    locked, the session is idle or the worker is no longer active."""
    if state.store().locked:
        return None
    worker_id = session_worker_id()
    return await run_in_threadpool(active_worker, worker_id) if worker_id else None


def client_address() -> str | None:
    """The address this page's browser connects from (a proxy's X-Forwarded-For, when uvicorn trusts the
    proxy: FORWARDED_ALLOW_IPS)."""
    try:
        request = context.client.request
    except (AttributeError, RuntimeError):
        request = None
    if request is None:
        request = storage.request_contextvar.get()
    return request.client.host if request is not None and request.client is not None else None


async def sign_in(username: str, password: str) -> Worker:
    """Checks the worker's password, throttled and audited (`storage.sign_in`), off the event loop; on
    success, remembers them in this browser's session. Raises `SignInRefused` saying why not."""
    worker = await io_bound(check_sign_in, state.store(), username, password, client_address())
    app.storage.user.update({"worker_id": worker.id, "last_active": time.time()})
    return worker


def sign_out(*, locked: bool = False) -> None:
    """Forgets who is signed in to this browser. A deliberate sign-out (not the idle lock) also runs the
    sign-out hooks: the device stops being the worker's."""
    user = app.storage.user
    worker_id = user.get("worker_id")
    if worker_id and not locked:
        for hook in SIGN_OUT_HOOKS:
            try:
                hook(worker_id, dict(user))
            except Exception:  # signing out must always work; the hook's failure is logged
                log.exception("a sign-out hook failed")
    user.clear()


def current_worker() -> Worker:
    """The signed-in worker. The middleware guarantees there is one on every guarded page."""
    worker_id = app.storage.user.get("worker_id")
    with state.store().session() as session:
        worker = session.get(Worker, worker_id) if worker_id else None
    if worker is None or not worker.active:
        raise PermissionError("Sign in to continue.")
    return worker


def is_manager(worker: Worker) -> bool:
    """Whether the worker manages a team, as the store decides it (`Store.is_manager`): the pages a manager
    is offered are the pages the store lets them open."""
    store = state.store()
    with store.session() as session:
        return store.is_manager(session, worker)


def is_admin(worker: Worker) -> bool:
    return worker.role == Role.admin.value
