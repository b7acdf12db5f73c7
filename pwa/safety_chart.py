"""The child page's Signs of Safety charts: each person's overall safety score (0-10) at each visit, with the
latest scores in words beside it, and one chart for each worry and safety goal with a table of its scores
under it (a chart is never the only way to read them: WCAG 2.2 AA, 1.1.1 and 1.3.1)."""

from __future__ import annotations

from datetime import date
from typing import Any

from nicegui import ui
from nicegui.elements.mixins.text_element import TextElement

from storage.signs_of_safety import GoalScores, SafetyScores

# Distinct in colour and in shape, so no one needs to tell the lines apart by colour alone.
SYMBOLS = ("circle", "rect", "triangle", "diamond", "pin", "arrow")
RECENT_VISITS = 16  # a child seen weekly for years would crowd a phone's width: the latest visits are charted


def chart_options(days: list[date], scores: dict[str, list[int | None]]) -> dict[str, Any]:
    return {
        "aria": {"enabled": True},
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": list(scores), "bottom": 0},
        "grid": {"left": 8, "right": 8, "top": 16, "bottom": 48, "containLabel": True},
        "xAxis": {"type": "category", "data": [f"{d:%-d %b %y}" for d in days[-RECENT_VISITS:]],
                  "axisLabel": {"rotate": 45, "fontSize": 11}},
        "yAxis": {"type": "value", "min": 0, "max": 10, "interval": 2},
        "series": [{"name": who, "type": "line", "data": values[-RECENT_VISITS:], "connectNulls": True,
                    "symbol": SYMBOLS[n % len(SYMBOLS)], "symbolSize": 9}
                   for n, (who, values) in enumerate(scores.items())],
    }


def safety_chart(scores: SafetyScores) -> None:
    """Only when a visit has recorded a safety scale or a safety goal."""
    if not scores.days and not scores.goals:
        return
    ui.label("Safety scores over time (Signs of Safety)").classes("text-lg font-bold mt-2").props(
        'role="heading" aria-level="2"')
    if scores.days:
        with ui.card().classes("w-full p-2").mark("safety-chart"):
            ui.echart(chart_options(scores.days, scores.scores)).classes("w-full h-64")
            latest = "; ".join(f"{who} {score} of 10" for who, score in scores.latest().items())
            ui.label(f"At the latest visit ({scores.days[-1]:%-d %B %Y}): {latest}. 0 means the child is not safe, "
                     "10 that everyone agrees the child is safe enough to close the case.").classes(
                "text-sm break-words").mark("safety-latest")
    for n, goal in enumerate(scores.goals, 1):
        goal_chart(n, goal)


def goal_chart(n: int, goal: GoalScores) -> None:
    """One worry and its safety goal: its words, a chart of each person's scores, and the same scores as a table."""
    with ui.card().classes("w-full p-2 gap-1").mark(f"safety-goal-{n}"):
        ui.label(f"Worry {n}: {goal.danger}").classes("font-bold break-words").props('role="heading" aria-level="3"')
        ui.label(f"What needs to happen: {goal.goal}").classes("text-sm break-words")
        if goal.scores:
            ui.echart(chart_options(goal.days, goal.scores)).classes("w-full h-56").props(
                f'aria-label="Chart of the scores for worry {n}; the table below gives the same scores"')
        scores_table(n, goal)


def cell(tag: str, text: str, **attributes: str) -> TextElement:
    element = TextElement(tag=tag, text=text).classes("border px-1 text-left")
    for name, value in attributes.items():
        element.props(f'{name}="{value}"')
    return element


def scores_table(n: int, goal: GoalScores) -> None:
    """The charted visits' scores for the goal, a row a visit: a real table (caption, headers with their scope), so a
    screen reader can move through it as a table."""
    people = list(goal.scores)
    with ui.element("div").classes("w-full overflow-x-auto"):
        with ui.element("table").classes("text-sm border-collapse w-full").mark(f"safety-goal-table-{n}"):
            latest = f", the latest {RECENT_VISITS}" if len(goal.days) > RECENT_VISITS else ""
            cell("caption", f"Scores for worry {n}, 0 (the worry will happen) to 10 (the goal is met), "
                 f"by visit{latest}").classes("text-left font-normal italic", remove="border px-1")
            with ui.element("thead"), ui.element("tr"):
                cell("th", "Visit", scope="col")
                for person in people or ["Scores"]:
                    cell("th", person, scope="col")
            with ui.element("tbody"):
                # The latest first, as many as the chart shows: a table of years of weekly visits would be the
                # longest thing on the page.
                for index, day in list(reversed(list(enumerate(goal.days))))[:RECENT_VISITS]:
                    with ui.element("tr"):
                        cell("th", f"{day:%-d %b %Y}", scope="row")
                        for person in people:
                            score = goal.scores[person][index]
                            cell("td", "not scored" if score is None else str(score))
                        if not people:
                            cell("td", "not scored")
