"""Storage work off the event loop, with the page's context: who is asking, from which browser.

NiceGUI's `run.io_bound` runs a function in a thread without the caller's context variables, so the
audit trail could not tell which browser a read came from (`pwa.auth.browser_device`). This carries them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from nicegui import run

P = ParamSpec("P")
R = TypeVar("R")


async def io_bound(callback: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
    """`nicegui.run.io_bound`, run in a copy of this page's context."""
    context = contextvars.copy_context()
    return await run.io_bound(context.run, callback, *args, **kwargs)
