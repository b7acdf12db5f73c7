"""Start-up: opens the store, registers every page and API, and runs the NiceGUI server."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from nicegui import app, ui

from pwa import child_offline, push, pwa_shell, security, state
from pwa.auth import AuthMiddleware
from pwa.error_summary import FOCUS_SCRIPT
from pwa.pages import (
    admin,
    audit,
    care_plan,
    caseload,
    child,
    child_mode,
    conflicts,
    devices,
    life_story,
    login,
    recorded,
    returns,
    signoff,
    team,
    visit,
    wishes,
)
from pwa.pages import settings as settings_page
from pwa.pages.settings import add_section
from pwa.style import SHARED_CSS
from pwa.sync import client as sync_client
from pwa.sync import server as sync_server
from pwa.sync.status import sync_status_section
from storage.config import Settings, settings

if TYPE_CHECKING:
    from storage.store import Store

# Each screen lives in its own module, whose `register()` adds its page(s).
PAGES = [login, caseload, child, visit, wishes, life_story, care_plan, settings_page, team, signoff, recorded,
         admin, audit, returns, devices, conflicts, child_mode]

# Quasar puts a dialog's backdrop at z-index -1 beneath the dialog. Browsers paint the dialog on top, but
# accessibility checkers that read the page (axe-core) stack the backdrop over the dialog's buttons and judge
# their contrast against grey. The same picture, with the stacking stated in plain numbers:
DIALOG_CSS = ".q-dialog__backdrop { z-index: 0; } .q-dialog__inner { z-index: 1; }"


def open_store(config: Settings) -> Store:
    from storage.bootstrap import open_personal_store, open_server_store

    if config.node_mode == "personal":
        return open_personal_store(config)
    return open_server_store(config)


def _start_sync(config: Settings) -> None:
    """Serves the sync API, or on a personal node (a client, not a server) starts its background sync."""
    add_section("sync", "Sync", sync_status_section, 30)
    if config.node_mode == "personal":
        sync_client.install_background(app)
        return
    # Writes made on the server itself (the hosted app) reach the change log through the outbox.
    state.store().outbox_enabled = True
    sync_server.mount(app)


def build(store: Store | None = None, config: Settings | None = None) -> None:
    """Registers everything on NiceGUI's app; `store` defaults to the one the settings describe."""
    config = config or settings()
    state.set_store(store or open_store(config))
    for page in PAGES:
        page.register()
    # The routes beside the pages: the PWA shell, the sync API (or a node's background sync), push notifications.
    pwa_shell.install(app)
    child_offline.install(app)
    _start_sync(config)
    push.install(app)
    app.add_middleware(AuthMiddleware)
    security.install(app)
    ui.add_css(DIALOG_CSS, shared=True)
    ui.add_css(SHARED_CSS, shared=True)  # GOV.UK's look on every screen, the sign-in screens too
    ui.add_head_html(FOCUS_SCRIPT, shared=True)  # an error summary's links move focus to their fields
    # The bar Quasar shows while a request is under way is a progressbar with no value, outside every landmark:
    # named, but hidden from screen readers, to whom the outcome of each request is spoken by the page itself
    # (its alerts and live status).
    app.config.quasar_config["loadingBar"].update({"aria-label": "Loading", "aria-hidden": "true"})

    @app.get("/status")
    def status() -> dict[str, str]:
        return {"status": "ok", "locked": str(state.store().locked).lower()}


def storage_secret(config: Settings) -> str:
    if config.storage_secret:
        return config.storage_secret
    path = Path(config.data_dir) / "storage.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        os.chmod(path, 0o600)
    return path.read_text().strip()


def run(host: str | None = None, port: int | None = None, demo: bool = False) -> None:
    config = settings()
    store = open_store(config)
    if demo and not store.locked:
        from storage.demo import DEMO_PASSWORD, create_demo, is_empty

        if is_empty(store):
            print("Adding the demo caseload (first start)...")
            create_demo(store)
        print(f"Demo sign-in: ben, chloe, erin, femi (workers); amara, dev (managers); admin. "
              f"Password: {DEMO_PASSWORD}")
    build(store, config)
    host = host or config.host
    port = port or config.port
    print(f"Seen is running at http://{host}:{port}/", flush=True)
    ui.run(
        host=host,
        port=port,
        title="Seen",
        storage_secret=storage_secret(config),
        reload=False,
        show=False,
        reconnect_timeout=90.0,
        favicon="🟦",
        language="en-GB",  # <html lang>: screen readers speak English; axe-core asks for it
    )
