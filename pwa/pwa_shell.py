"""The installable shell: manifest, icons, service worker, offline page, and the offline drafts' API.

Everything here is reachable without signing in (pwa/auth.py OPEN_PATHS / OPEN_PREFIXES) except what the
two `/api/offline/` routes check themselves: they read the worker from NiceGUI's session cookie, as the
pages do. The browser half lives in pwa/static/ (plain JavaScript, served at /pwa/...) and pwa/shell/
(the service worker's and the offline page's templates).

The shell's version is the app's version plus a hash of the browser code (and SEEN_PWA_VERSION, which a
deployment may set): it is written into /sw.js, so each deployment's service worker differs from the
last by at least that constant, and the browser installs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import nicegui
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from nicegui import app as nicegui_app
from nicegui import background_tasks
from nicegui.client import Client
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from pwa import push, state
from pwa.auth import CHILD_MODE, KEPT_BACK, audit_kept_back, signed_in_worker
from pwa.child_offline import offline_child_json
from pwa.child_texts import LOCALE_DIR
from pwa.icons import ICONS, icon_name, icon_png
from pwa.security import same_origin
from storage.forms.life_story import LIFE_STORY
from storage.forms.visit import VISIT
from storage.forms.wishes import WISHES
from storage.offline import CHILD_MODE_KINDS, held_keys, offline_children, receive_draft
from storage.photos import DRAFT_PHOTOS_MAX_BYTES, PHOTOS_PER_ENTRY
from storage.store import NotAllowed

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"  # plain browser JS, served at /pwa/<name>
SHELL_DIR = HERE / "shell"  # templates of /sw.js and /offline
THEME_COLOUR = "#1d4f91"
BACKGROUND_COLOUR = "#ffffff"
NO_CACHE = {"Cache-Control": "no-cache"}
# A draft's request: its photos as base64 (a third bigger than their bytes) and room for the words.
DRAFT_BODY_MAX_BYTES = DRAFT_PHOTOS_MAX_BYTES * 4 // 3 + 2 * 1024 * 1024
HEAD_MARKER = "<!-- seen-pwa-shell -->"

# NiceGUI's files every page loads (see nicegui/templates/index.html, with prod_js and tailwind on).
NICEGUI_CORE_FILES = (
    "fonts.css", "quasar.unimportant.prod.css", "quasar.important.prod.css", "nicegui.css", "socket.io.min.js",
    "tailwindcss.min.js", "quasar.umd.prod.js", "nicegui.js", "lang/en-US.umd.prod.js", "vue.esm-browser.prod.js",
    "dompurify.mjs", "immutable.es.js",
)


def offline_forms() -> dict[str, dict[str, Any]]:
    """The forms the offline page can finish, from their one definition each (storage/forms/): the same
    field names, labels, codes and rules as the screens, so the two cannot disagree."""
    return {form.kind: form.offline() for form in (VISIT, WISHES, LIFE_STORY)}


# Put into the offline page and every page (#seen-offline-schema).
OFFLINE_FORMS: dict[str, dict[str, Any]] = offline_forms()


# ---------------------------------------------------------------- version and files


def app_version() -> str:
    try:
        return metadata.version("seen")
    except metadata.PackageNotFoundError:
        return "0"


def browser_files() -> list[Path]:
    # The child mode's translations are in the offline page (pwa/child_offline.offline_child_json): a new word, a new shell.
    return sorted([*STATIC_DIR.glob("*.js"), *SHELL_DIR.iterdir(), *LOCALE_DIR.glob("*/LC_MESSAGES/*.po")])


@cache
def shell_version() -> str:
    """App version + a hash of every browser file (and SEEN_PWA_VERSION): new code, new worker."""
    digest = hashlib.sha256(os.environ.get("SEEN_PWA_VERSION", "").encode())
    for path in browser_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(nicegui.__version__.encode())
    return f"{app_version()}-{digest.hexdigest()[:12]}"


def nicegui_prefix() -> str:
    return f"/_nicegui/{nicegui.__version__}/"


def precache_urls() -> list[str]:
    version = shell_version()
    static = Path(nicegui.__file__).parent / "static"
    urls = ["/offline", "/manifest.webmanifest", *(f"/icons/{name}" for name in ICONS)]
    urls += [f"/pwa/{p.name}?v={version}" for p in sorted(STATIC_DIR.glob("*.js"))]
    urls += [f"{nicegui_prefix()}static/{name}" for name in NICEGUI_CORE_FILES if (static / name).is_file()]
    return urls


def schema_json() -> str:
    # Safe inside <script type="application/json">: no "</" can close the tag early.
    return json.dumps(OFFLINE_FORMS, ensure_ascii=False).replace("</", "<\\/")


@cache
def service_worker_js() -> str:
    return ((SHELL_DIR / "sw.js").read_text()
            .replace("__VERSION__", shell_version())
            .replace("__NICEGUI_PREFIX__", nicegui_prefix())
            .replace("__PRECACHE__", json.dumps(precache_urls())))


@cache
def offline_html() -> str:
    return ((SHELL_DIR / "offline.html").read_text()
            .replace("__VERSION__", shell_version())
            .replace("__THEME__", THEME_COLOUR)
            .replace("__SCHEMA__", schema_json())
            .replace("__CHILD_TEXTS__", offline_child_json()))


def manifest() -> dict[str, Any]:
    icons = [{"src": f"/icons/{icon_name(size, maskable)}", "sizes": f"{size}x{size}", "type": "image/png",
              "purpose": "maskable" if maskable else "any"} for (size, maskable) in ICONS.values()]
    return {
        "id": "/",
        "name": "Seen: visits and direct work with children",
        "short_name": "Seen",
        "description": "Record statutory visits, wishes and feelings and life-story work, even without a signal.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "lang": "en-GB",
        "dir": "ltr",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "icons": icons,
    }


# NiceGUI's "Connection lost" box would cover the form the worker is filling in: the header's status says
# it instead (and a form is handed to the offline page). The banner for drafts Seen refused is GOV.UK's
# notification banner, filled in by seen-refused.js where a page has its slot (pwa/layout.refused_drafts).
PAGE_CSS = """<style>
#popup { display: none !important; }
#seen-refused-drafts:empty { display: none; }
.seen-refused { border: 5px solid #1d4f91; background: #1d4f91; border-radius: .25rem; }
.seen-refused h2 { margin: 0; padding: 0 .5rem .25rem; color: #fff; font-size: 1rem; font-weight: 700; }
.seen-refused .body { background: #fff; color: #111; padding: .75rem; }
.seen-refused .body p { margin: 0 0 .25rem; overflow-wrap: break-word; }
.seen-refused .body a { display: inline-flex; align-items: center; min-height: 44px; font-weight: 700;
  color: #1d4f91; text-decoration: underline; text-underline-offset: 2px; }
</style>"""


def head_html() -> str:
    version = shell_version()
    return "\n".join([
        HEAD_MARKER,
        PAGE_CSS,
        '<link rel="manifest" href="/manifest.webmanifest">',
        f'<meta name="theme-color" content="{THEME_COLOUR}">',
        '<link rel="apple-touch-icon" href="/icons/icon-192.png">',
        f'<meta name="seen-pwa-version" content="{version}">',
        f'<script id="seen-offline-schema" type="application/json">{schema_json()}</script>',
        f'<script src="/pwa/seen-drafts.js?v={version}" defer></script>',
        f'<script src="/pwa/seen-child-guard.js?v={version}" defer></script>',
        f'<script src="/pwa/seen-page.js?v={version}" defer></script>',
        f'<script src="/pwa/seen-refused.js?v={version}" defer></script>',
    ])


# ---------------------------------------------------------------- the offline API


class DraftPhotoIn(BaseModel):
    """A photo kept with a draft: the image file (a JPEG the phone made) as base64."""

    id: str = Field(default="", max_length=64)
    data: str = Field(min_length=1)


class DraftIn(BaseModel):
    """A draft as the phone sends it: its idempotency key is the UUID made when the draft was created."""

    idempotency_key: str = Field(min_length=8, max_length=64)
    kind: str = Field(max_length=40)
    child_id: str = Field(min_length=1, max_length=64)
    fields: dict[str, Any]
    worker_id: str | None = None
    # Storage says when there are more than an entry may hold; this only bounds what is read.
    photos: list[DraftPhotoIn] = Field(default_factory=list, max_length=4 * PHOTOS_PER_ENTRY)


class PhotoUnreadable(ValueError):
    """A photo in the draft's request is not base64: the phone's copy is fine, the request was not."""


def draft_photos(draft: DraftIn) -> list[bytes]:
    photos = []
    for number, photo in enumerate(draft.photos, start=1):
        try:
            photos.append(base64.b64decode(photo.data, validate=True))
        except (binascii.Error, ValueError):
            raise PhotoUnreadable(f"Photo {number} of this draft did not arrive whole. It stays on the phone; "
                                  "try sending it again.") from None
    return photos


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it passes `limit` bytes (read no further: nothing is held)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _problem(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status, headers={"Cache-Control": "no-store"})


async def offline_caseload() -> Response:
    if state.store().locked:
        return _problem(503, "Seen is locked. Unlock it to refresh the caseload kept on this phone.")
    worker = await signed_in_worker()
    if worker is None:
        return _problem(401, "Sign in to keep your caseload on this phone for offline visits.")
    children = await run_in_threadpool(offline_children, state.store(), worker)
    body = {"worker_id": worker.id, "children": [{"id": c.id, "initials": c.initials, "age": c.age} for c in children]}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def receive_offline_draft(request: Request) -> Response:
    if not same_origin(request):
        return _problem(403, "Drafts can only be sent from Seen itself.")
    if state.store().locked:
        return _problem(503, "Seen is locked. Your draft stays on the phone until it is unlocked.")
    worker = await signed_in_worker()
    if worker is None:
        return _problem(401, "Sign in to send the drafts kept on this phone.")
    body = await read_body(request, DRAFT_BODY_MAX_BYTES)
    if body is None:
        return _problem(413, f"This draft is too big to send (over {DRAFT_BODY_MAX_BYTES // (1024 * 1024)} MB). "
                             "It stays on the phone: remove a photo, or put some in another entry, and submit it "
                             "again.", problems={"photo": "Remove a photo: the entry is too big to send."})
    try:
        draft = DraftIn.model_validate_json(body)
        photos = draft_photos(draft)
    except PhotoUnreadable as e:
        return _problem(400, str(e))
    except (ValidationError, ValueError):
        return _problem(400, "That draft could not be read. It stays on the phone; try sending it again.")
    mode = nicegui_app.storage.user.get(CHILD_MODE)
    if mode and (draft.kind not in CHILD_MODE_KINDS or draft.child_id != mode.get("child_id")):
        # The worker's own drafts wait on the phone (423: not refused) until they take it back.
        await run_in_threadpool(audit_kept_back, dict(nicegui_app.storage.user), f"a {draft.kind} draft")
        return _problem(423, KEPT_BACK)
    if draft.worker_id and draft.worker_id != worker.id:
        return _problem(409, "This draft was written by another worker on this phone. It will be sent when they sign in.")
    try:
        received = await run_in_threadpool(receive_draft, state.store(), worker, draft.kind, draft.child_id,
                                           draft.fields, draft.idempotency_key, photos=photos)
    except NotAllowed as e:
        return _problem(403, str(e))
    except ValueError as e:  # includes the kinds' own checks (VisitInvalid): say what to fix
        return _problem(422, str(e), problems=getattr(e, "problems", {}))
    if received.deliveries:  # "I don't feel safe" said with no signal: the phones hear now, not at the next run
        background_tasks.create(run_in_threadpool(push.deliver_now, state.store(), list(received.deliveries)),
                                name="safeguarding push")
    return JSONResponse({"status": "stored", "kind": received.kind, "record_id": received.record_id},
                        headers={"Cache-Control": "no-store"})


class HeldIn(BaseModel):
    """The keys of the drafts a phone keeps: it asks which Seen already holds."""

    keys: list[str] = Field(max_length=200)


async def offline_held(request: Request) -> Response:
    if not same_origin(request):
        return _problem(403, "Only Seen itself can ask this.")
    if state.store().locked:
        return _problem(503, "Seen is locked.")
    worker = await signed_in_worker()
    if worker is None:
        return _problem(401, "Sign in to check the drafts kept on this phone.")
    try:
        asked = HeldIn.model_validate_json(await request.body())
    except ValidationError:
        return _problem(400, "That list of drafts could not be read.")
    held = await run_in_threadpool(held_keys, state.store(), worker, asked.keys)
    return JSONResponse({"held": sorted(held)}, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- routes


def install(app: FastAPI) -> None:
    """Adds the shell's routes and puts the manifest, theme colour and offline scripts in every page's head."""

    def web_manifest() -> Response:
        return Response(json.dumps(manifest()), media_type="application/manifest+json", headers=NO_CACHE)

    def service_worker() -> Response:
        return Response(service_worker_js(), media_type="text/javascript",
                        headers={**NO_CACHE, "Service-Worker-Allowed": "/"})

    def offline_page() -> HTMLResponse:
        return HTMLResponse(offline_html(), headers=NO_CACHE)

    def icon(name: str) -> Response:
        if name not in ICONS:
            return Response("No such icon.", status_code=404, media_type="text/plain")
        size, maskable = ICONS[name]
        return Response(icon_png(size, maskable), media_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})

    def browser_file(name: str, request: Request) -> Response:
        path = STATIC_DIR / name
        # Only the .js files in pwa/static/, by plain name: nothing else on disk is reachable here.
        if "/" in name or not name.endswith(".js") or not path.is_file():
            return Response("Not found.", status_code=404, media_type="text/plain")
        body = path.read_bytes()
        # Checked on every load (a new release takes effect at once), but an unchanged file is not sent
        # again: on a weak signal a page's scripts cost a round trip, not their bytes.
        tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {**NO_CACHE, "ETag": tag}
        if tag in (request.headers.get("if-none-match") or ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="text/javascript", headers=headers)

    app.add_api_route("/manifest.webmanifest", web_manifest, methods=["GET"], include_in_schema=False)
    app.add_api_route("/sw.js", service_worker, methods=["GET"], include_in_schema=False)
    app.add_api_route("/offline", offline_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/icons/{name}", icon, methods=["GET"], include_in_schema=False)
    app.add_api_route("/pwa/{name}", browser_file, methods=["GET"], include_in_schema=False)
    app.add_api_route("/api/offline/caseload", offline_caseload, methods=["GET"])
    app.add_api_route("/api/offline/drafts", receive_offline_draft, methods=["POST"])
    app.add_api_route("/api/offline/held", offline_held, methods=["POST"])
    if HEAD_MARKER not in Client.shared_head_html:
        Client.shared_head_html += head_html() + "\n"
