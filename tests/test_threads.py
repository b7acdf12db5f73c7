"""Pages run storage work through `pwa.threads.io_bound`: what they get back, and what they get when it is cancelled."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from pwa.threads import io_bound

asking = contextvars.ContextVar("asking", default="nobody")


async def test_the_work_runs_with_the_pages_context_and_its_answer_comes_back() -> None:
    asking.set("browser 7")
    assert await io_bound(lambda prefix: f"{prefix}{asking.get()}", "asked by ") == "asked by browser 7"


async def test_work_that_answers_none_gives_none_not_a_cancellation() -> None:
    assert await io_bound(lambda: None) is None


async def test_a_cancelled_page_stops_there_instead_of_carrying_on_with_none() -> None:
    # NiceGUI's run.io_bound answers None when the awaiting task is cancelled: a page that went on would
    # show "Signed off" for a sign-off it never saw finish. The cancellation reaches the page instead.
    started, release = threading.Event(), threading.Event()
    after: list[object] = []

    def slow_sign_off() -> str:
        started.set()
        release.wait(5)
        return "signed off"

    async def page() -> None:
        after.append(await io_bound(slow_sign_off))

    task = asyncio.create_task(page())
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert task.cancelled()
    assert after == []
