"""The child: who they are, their placement, every clock with the rule behind it, and one timeline."""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.child_voice_section import child_voice_section, flag_banner, hand_to_child_button
from pwa.layout import frame, not_found, refused_drafts, status_badge
from pwa.missing_section import missing_banner, missing_section
from pwa.returns_forms import returns_forms
from pwa.safety_chart import safety_chart
from pwa.style import child_words
from pwa.threads import io_bound
from storage.child_view import STATUS_WORDS, ChildView, TimelineItem, child_view, clock_name
from storage.child_voice import ChildVoice, voice_for_child, with_statements
from storage.life_story import LIFE_STORY_DRAFT_KIND
from storage.signs_of_safety import SafetyScores, safety_scores
from storage.store import NotAllowed
from storage.timescales import UNWORKABLE
from storage.wishes import WISHES_DRAFT_KIND

KIND_ICONS = {"visit": "home", "wishes_and_feelings": "record_voice_over", "life_story": "auto_stories",
              "review": "groups", "care_plan": "assignment", "care_plan_action": "task_alt",
              "child_statement": "child_care"}


def heading(text: str) -> ui.label:
    return ui.label(text).classes("text-lg font-bold mt-2").props('role="heading" aria-level="2"')


def fact(label: str, value: str) -> None:
    with ui.row().classes("w-full gap-x-2 gap-y-0 no-wrap items-baseline"):
        ui.label(label).classes("text-sm text-gray-800 w-32 shrink-0")
        ui.label(value).classes("break-words min-w-0")


def show_timeline_item(item: TimelineItem, child_id: str) -> None:
    when = f"{item.at:%-d %b %Y, %H:%M}" if item.at else f"{item.on:%-d %b %Y}"
    with ui.card().classes("w-full p-3 gap-1").props(f'data-record="{item.record_id}" data-kind="{item.kind}"'):
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            ui.icon(KIND_ICONS.get(item.kind, "event")).classes("text-primary text-xl shrink-0")
            ui.label(item.title).classes("font-bold grow min-w-0 break-words")
        with ui.row().classes("w-full items-center gap-2"):
            ui.label(when).classes("text-sm text-gray-800")
            if item.status and item.kind == "visit":
                ui.label(STATUS_WORDS.get(item.status, item.status)).classes(
                    "text-sm rounded px-2 bg-gray-200 text-gray-900")
            if item.late:
                ui.label("Written up late").classes("text-sm rounded px-2 bg-orange-700 text-white font-bold")
            if item.superseded_by:
                ui.label("Corrected by a later record").classes("text-sm rounded px-2 bg-gray-700 text-white")
            if item.supersedes:
                ui.label("Correction").classes("text-sm rounded px-2 bg-blue-900 text-white")
        if item.child_words:
            child_words(item.child_words)
        if item.lines:
            with ui.expansion("Details").classes("w-full").props("dense"):
                for label, text in item.lines:
                    ui.label(label).classes("text-sm font-bold text-gray-800 mt-1")
                    ui.label(text).classes("break-words whitespace-pre-line")
                if item.correctable:
                    ui.button("Correct this visit", icon="edit", on_click=lambda: ui.navigate.to(
                        f"/child/{child_id}/visit?supersedes={item.record_id}")).props("outline").classes(
                        "w-full h-12 mt-2")


def show_due(view: ChildView) -> None:
    """What is due, first on the page: it is what the worker opens the child to find out."""
    heading("What is due")
    if view.problem:
        ui.label(f"{UNWORKABLE}: {view.problem}").classes("font-bold").mark("problem")
    elif not view.clocks:
        ui.label("Nothing is due for this child.")
    for clock in view.clocks:
        with ui.card().classes("w-full p-3 gap-1").props(f'data-clock="{clock.clock}"'):
            with ui.row().classes("w-full items-center no-wrap gap-2"):
                ui.label(clock_name(clock)).classes("font-bold grow min-w-0")
                status_badge(clock.status)
            ui.label(f"Due {clock.due:%-d %B %Y}")
            ui.label(clock.rule).classes("text-sm break-words")
            ui.label(f"Source: {clock.source}").classes("text-sm text-gray-800 break-words")


