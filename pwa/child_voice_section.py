"""The child page's part for the child's own voice: "Hand to the child", a safeguarding flag until a manager acts,
and the child's statements, set apart from the worker's words, each with the worker's response beside it."""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import when
from pwa.pages.child_mode import FACES, FEELING_QUESTIONS, hand_over_dialog
from pwa.style import child_words
from pwa.threads import io_bound
from storage.child_forms import FormInvalid
from storage.child_voice import (
    ChildVoice,
    FlagView,
    StatementView,
    acknowledge_statement,
    clear_flag,
    open_flags,
)
from storage.store import NotAllowed

WORD_LABELS = {"good_things": "House of good things", "worries": "House of worries",
               "hopes": "House of hopes and dreams", "tell_worker": "For their social worker",
               "tell_iro": "For their IRO", "tell_judge": "For the judge"}


def hand_to_child_button(child_id: str, voice: ChildVoice) -> None:
    dialog = hand_over_dialog(child_id, voice.language)
    ui.button("Hand to the child", icon="child_care", on_click=dialog.open).props("outline no-caps").classes(
        "w-full h-12").mark("hand-to-child")


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

        async def clear() -> None:
            try:
                await io_bound(clear_flag, state.store(), current_worker(), flag.id, done.value or "")
            except (FormInvalid, NotAllowed) as refused:
                problem.text = str(refused)
                return
            ui.navigate.reload()

        ui.button("Record what was done", on_click=clear).props("color=white text-color=negative no-caps").classes(
            "w-full h-12").mark("clear-flag")


def show_statement(statement: StatementView) -> None:
    with ui.card().classes("w-full p-3 gap-1 border-l-8 border-purple-800").props(
            f'data-record="{statement.id}" data-kind="child_statement"').mark("child-statement"):
        ui.label(f"The child's own statement, {when(statement.made_at)}").classes("font-bold")
        if statement.unsafe:
            ui.label("They said they do not feel safe.").classes("font-bold text-red-800")
        for topic, value in statement.feelings.items():
            ui.label(f"{FEELING_QUESTIONS[topic]} {FACES[value - 1][1]} ({value} of 5)").classes("break-words")
        for name, words in statement.words.items():
            ui.label(WORD_LABELS[name]).classes("text-sm text-gray-800 mt-1")
            child_words(words)
        if statement.response:
            ui.label(f"{statement.acknowledged_by}'s response").classes("text-sm font-bold mt-1")
            ui.label(statement.response).classes("break-words whitespace-pre-line").mark("statement-response")
            return
        response = ui.textarea("Your acknowledgement and response").props("outlined").classes("w-full").mark(
            "statement-response-input")
        problem = ui.label().classes("text-red-800 break-words").props('role="alert"')

        async def acknowledge() -> None:
            try:
                await io_bound(acknowledge_statement, state.store(), current_worker(), statement.id,
                               response.value or "")
            except (FormInvalid, NotAllowed) as refused:
                problem.text = str(refused)
                return
            ui.navigate.reload()

        ui.button("Record your response", on_click=acknowledge).props("outline no-caps").classes(
            "w-full h-12").mark("acknowledge")


def child_voice_section(voice: ChildVoice) -> None:
    ui.label("In the child's own voice").classes("text-lg font-bold mt-2").props('role="heading" aria-level="2"')
    if not voice.statements:
        ui.label("The child has not made a statement in child mode yet.")
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
