"""The child page's part for the child's own voice: "Hand to the child", a safeguarding flag until a manager acts,
and the child's statements, set apart from the worker's words, each with the worker's response beside it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import app, ui

from pwa import state
from pwa.auth import CHILD_MODE, CHILD_MODE_PATH, current_worker
from pwa.child_texts import languages
from pwa.layout import when
from pwa.style import child_words
from pwa.threads import io_bound
from storage.child_forms import FormInvalid
from storage.child_voice import (
    WORD_TITLES,
    ChildVoice,
    FlagView,
    StatementView,
    acknowledge_statement,
    clear_flag,
    hand_over,
    offline_pin_check,
    open_flags,
    put_in_book,
)
from storage.models import Worker
from storage.returns.rules import PARTICIPATION
from storage.store import NotAllowed, Store
from storage.submissions import new_key

# The child mode's picture scale and questions, in English (pwa/child_texts.py gives them in the child's language).
FACES = [("sentiment_very_dissatisfied", "Very sad"), ("sentiment_dissatisfied", "Sad"),
         ("sentiment_neutral", "OK"), ("sentiment_satisfied", "Happy"), ("sentiment_very_satisfied", "Very happy")]
FEELING_QUESTIONS = {"home": "How do you feel at home?", "school": "How do you feel at school?",
                     "contact": "How do you feel about seeing your family?"}
# The Three Houses (name, icon, question) and what the child may tell each person: the screen's steps and, with
# no signal, the offline screens' (pwa/child_offline.py gives them to the offline page).
HOUSES = [("good_things", "home", "House of good things"), ("worries", "cloud", "House of worries"),
          ("hopes", "star", "House of hopes and dreams")]
TELL = [("tell_worker", "What do you want your social worker to know?"),
        ("tell_iro", "What do you want your IRO to know?"),
        ("tell_judge", "What do you want the judge to know?")]


async def start_child_mode(child_id: str, language: str, pin: str = "") -> None:
    """Hands the phone to the child (from the child page's dialog): audited, then the child's screen."""
    pin_hash = await io_bound(hand_over, state.store(), current_worker(), child_id, language, pin)
    # The keys are made now, once: the statement and the flag keep them however they reach Seen (the screen, or
    # the offline screens when the signal goes), so each is stored once.
    app.storage.user[CHILD_MODE] = {"child_id": child_id, "language": language, "pin_hash": pin_hash,
                                    "pin_tries": 0, "unsafe_key": new_key(), "statement_key": new_key(),
                                    "pin_offline": await io_bound(offline_pin_check, pin)}
    ui.navigate.to(CHILD_MODE_PATH)


def hand_over_dialog(child_id: str, language: str) -> ui.dialog:
    """The worker's dialog on the child page: the child's language and, if they like, a PIN to take it back."""
    with ui.dialog() as dialog, ui.card().classes("w-full max-w-md gap-3").mark("hand-over-dialog"):
        title = ui.label("Hand to the child").classes("text-lg font-bold").props('role="heading" aria-level="2"')
        dialog.props(f'aria-labelledby="c{title.id}"')  # a screen reader names the dialog by its heading
        ui.label("The phone shows only the child's screen until you take it back with your password, or a PIN "
                 "you set now. Nothing else on the phone can be opened.").classes("break-words")
        chosen = ui.select(languages(), value=language if language in languages() else "en",
                           label="The child's language").classes("w-full").mark("child-language")
        pin = ui.input("A PIN to take it back (optional, 4 to 8 digits)", password=True).props(
            'inputmode="numeric" autocomplete="off"').classes("w-full").mark("child-pin")
        problem = ui.label().classes("text-red-800 break-words").props('role="alert"')

        async def start() -> None:
            try:
                await start_child_mode(child_id, str(chosen.value), (pin.value or "").strip())
            except FormInvalid as invalid:
                problem.text = " ".join(invalid.problems.values())
            except NotAllowed as refused:
                problem.text = str(refused)

        ui.button("Hand over", icon="child_care", on_click=start).classes("w-full h-14").mark("hand-over")
        ui.button("Cancel", on_click=dialog.close).props("flat").classes("w-full h-12")
    return dialog


def hand_to_child_button(child_id: str, voice: ChildVoice) -> None:
    dialog = hand_over_dialog(child_id, voice.language)
    ui.button("Hand to the child", icon="child_care", on_click=dialog.open).props("outline no-caps").classes(
        "w-full h-12").mark("hand-to-child")


def saver(problem: ui.label, what: Callable[[], tuple[Callable[..., object], str, str]]
          ) -> Callable[[], Awaitable[None]]:
    """A button's action: calls storage with the store, the worker and what `what` gives (the function, the
    record, the words); says why in `problem` if it is refused, else shows the page again with it saved."""
    async def save() -> None:
        call, record_id, words = what()
        try:
            await io_bound(call, state.store(), current_worker(), record_id, words)
        except (FormInvalid, NotAllowed) as refused:
            problem.text = str(refused)
            return
        ui.navigate.reload()

    return save


def flag_banner(flag: FlagView, manages: bool) -> None:
    """Until a manager records what was done; the manager records it here."""
    with ui.card().classes("w-full p-3 gap-2 bg-red-800 text-white").props('role="alert"').mark("safeguarding-flag"):
        ui.label(f"The child said they do not feel safe ({when(flag.raised_at)}).").classes("font-bold break-words")
        if not manages:
            ui.label("Your manager has been told. It stays here until they record what was done.")
            return
        done = ui.textarea("What was done to keep the child safe").props("outlined dark").classes("w-full").mark(
            "flag-action")
        problem = ui.label().classes("font-bold break-words")

        ui.button("Record what was done", on_click=saver(problem, lambda: (clear_flag, flag.id, done.value or ""))).props("color=white text-color=negative no-caps").classes(
            "w-full h-12").mark("clear-flag")


def _put_in_book(store: Store, worker: Worker, statement_id: str, _words: str) -> None:
    put_in_book(store, worker, statement_id)


def show_statement(statement: StatementView) -> None:
    with ui.card().classes("w-full p-3 gap-1 border-l-8 border-purple-800").props(
            f'data-record="{statement.id}" data-kind="child_statement"').mark("child-statement"):
        ui.label(f"The child's own statement, {when(statement.made_at)}").classes("font-bold")
        if statement.unsafe:
            ui.label("They said they do not feel safe.").classes("font-bold text-red-800")
        for topic, value in statement.feelings.items():
            ui.label(f"{FEELING_QUESTIONS[topic]} {FACES[value - 1][1]} ({value} of 5)").classes("break-words")
        for name, words in statement.words.items():
            ui.label(WORD_TITLES[name]).classes("text-sm text-gray-800 mt-1")
            child_words(words)
        for house, photo_id in statement.drawings.items():
            ui.image(f"/photo/{photo_id}").props(f'alt="The child\'s drawing: {WORD_TITLES[house]}"').classes(
                "w-40 h-40 rounded mt-1").mark("child-drawing")
        if statement.in_book:
            ui.label("In their life-story book: the child agreed.").classes("text-sm break-words").mark("in-book")
        else:
            book_problem = ui.label().classes("text-red-800 break-words").props('role="alert"')
            ui.button("The child agrees: put it in their life-story book", on_click=saver(
                book_problem, lambda: (_put_in_book, statement.id, ""))).props("outline no-caps").classes(
                "w-full h-12").mark("put-in-book")
        if statement.response:
            ui.label(f"{statement.acknowledged_by}'s response").classes("text-sm font-bold mt-1")
            ui.label(statement.response).classes("break-words whitespace-pre-line").mark("statement-response")
            return
        response = ui.textarea("Your acknowledgement and response").props("outlined").classes("w-full").mark(
            "statement-response-input")
        problem = ui.label().classes("text-red-800 break-words").props('role="alert"')

        ui.button("Record your response", on_click=saver(
            problem, lambda: (acknowledge_statement, statement.id, response.value or ""))).props("outline no-caps").classes(
            "w-full h-12").mark("acknowledge")


def child_voice_section(voice: ChildVoice) -> None:
    ui.label("In the child's own voice").classes("text-lg font-bold mt-2").props('role="heading" aria-level="2"')
    if not voice.statements:
        ui.label("The child has not made a statement in child mode yet.")
    if voice.participation is not None:
        code = voice.participation.code
        ui.label(f"Their next review's participation: {code} – {PARTICIPATION[code]}" if code
                 else "Their next review's participation: not known yet").classes(
            "font-bold break-words").mark("participation")
        ui.label(voice.participation.why).classes("text-sm break-words")
    for statement in voice.statements:
        show_statement(statement)


async def safeguarding_flags() -> None:
    """The flags open on the children this worker may see, each a link to the child: on the caseload and the
    team dashboard, until a manager records what was done."""
    flags = await io_bound(open_flags, state.store(), current_worker())
    for flag in flags:
        with ui.link(target=f"/child/{flag.child_id}").classes(
                "w-full rounded px-3 py-2 bg-red-800 text-white font-bold no-underline").props(
                'role="alert"').mark("safeguarding-flag"):
            ui.label(f"{flag.child_name} said they do not feel safe ({when(flag.raised_at)}). "
                     "Open to see what was done.").classes("break-words")
