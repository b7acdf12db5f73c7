"""Sign in (and, on a personal node, unlock) — the only screens shown to someone not signed in."""

from __future__ import annotations

from urllib.parse import quote

from nicegui import ui

from pwa import auth, state
from storage import sealing


def safe_next(target: str | None) -> str:
    # Only same-site paths: a sign-in link must not send a worker to another site.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def login_page(next: str = "/", locked: str = "") -> None:  # noqa: A002
    ui.colors(primary="#1d4f91")
    with ui.column().classes("w-full max-w-sm mx-auto p-4 gap-3").props('role="main"'):
        ui.label("Seen").classes("text-3xl font-bold").props('role="heading" aria-level="1"')
        ui.label("Sign in to see your caseload and record visits.")
        if locked:
            ui.label("Seen locked itself after a while without use. Sign in again to carry on.").classes(
                "text-orange-900")
        username = ui.input("Username").props('autocomplete=username outlined').classes("w-full")
        password = ui.input("Password", password=True).props('autocomplete=current-password outlined').classes(
            "w-full")
        message = ui.label().classes("text-red-800").props('role="alert"')

        def submit() -> None:
            if not username.value or not password.value:
                message.text = "Enter your username and password."
                return
            if auth.sign_in(username.value, password.value) is None:
                message.text = "That username and password do not match. Check them and try again."
                password.value = ""
                return
            ui.navigate.to(safe_next(next))

        password.on("keydown.enter", submit)
        ui.button("Sign in", on_click=submit).classes("w-full h-12 text-lg").mark("sign-in")


def unlock_page(next: str = "/") -> None:  # noqa: A002
    """A personal node's store is sealed until the worker's passphrase unwraps its key."""
    ui.colors(primary="#1d4f91")
    store = state.store()
    with ui.column().classes("w-full max-w-sm mx-auto p-4 gap-3").props('role="main"'):
        ui.label("Unlock Seen").classes("text-2xl font-bold").props('role="heading" aria-level="1"')
        first_time = not store.is_initialised()
        ui.label("Choose a passphrase for this device. Without it, nothing stored here can be read."
                 if first_time else "Everything on this device is sealed. Enter your passphrase to open it.")
        passphrase = ui.input("Passphrase", password=True).props("outlined").classes("w-full")
        message = ui.label().classes("text-red-800").props('role="alert"')

        def submit() -> None:
            try:
                if first_time:
                    store.initialise_with_passphrase(passphrase.value or "")
                else:
                    store.unlock(passphrase.value or "")
            except (sealing.WrongPassphrase, sealing.TooSoon, ValueError) as e:
                message.text = str(e)
                passphrase.value = ""
                return
            ui.navigate.to(safe_next(next))

        passphrase.on("keydown.enter", submit)
        ui.button("Unlock", on_click=submit).classes("w-full h-12 text-lg")


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
