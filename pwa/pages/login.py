"""Sign in (and, on a personal node, unlock) — the only screens shown to someone not signed in."""

from __future__ import annotations

from urllib.parse import quote

from nicegui import ui

from pwa import auth, state
from pwa.threads import io_bound
from storage import sealing
from storage.models import Worker


def safe_next(target: str | None) -> str:
    # Only same-site paths: a sign-in link must not send a worker to another site.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def landing(worker: Worker, target: str | None) -> str:
    """Where a sign-in leads: back where the worker was sent from; otherwise a manager's team, a worker's
    own caseload (a manager's caseload is one menu tap away)."""
    place = safe_next(target)
    return "/team" if place == "/" and auth.is_manager(worker) else place


def login_page(next: str = "/", locked: str = "") -> None:  # noqa: A002
    ui.colors(primary="#1d4f91")
    with ui.column().classes("w-full max-w-sm mx-auto p-4 gap-3"):
        ui.label("Seen").classes("text-3xl font-bold").props('role="heading" aria-level="1"')
        ui.label("Sign in to see your caseload and record visits.")
        if locked:
            ui.label("Seen locked itself after a while without use. Sign in again to carry on.").classes(
                "text-orange-900")
        username = ui.input("Username").props('autocomplete=username outlined').classes("w-full")
        password = ui.input("Password", password=True).props('autocomplete=current-password outlined').classes(
            "w-full")
        message = ui.label().classes("text-red-800").props('role="alert"')

        async def submit() -> None:
            if not username.value or not password.value:
                message.text = "Enter your username and password."
                return
            button.disable()
            try:
                worker = await auth.sign_in(username.value, password.value)
            except auth.SignInRefused as refused:
                message.text = str(refused)
                password.value = ""
                return
            finally:
                button.enable()
            ui.navigate.to(landing(worker, next))

        password.on("keydown.enter", submit)
        button = ui.button("Sign in", on_click=submit).classes("w-full h-12 text-lg").mark("sign-in")


def unlock_page(next: str = "/") -> None:  # noqa: A002
    """A personal node's store is sealed until the worker's passphrase unwraps its key."""
    ui.colors(primary="#1d4f91")
    store = state.store()
    if not store.locked:  # another tab (or the worker, a moment ago) has unlocked it already
        ui.navigate.to(safe_next(next))
        return
    with ui.column().classes("w-full max-w-sm mx-auto p-4 gap-3"):
        ui.label("Unlock Seen").classes("text-2xl font-bold").props('role="heading" aria-level="1"')
        first_time = not store.is_initialised()
        ui.label("Choose a passphrase for this device, at least 8 characters. Without it, nothing stored here "
                 "can be read, and nobody can recover it for you."
                 if first_time else "Everything on this device is sealed. Enter your passphrase to open it.")
        passphrase = ui.input("Passphrase", password=True).props(
            f'outlined autocomplete={"new-password" if first_time else "current-password"}').classes(
            "w-full").mark("passphrase")
        # A mistyped first passphrase would seal the device for good: it is asked for twice.
        again = ui.input("Type the passphrase again", password=True).props(
            "outlined autocomplete=new-password").classes("w-full").mark("passphrase-again")
        again.set_visibility(first_time)
        message = ui.label().classes("text-red-800").props('role="alert"').mark("unlock-message")

        async def submit() -> None:
            if not store.locked:
                ui.navigate.to(safe_next(next))
                return
            chosen = passphrase.value or ""
            setting_up = not store.is_initialised()
            if setting_up and chosen != (again.value or ""):
                message.text = "The two passphrases do not match. Type the same passphrase in both boxes."
                passphrase.value = again.value = ""
                return
            button.disable()
            message.text = "Unlocking…" if not setting_up else "Sealing this device with your passphrase…"
            try:
                # scrypt makes each try take a moment on purpose: off the event loop, so the page still answers.
                if setting_up:
                    await io_bound(store.initialise_with_passphrase, chosen)
                else:
                    await io_bound(store.unlock, chosen)
            except (sealing.WrongPassphrase, sealing.TooSoon, ValueError) as e:
                message.text = str(e)
                passphrase.value = again.value = ""
                return
            except RuntimeError:  # set up in another tab meanwhile: this passphrase was not the one kept
                message.text = "This device was just set up in another window. Enter the passphrase chosen there."
                passphrase.value = again.value = ""
                again.set_visibility(False)
                return
            finally:
                button.enable()
            ui.navigate.to(safe_next(next))

        passphrase.on("keydown.enter", submit)
        again.on("keydown.enter", submit)
        button = ui.button("Unlock", on_click=submit).classes("w-full h-12 text-lg").mark("unlock")


def logout_page(locked: str = "", next: str = "") -> None:  # noqa: A002
    auth.sign_out(locked=bool(locked))
    # The idle lock signs out with locked=1: the sign-in page says why, and returns the worker where they were.
    if locked:
        ui.navigate.to(f"/login?locked=1&next={quote(safe_next(next))}")
    else:
        ui.navigate.to("/login")


def register() -> None:
    ui.page("/login", title="Sign in · Seen")(login_page)
    ui.page("/unlock", title="Unlock · Seen")(unlock_page)
    ui.page("/logout")(logout_page)
