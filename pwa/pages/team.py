"""The team dashboard: a manager's children by clock status, the counts that matter, and a year of visits.

Managers only; the store refuses (and audits) anyone else. A manager can move a child to another worker
in their team from here.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.child_voice_section import safeguarding_flags
from pwa.field_notice import field_notice_section
from pwa.form_key import FormKey
from pwa.layout import STATUS_STYLE, clock_line, frame, status_badge
from pwa.threads import io_bound
from storage import oversight
from storage.caseload import UNKNOWN
from storage.models import CATEGORY_LABELS
from storage.store import NotAllowed
from storage.timescales import STATUS_ORDER

IN_COLOUR = "#00703c"
OUT_COLOUR = "#b3261e"

COUNT_TILES = [
    ("overdue", "Overdue", "visits, reviews and conferences past due"),
    ("due_this_week", "Due this week", "due today or in the next 6 days"),
    ("not_seen_alone", "Not seen alone", "at either of the last 2 visits"),
    ("late_write_ups", "Written up late", "visits in the last 3 months"),
    ("overdue_actions", "Overdue actions", "care plan actions past due"),
    ("cannot_work_out", "Cannot work out what is due", "children whose record lacks what their clocks need"),
]
SHOWN_WHEN_ANY = {"cannot_work_out"}  # a tile for a problem that is usually absent: shown only when it is not


def chart_options(series: oversight.MonthlySeries) -> dict[str, Any]:
    return {
        "aria": {"enabled": True},
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["In timescale", "Out of timescale"], "bottom": 0},
        "grid": {"left": 8, "right": 8, "top": 16, "bottom": 40, "containLabel": True},
        "xAxis": {"type": "category", "data": [m[:3] + " " + m[-2:] for m in series.months],
                  "axisLabel": {"rotate": 45, "fontSize": 11}},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {"name": "In timescale", "type": "bar", "stack": "visits", "data": series.in_timescale,
             "itemStyle": {"color": IN_COLOUR}},
            {"name": "Out of timescale", "type": "bar", "stack": "visits", "data": series.out_of_timescale,
             "itemStyle": {"color": OUT_COLOUR, "decal": {"symbol": "rect", "dashArrayX": [1, 0],
                                                          "dashArrayY": [3, 3], "rotation": 0.8}}},
        ],
    }


def chart_summary(series: oversight.MonthlySeries) -> str:
    total_in, total_out = sum(series.in_timescale), sum(series.out_of_timescale)
    if not total_in + total_out:
        return "No visits in the last 12 months."
    return (f"Last 12 months: {total_in} visits in timescale, {total_out} out of timescale "
            f"({100 * total_in / (total_in + total_out):.0f}% on time).")


async def team_page() -> None:
    worker = current_worker()
    store = state.store()
    try:
        dash = await io_bound(oversight.team_dashboard, store, worker)
    except NotAllowed as refusal:
        with frame("Team dashboard"):
            ui.label(str(refusal)).props('role="alert"')
        return
    data = {"dash": dash}

    with frame("Team dashboard"):
        ui.label(", ".join(dash.team_names)).classes("text-gray-800")
        await field_notice_section(worker)
        await safeguarding_flags()
        tiles = ui.grid().classes("w-full grid-cols-2 sm:grid-cols-5 gap-2")
        with ui.row().classes("w-full gap-2 items-center"):
            by_worker = ui.select({"": "All workers", **dash.workers}, value="", label="Worker").props(
                "outlined dense").classes("grow min-w-[10rem]").mark("filter-worker")
            by_category = ui.select({"": "All categories", **CATEGORY_LABELS}, value="", label="Category").props(
                "outlined dense").classes("grow min-w-[10rem]").mark("filter-category")
            out_of_area = ui.switch("Out of area only")
        with ui.card().classes("w-full p-2"):
            ui.label("Visits in and out of timescale, by month").classes("font-bold").props(
                'role="heading" aria-level="2"')
            chart = ui.echart(chart_options(oversight.monthly_series(dash.timings, dash.on))).classes(
                "w-full h-64")
            summary = ui.label().classes("text-sm")
        children = ui.column().classes("w-full gap-2")
        dialog = allocation_dialog(lambda: data["dash"], lambda: reload())

        def show() -> None:
            current = data["dash"]
            rows = oversight.filter_rows(current.rows, worker_id=by_worker.value or None,
                                         category=by_category.value or None, out_of_area=bool(out_of_area.value))
            figures = oversight.counts(rows, current.on)
            tiles.clear()
            with tiles:
                for key, label, hint in COUNT_TILES:
                    number = getattr(figures, key)
                    if key in SHOWN_WHEN_ANY and not number:
                        continue
                    with ui.card().classes("p-2 gap-0").props(f'data-count="{key}"'):
                        ui.label(str(number)).classes(
                            "text-3xl font-bold " + ("text-red-800" if number else "text-green-800"))
                        ui.label(label).classes("font-bold")
                        ui.label(hint).classes("text-sm text-gray-700")
            series = oversight.monthly_series(current.timings, current.on, {r.child_id for r in rows})
            chart.options.update(chart_options(series))
            chart.update()
            summary.text = chart_summary(series)
            children.clear()
            with children:
                if not rows:
                    ui.label("No children match these filters.")
                for status in (UNKNOWN, *STATUS_ORDER):
                    group = [r for r in rows if r.status == status]
                    if not group:
                        continue
                    ui.label(f"{STATUS_STYLE[status][0]} ({len(group)})").classes("text-lg font-bold mt-2").props(
                        'role="heading" aria-level="2"')
                    for row in group:
                        child_card(row, dialog)

        async def reload() -> None:
            data["dash"] = await io_bound(oversight.team_dashboard, store, worker)
            show()

        for control in (by_worker, by_category, out_of_area):
            control.on_value_change(show)
        show()


def child_card(row: oversight.TeamRow, dialog: Any) -> None:
    with ui.card().classes("w-full p-3 gap-1").props(f'data-child="{row.child_id}"'):
        with ui.row().classes("w-full items-center no-wrap gap-2"):
            ui.link(row.name, f"/child/{row.child_id}").classes("text-lg font-bold grow text-primary")
            status_badge(row.status)
        if row.problem:
            ui.label(row.problem_line).classes("font-bold").mark("problem")
        if row.missing:
            ui.label("Missing now").classes("font-bold text-red-800").mark("missing-now")
        if row.next_clock:
            ui.label(clock_line(row.next_clock))
        place = f"{row.worker_name} · {CATEGORY_LABELS[row.category]}"
        if row.out_of_area:
            place += f" · out of area ({row.placement_la})"
        ui.label(place).classes("text-sm text-gray-800")
        flags = []
        if row.not_seen_alone_last_two:
            flags.append("Not seen alone at the last 2 visits")
        if row.late_write_ups:
            flags.append(f"{row.late_write_ups} written up late")
        if row.overdue_actions:
            flags.append(f"{row.overdue_actions} overdue {'action' if row.overdue_actions == 1 else 'actions'}")
        if flags:
            with ui.row().classes("gap-1"):
                for flag in flags:
                    ui.label(flag).classes("rounded px-2 py-0.5 text-sm bg-orange-100 text-orange-950")
        with ui.row().classes("gap-2"):
            ui.button("Move to another worker", icon="swap_horiz",
                      on_click=lambda r=row: dialog.ask(r)).props("outline").classes("h-11").mark(
                f"move-{row.child_id}")
            ui.button("Audit trail", icon="history",
                      on_click=lambda r=row: ui.navigate.to(f"/child/{r.child_id}/audit")).props(
                "flat").classes("h-11")


class AllocationDialog:
    """Asks which worker in the team a child should move to, then moves them."""

    def __init__(self, dashboard: Any, after: Any) -> None:
        self.dashboard = dashboard
        self.after = after
        self.row: oversight.TeamRow | None = None
        with ui.dialog() as self.dialog, ui.card().classes("w-full max-w-sm"):
            self.key = FormKey()  # a new one each time the dialog is opened: one allocation a key
            self.title = ui.label().classes("text-lg font-bold").props('role="heading" aria-level="2"')
            self.dialog.props(f'aria-labelledby="c{self.title.id}"')
            self.unfinished = ui.label().classes("text-orange-950").mark("unfinished")
            self.choice = ui.select({}, label="Move to").props("outlined").classes("w-full").mark("move-to")
            self.message = ui.label().classes("text-red-800").props('role="alert"')
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat")
                ui.button("Move", on_click=self.move).mark("confirm-move")

    async def ask(self, row: oversight.TeamRow) -> None:
        self.row = row
        self.title.text = f"Move {row.name} to another worker"
        self.choice.options = {k: v for k, v in self.dashboard().workers.items() if k != row.worker_id}
        self.choice.value = None
        self.choice.update()
        self.message.text = ""
        self.key.renew()
        unfinished = await io_bound(oversight.unfinished_work, state.store(), current_worker(), row.child_id)
        who = row.worker_name or "The allocated worker"
        self.unfinished.text = (f"{who} has unfinished work for {row.name}: {'; '.join(unfinished)}. It stays "
                                f"with {who}, who cannot open it once {row.name} moves: ask them to finish it "
                                "first." if unfinished else "")
        self.unfinished.set_visibility(bool(unfinished))
        self.dialog.open()

    async def move(self) -> None:
        if self.row is None:
            return
        if not self.choice.value:
            self.message.text = "Choose the worker to move this child to."
            return
        worker_id = self.choice.value
        try:
            await io_bound(oversight.allocate, state.store(), current_worker(), self.row.child_id, worker_id,
                           self.key.value)
        except (oversight.OversightError, NotAllowed) as e:
            self.message.text = str(e)
            return
        self.dialog.close()
        ui.notify(f"{self.row.name} is now allocated to {self.choice.options[worker_id]}.")
        await self.after()


def allocation_dialog(dashboard: Any, after: Any) -> AllocationDialog:
    return AllocationDialog(dashboard, after)


def register() -> None:
    ui.page("/team", title="Team dashboard · Seen")(team_page)
