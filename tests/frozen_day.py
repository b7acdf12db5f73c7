"""Test-only: a `seen server` process whose England's date is a day the test chose, not the machine's.

`SyncServer(..., today=day)` (tests/sync_support.py) starts the server through `run_server_on`, which
replaces `storage.timescales.calendar.today_in_england`, the one source of "today" in Seen, before the server
imports the code that reads it. Nothing in Seen itself reads a day from outside: a production process has no
way to be given one.
"""

from __future__ import annotations

import sys
from datetime import date


def freeze(day: date) -> None:
    """From now on, in this process, England's date is `day`: in the calendar module, and in every module
    already imported that took `today_in_england` from it by name."""
    from storage.timescales import calendar

    real = calendar.today_in_england

    def today_in_england() -> date:
        return day

    calendar.today_in_england = today_in_england
    for module in list(sys.modules.values()):
        if getattr(module, "today_in_england", None) is real:
            module.today_in_england = today_in_england  # type: ignore[attr-defined]


def run_server_on(day: str, argv: list[str]) -> int:
    """`seen` with `argv` (the CLI's arguments), in a process frozen on `day` (YYYY-MM-DD)."""
    freeze(date.fromisoformat(day))
    from pwa.cli import main

    return main(argv)
