"""The child page's Signs of Safety chart: each person's safety score (0-10) at each visit, with the latest
scores in words beside it (the chart is not the only way to read them)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from storage.signs_of_safety import SafetyScores

# Distinct in colour and in shape, so no one needs to tell the lines apart by colour alone.
SYMBOLS = ("circle", "rect", "triangle", "diamond", "pin", "arrow")
RECENT_VISITS = 16  # a child seen weekly for years would crowd a phone's width: the latest visits are charted


def chart_options(scores: SafetyScores) -> dict[str, Any]:
    return {
        "aria": {"enabled": True},
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": list(scores.scores), "bottom": 0},
        "grid": {"left": 8, "right": 8, "top": 16, "bottom": 48, "containLabel": True},
        "xAxis": {"type": "category", "data": [f"{d:%-d %b %y}" for d in scores.days[-RECENT_VISITS:]],
                  "axisLabel": {"rotate": 45, "fontSize": 11}},
        "yAxis": {"type": "value", "min": 0, "max": 10, "interval": 2},
        "series": [{"name": who, "type": "line", "data": values[-RECENT_VISITS:], "connectNulls": True,
                    "symbol": SYMBOLS[n % len(SYMBOLS)], "symbolSize": 9}
                   for n, (who, values) in enumerate(scores.scores.items())],
    }


def safety_chart(scores: SafetyScores) -> None:
    """Only when a visit has recorded a safety scale."""
    if not scores.days:
        return
    ui.label("Safety scores over time (Signs of Safety)").classes("text-lg font-bold mt-2").props(
        'role="heading" aria-level="2"')
    with ui.card().classes("w-full p-2").mark("safety-chart"):
        ui.echart(chart_options(scores)).classes("w-full h-64")
        latest = "; ".join(f"{who} {score} of 10" for who, score in scores.latest().items())
        ui.label(f"At the latest visit ({scores.days[-1]:%-d %B %Y}): {latest}. 0 means the child is not safe, "
                 "10 that everyone agrees the child is safe enough to close the case.").classes(
            "text-sm break-words").mark("safety-latest")