def show_child(view: ChildView, voice: ChildVoice | None = None, scores: SafetyScores | None = None) -> None:
    with ui.row().classes("w-full items-center gap-3 no-wrap"):
        if view.photo:
            ui.image(view.photo).classes("w-16 h-16 rounded-full shrink-0").props(f'alt="Photo of {view.name}"')
        else:
            ui.label(view.initials).classes("w-16 h-16 rounded-full bg-primary text-white text-xl font-bold "
                                            "flex items-center justify-center shrink-0").props('aria-hidden="true"')
        with ui.column().classes("gap-0 min-w-0"):
            ui.label(view.name).classes("text-2xl font-bold break-words").props('role="heading" aria-level="2"')
            if view.age is not None:
                ui.label(f"Age {view.age}")
    missing_banner(view)
    if view.undecided:  # until a manager decides, the record says two edits crossed
        ui.label("Two edits crossed and wait for a manager's decision: " + "; ".join(view.undecided)
                 + ".").classes("w-full rounded p-2 bg-orange-100 text-orange-950").mark("undecided")
    for flag in voice.flags if voice else []:
        flag_banner(flag, voice.manages if voice else False)
    show_due(view)
    with ui.column().classes("w-full gap-2"):
        ui.button("Log a visit" if not view.has_draft else "Continue visit draft", icon="edit_note",
                  on_click=lambda: ui.navigate.to(f"/child/{view.child_id}/visit")).classes(
            "w-full h-14 text-lg").mark("log-visit")
        with ui.grid(columns=3).classes("w-full gap-2"):
            for label, icon, path, kind in [("Wishes and feelings", "record_voice_over", "wishes", WISHES_DRAFT_KIND),
                                            ("Life story", "auto_stories", "life-story", LIFE_STORY_DRAFT_KIND),
                                            ("Care plan", "assignment", "care-plan", None)]:
                # Words left unfinished there are waiting: say so, so they are finished rather than forgotten.
                waiting = kind in view.drafts
                ui.button(f"{label} · draft" if waiting else label, icon=icon, on_click=lambda p=path: ui.navigate.to(
                    f"/child/{view.child_id}/{p}")).props("outline stack no-caps").classes(
                    "h-20 text-sm leading-tight").mark(f"open-{path}")
        if voice is not None:
            hand_to_child_button(view.child_id, voice)
        if view.manages:
            ui.button("Audit trail", icon="history", on_click=lambda: ui.navigate.to(
                f"/child/{view.child_id}/audit")).props("outline no-caps").classes("w-full h-12").mark("audit-trail")

    heading("Who the child is")
    with ui.card().classes("w-full p-3 gap-1"):
        fact("Category", view.category_words)
        fact("Legal status", f"{view.legal_status} – {view.legal_status_words}" if view.legal_status_words
             else (view.legal_status or "Not recorded"))
        for label, value in view.facts:
            fact(label, value)

    if view.placement is not None:
        p = view.placement
        heading("Placement")
        with ui.card().classes("w-full p-3 gap-1").mark("placement"):
            fact("Type", f"{p.type_code} – {p.type_words}")
            if p.carer:
                fact("Carer", p.carer)
            if p.provider:
                fact("Provider", p.provider)
            if p.address:
                fact("Address", ", ".join(x for x in (p.address, p.postcode) if x))
            fact("Local authority", p.local_authority or "Not recorded")
            if p.out_of_area:
                distance = f", {p.distance_km:.0f} km from home" if p.distance_km is not None else ""
                fact("Out of area", f"Yes{distance}")
            elif p.distance_km is not None:
                fact("Distance", f"{p.distance_km:.0f} km from home")
            fact("Since", f"{p.start:%-d %B %Y}" + (" (intended to last until 18)" if p.long_term else ""))

    returns_forms(view)
    missing_section(view)
    if scores is not None:
        safety_chart(scores)
    if voice is not None:
        child_voice_section(voice)

    heading("Timeline")
    if view.unopened:
        ui.label(f"Seen could not open {len(view.unopened)} record(s) held for this child "
                 f"({', '.join(view.unopened)}): they were changed outside Seen, so they are not shown. "
                 "Tell your administrator.").classes("text-red-800 break-words").props('role="alert"')
    if not view.timeline:
        ui.label("Nothing has been recorded yet.")
    for item in view.timeline:
        show_timeline_item(item, view.child_id)


async def child_page(child_id: str) -> None:
    worker = current_worker()
    try:
        view = await io_bound(child_view, state.store(), worker, child_id)
        voice = await io_bound(voice_for_child, state.store(), worker, child_id)
        view.timeline = with_statements(view.timeline, voice.statements)
        scores = await io_bound(safety_scores, state.store(), worker, child_id)
    except NotAllowed:
        not_found()
        return
    with frame(view.name, back="/"):
        refused_drafts(view.child_id)
        show_child(view, voice, scores)


def register() -> None:
    ui.page("/child/{child_id}", title="Child · Seen")(child_page)
