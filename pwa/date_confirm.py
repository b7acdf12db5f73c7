"""Asking the worker to confirm a date before the case opened, on any form (storage/record_dates.py).

Storage refuses a date before the child's birth outright; one before the case opened may be right (a record
written up from old notes), so it asks, under CONFIRM_FIELD. The form shows storage's message with the other
problems, and this one button, which confirms that very date and submits the form again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

from nicegui import ui

from storage.record_dates import CONFIRM_FIELD, shown


def offer_confirmation(place: ui.element, problems: dict[str, str], day: str, what: str,
                       confirm: Callable[[str], Awaitable[None]]) -> None:
    """If storage asked for the date to be confirmed, a button in `place` that calls `confirm(day)`.

    `what` leads up to the date: "the visit was on" reads "Yes, the visit was on 1 Feb 2023: save it".
    """
    if CONFIRM_FIELD not in problems:
        return
    try:
        words = shown(date.fromisoformat(day))
    except ValueError:
        return  # storage asks only about a date it could read

    async def confirmed() -> None:
        await confirm(day)

    with place:
        ui.button(f"Yes, {what} {words}: save it", icon="check", on_click=confirmed).props(
            "no-caps").classes("w-full h-12 mt-1").mark("confirm-date")
        ui.label("Or change the date, then save again.").classes("text-sm")
