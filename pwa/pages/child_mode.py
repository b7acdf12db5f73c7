"""Child mode: the worker's phone becomes the child's screen, in the child's language.

"Hand to the child" (on the child page) keeps the hand-over in this browser's session (`auth.CHILD_MODE`):
from then on the page guard sends every path but this screen back here, so the child has no way to the
record, to other children or to the menu. The screen has large targets, few words and a "read aloud" button
(the browser's speech synthesis); "I don't feel safe" is on every step and raises the flag at once
(storage/child_voice.py). Only the worker takes the phone back: their PIN or their password, every try
audited. The idle lock still applies (signing in again needs the worker, and ends child mode).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nicegui import app, background_tasks, events, ui

from pwa import push, state
from pwa.auth import CHILD_MODE, CHILD_MODE_PATH, client_address, current_worker
from pwa.child_offline import session_for_phone
from pwa.child_texts import speech_lang, translate
from pwa.child_voice_section import FACES, FEELING_QUESTIONS, HOUSES, TELL
from pwa.idle_lock import install_idle_lock
from pwa.layout import THEME, photo_preview
from pwa.threads import io_bound
from storage.child_forms import FormInvalid
from storage.child_voice import (
    FEELING_TOPICS,
    UNSAFE_FIELD,
    blank_statement_form,
    raise_unsafe,
    submit_statement,
    take_back,
)
from storage.photos import prepare_photo
from storage.store import NotAllowed
from storage.submissions import KEY_FIELD, new_key

STEPS = ("feelings", "houses", "tell", "done")
BIG = "min-h-[56px] min-w-[48px] text-lg"
GUARD_KEY = "seen-child-mode"  # in the phone's localStorage while the child has it (pwa/static/seen-child-guard.js)

# Speaks the words on the child's current step, in their language (the browser's own speech synthesis).
READ_ALOUD = """(lang) => {
  const synth = window.speechSynthesis;
  if (!synth) return;
  synth.cancel();
  const words = document.getElementById('seen-child-step').innerText;
  const said = new SpeechSynthesisUtterance(words);
  said.lang = lang;
  synth.speak(said);
}"""


class ChildScreen:
    """One child's time with the phone: their answers so far, the step they are on, their language."""

    def __init__(self, mode: dict[str, Any]) -> None:
        self.mode = mode
        self.language: str = mode["language"]
        self.form = blank_statement_form(self.language)
        # The key made when child mode opened: the phone's sealed copy (pwa/static/seen-child-guard.js) has it too.
        self.form[KEY_FIELD] = mode.get("statement_key") or self.form[KEY_FIELD]
        self.step = 0
        self.unsafe_said = False
        self.drawings: dict[str, bytes] = {}  # house -> the photo of the child's drawing, prepared
        self.previews: dict[str, str] = {}  # house -> a small data URL of it, to show

    def t(self, message: str) -> str:
        return translate(self.language, message)

    def go(self, step: int) -> None:
        self.step = max(0, min(step, len(STEPS) - 1))
        self.show.refresh()

    async def not_safe(self) -> None:
        """Raises the flag now, before anything else the child does, and sends the pushes straight away."""
        store, worker = state.store(), current_worker()
        raised = await io_bound(raise_unsafe, store, worker, self.mode["child_id"], self.mode["unsafe_key"])
        self.form[UNSAFE_FIELD] = "1"
        self.unsafe_said = True
        if raised.deliveries:
            background_tasks.create(io_bound(push.deliver_now, store, raised.deliveries), name="safeguarding push")
        self.show.refresh()

    async def send(self) -> None:
        worker = current_worker()
        try:
            await io_bound(lambda: submit_statement(state.store(), worker, self.mode["child_id"], self.form,
                                                    drawings=self.drawings))
        except (FormInvalid, NotAllowed) as refused:
            ui.notify(str(refused), type="negative", multi_line=True)
            return
        ui.run_javascript("self.SeenChildGuard && self.SeenChildGuard.sent()")  # stored: the phone's copy goes
        self.go(len(STEPS) - 1)

    def faces(self, topic: str) -> None:
        field = f"feeling_{topic}"
        ui.label(self.t(FEELING_QUESTIONS[topic])).classes("text-xl font-bold mt-2").props(
            f'role="heading" aria-level="2" id="q-{topic}"')
        with ui.grid(columns=5).classes("w-full gap-1").props(f'role="group" aria-labelledby="q-{topic}"'):
            for value, (icon, words) in enumerate(FACES, start=1):
                chosen = self.form[field] == str(value)

                def pick(_: Any = None, v: int = value) -> None:  # NiceGUI passes the click first
                    self.form[field] = str(v)
                    self.show.refresh()

                ui.button(self.t(words), icon=icon, on_click=pick).props(
                    f'stack no-caps unelevated aria-pressed="{str(chosen).lower()}" '
                    f'data-child-field="{field}" data-child-value="{value}" '
                    + ("color=primary" if chosen else "outline color=primary")).classes(
                    "min-h-[72px] min-w-[48px] px-0 text-xs leading-tight").mark(f"face-{topic}-{value}")

    def drawing(self, house: str) -> None:
        """A photo of the child's drawing of this house: the phone's camera, opened by a plain button (Quasar's
        uploader header is not accessible, so the uploader stays hidden)."""
        async def added(e: events.UploadEventArguments) -> None:
            try:
                image = await io_bound(prepare_photo, await e.file.read())
            except FormInvalid as problem:
                ui.notify(str(problem), type="warning")
                return
            self.drawings[house] = image
            self.previews[house] = await io_bound(photo_preview, image)
            self.show.refresh()

        camera = ui.upload(auto_upload=True, max_files=1, on_upload=added).props(
            f'accept="image/*" capture="environment" data-child-drawing="{house}"').classes("hidden").mark(
            f"camera-{house}")
        if house in self.previews:
            ui.image(self.previews[house]).props(f'alt="{self.t("Photo of my drawing")}"').classes(
                "w-32 h-32 rounded")
        ui.button(self.t("Photo of my drawing"), icon="photo_camera",
                  on_click=lambda: camera.run_method("pickFiles")).props("outline no-caps").classes(
            f"w-full {BIG}").mark(f"drawing-{house}")

    def words(self, name: str, question: str, icon: str = "") -> None:
        with ui.row().classes("w-full items-center gap-2 no-wrap mt-2"):
            if icon:
                ui.icon(icon).classes("text-3xl text-primary shrink-0").props('aria-hidden="true"')
            ui.label(self.t(question)).classes("text-xl font-bold break-words").props(
                'role="heading" aria-level="2"')
        ui.textarea(self.t("Write here, or tell your worker"), value=self.form[name],
                    on_change=lambda e, n=name: self.form.__setitem__(n, e.value or "")).props(
            f'outlined autogrow data-child-field="{name}"').classes("w-full text-lg").mark(f"words-{name}")

    def nav(self, back: bool, forward: tuple[str, Callable[[], Any]]) -> None:
        with ui.row().classes("w-full gap-2 no-wrap mt-3"):
            if back:
                ui.button(self.t("Back"), icon="arrow_back", on_click=lambda: self.go(self.step - 1)).props(
                    "outline no-caps").classes(f"grow {BIG}").mark("child-back")
            ui.button(self.t(forward[0]), icon="arrow_forward", on_click=forward[1]).props("no-caps").classes(
                f"grow {BIG}").mark("child-next")

    @ui.refreshable_method
    def show(self) -> None:
        step = STEPS[self.step]
        with ui.column().classes("w-full gap-2").props(
                f'id="seen-child-step" lang="{speech_lang(self.language)}" data-child-step="{step}"'):
            if self.unsafe_said:
                ui.label(self.t("Thank you for telling us. Your worker has been told. Talk to them now.")).classes(
                    "text-xl font-bold rounded p-3 bg-yellow-300 text-black break-words").props(
                    'role="alert"').mark("unsafe-heard")
            if step == "feelings":
                ui.label(self.t("Tell us how things are. You can skip anything.")).classes("text-lg")
                for topic in FEELING_TOPICS:
                    self.faces(topic)
                self.nav(False, ("Next", lambda: self.go(self.step + 1)))
            elif step == "houses":
                ui.label(self.t("My Three Houses")).classes("text-2xl font-bold").props(
                    'role="heading" aria-level="2"')
                for name, icon, question in HOUSES:
                    self.words(name, question, icon)
                    self.drawing(name)
                self.nav(True, ("Next", lambda: self.go(self.step + 1)))
            elif step == "tell":
                for name, question in TELL:
                    self.words(name, question)
                self.nav(True, ("Send", self.send))
            else:
                ui.label(self.t("Thank you. Give the phone back to your worker.")).classes(
                    "text-2xl font-bold break-words").mark("child-thanks")

    def build(self) -> None:
        with ui.column().classes("w-full max-w-md mx-auto p-3 gap-3").props(
                f'lang="{speech_lang(self.language)}"'):
            with ui.row().classes("w-full items-center gap-2 no-wrap"):
                ui.label(self.t("Your space")).classes("text-2xl font-bold grow").props(
                    'role="heading" aria-level="1"')
                ui.button(self.t("Read aloud"), icon="volume_up", on_click=lambda: ui.run_javascript(
                    f"({READ_ALOUD})({json.dumps(speech_lang(self.language))})")).props("outline no-caps").classes(
                    BIG).mark("read-aloud")
            self.show()
            ui.button(self.t("I don't feel safe"), icon="front_hand", on_click=self.not_safe).props(
                "no-caps color=negative data-child-unsafe").classes("w-full min-h-[64px] text-xl font-bold mt-4").mark(
                "not-safe")
            leave_button(self.t("For your worker"))


