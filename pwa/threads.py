"""Storage work off the event loop, with the page's context: who is asking, from which browser.

NiceGUI's `run.io_bound` runs a function in a thread without the caller's context variables, so the
audit trail could not tell which browser a read came from (`pwa.auth.browser_device`). This carries them.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from nicegui import run

P = ParamSpec("P")
R = TypeVar("R")


async def io_bound(callback: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`nicegui.run.io_bound`, run in a copy of this page's context.

    NiceGUI answers None, not the callback's result, when the call is cancelled or the app is stopping
    (NiceGUI 4.0 will raise CancelledError instead). This raises CancelledError now: a page must not take
    that None for an answer, and say "Signed off" for a sign-off that never ran.
    """
    context = contextvars.copy_context()

    def call() -> tuple[R]:
        return (context.run(callback, *args, **kwargs),)  # boxed: a callback's own None is an answer

    boxed = await run.io_bound(call)
    if boxed is None:
        raise asyncio.CancelledError
    return boxed[0]
