"""The child page's missing episodes: each episode, and a small form to record one, the return and the interview."""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.error_summary import error_summary, show_problems
from pwa.threads import io_bound
from storage.child_forms import FormInvalid
from storage.child_view import ChildView
from storage.missing import EpisodeView, save_episode
from storage.store import NotAllowed
from storage.timescales.calendar import today_in_england


def _shown(day: object) -> str:
    return f"{day:%-d %B %Y}" if day else "Not yet"


def missing_banner(view: ChildView) -> None:
    if view.missing:
        ui.label("Missing now: an episode is open. Record the return when the child is back.").classes(
            "w-full rounded px-3 py-2 bg-red-800 text-white font-bold").props('role="alert"').mark("missing-now")


def show_episode(episode: EpisodeView) -> None:
    with ui.card().classes("w-full p-3 gap-1").props(f'data-episode="{episode.id}"'):
        ui.label(f"{'Away without permission' if episode.absent else 'Missing'} from {episode.start:%-d %B %Y}"
                 ).classes("font-bold")
        ui.label(f"Came back: {_shown(episode.end)}")
        ui.label(f"Return home interview offered: {_shown(episode.offered_on)}; held: {_shown(episode.held_on)}")
        if episode.child_said:
            ui.label(f"What the child said: {episode.child_said}").classes("break-words whitespace-pre-line")


def missing_section(view: ChildView) -> None:
    """The episodes, and the form: a new episode, or the return and interview for one already recorded."""
    ui.label("Missing episodes").classes("text-lg font-bold mt-2").props('role="heading" aria-level="2"')
    for episode in view.episodes:
        show_episode(episode)
    if not view.episodes:
        ui.label("No missing episodes recorded.")
    today = today_in_england().isoformat()
    with ui.expansion("Record a missing episode or a return home interview", icon="person_search").classes(
            "w-full border rounded").mark("missing-form"):
        problems = error_summary()
        choices = {"": "A new episode", **{e.id: f"Missing from {e.start:%-d %b %Y}" for e in view.episodes}}
        which = ui.select(choices, value="", label="Which episode").props("outlined").classes("w-full").mark(
            "missing-episode")
        dates = {}
        for name, label in [("start", "Went missing on"), ("end", "Came back on"),
                            ("offered_on", "Interview offered on"), ("held_on", "Interview held on")]:
            dates[name] = ui.input(label).props(f"type=date outlined stack-label max={today}").classes(
                "w-full").mark(f"missing-{name}")
        absent = ui.checkbox("Away from the placement without permission, not missing").mark("missing-absent")
        accepted = ui.select({"": "Not asked yet", "yes": "Yes", "no": "No"}, value="",
                             label="Did the child accept the interview?").props("outlined").classes("w-full").mark(
            "missing-accepted")
        said = ui.textarea("What the child said").props("outlined autogrow").classes("w-full").mark("missing-said")

        def fill() -> None:
            episode = next((e for e in view.episodes if e.id == which.value), None)
            for name, box in dates.items():
                day = getattr(episode, name, None) if episode else None
                box.value = day.isoformat() if day else ""
            said.value = episode.child_said if episode else ""
            absent.value = bool(episode and episode.absent)
            accepted.value = "" if not episode or episode.accepted is None else ("yes" if episode.accepted else "no")

        which.on_value_change(fill)

        async def save() -> None:
            fields = {name: box.value or "" for name, box in dates.items()}
            fields.update(episode_id=which.value or "", child_said=said.value or "", absent=bool(absent.value),
                          interview_accepted={"yes": True, "no": False}.get(accepted.value or ""))
            try:
                await io_bound(save_episode, state.store(), current_worker(), view.child_id, fields)
            except FormInvalid as e:
                show_problems(problems, e.problems, fields={**dates, "episode_id": which, "child_said": said})
                return
            except NotAllowed as e:
                ui.notify(str(e), type="warning")
                return
            ui.notify("Missing episode saved", type="positive")
            ui.navigate.to(f"/child/{view.child_id}")

        ui.button("Save", icon="save", on_click=save).classes("w-full h-12").mark("missing-save")