def leave_button(words: str) -> None:
    """"For your worker": the phone comes back with the worker's PIN or password, never without."""
    with ui.dialog() as dialog, ui.card().classes("w-full max-w-md gap-3").mark("leave-dialog"):
        title = ui.label("Take the phone back").classes("text-lg font-bold").props('role="heading" aria-level="2"')
        dialog.props(f'aria-labelledby="c{title.id}"')
        secret = ui.input("Your PIN or password", password=True).props('autocomplete="off"').classes(
            "w-full").mark("leave-secret")
        problem = ui.label().classes("text-red-800 break-words").props('role="alert"').mark("leave-problem")

        async def leave() -> None:
            mode = dict(app.storage.user.get(CHILD_MODE) or {})
            if not mode:
                ui.navigate.to("/")
                return
            outcome = await io_bound(take_back, state.store(), current_worker(), mode["child_id"],
                                     secret.value or "", mode.get("pin_hash", ""), int(mode.get("pin_tries", 0)),
                                     client_address())
            secret.value = ""
            if not outcome.ok:
                app.storage.user[CHILD_MODE] = {**mode, "pin_tries": outcome.pin_tries}
                problem.text = outcome.why
                return
            app.storage.user.pop(CHILD_MODE, None)
            ui.navigate.to(f"/child/{mode['child_id']}")

        with ui.row().classes("w-full gap-2 no-wrap"):
            ui.button("Cancel", on_click=dialog.close).props("flat no-caps").classes(f"grow {BIG}")
            ui.button("Take it back", on_click=leave).props("no-caps").classes(f"grow {BIG}").mark("leave-confirm")
    ui.button(words, icon="lock", on_click=dialog.open).props("flat no-caps").classes(
        f"w-full {BIG} mt-2").mark("leave-child-mode")


def child_mode_page() -> None:
    mode = app.storage.user.get(CHILD_MODE)
    if not mode:
        ui.navigate.to("/")
        return
    if "statement_key" not in mode:  # handed over before the key was made at hand-over
        mode = app.storage.user[CHILD_MODE] = {**mode, "statement_key": new_key()}
    ui.colors(**THEME)
    install_idle_lock()
    # Offline, the service worker would serve the worker's offline page: pwa/static/seen-child-guard.js keeps it shut
    # and shows the child's offline screens instead, with what the child entered here (kept sealed as it is entered).
    ui.add_head_html(f"<script>localStorage.setItem('{GUARD_KEY}', '1')</script>")
    ui.add_head_html('<script id="seen-child-session" type="application/json">'
                     f'{session_for_phone(mode, current_worker().id)}</script>')
    ChildScreen(dict(mode)).build()


def register() -> None:
    ui.page(CHILD_MODE_PATH, title="Seen")(child_mode_page)
