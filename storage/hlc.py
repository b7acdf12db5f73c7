"""Hybrid logical clocks: timestamps that order writes across nodes even when their clocks disagree.

A clock value is a string that sorts in causal order: 15 digits of milliseconds, 6 of counter, then the
node id, so comparing two values as strings picks the later write, with the node id breaking ties.

A clock never runs far ahead of real time: a value from elsewhere more than `MAX_AHEAD_MS` past this
node's wall clock moves it only that far (so one device with a wrong clock cannot carry every node it
syncs with into the future), and the sync server refuses a change whose clock is past it (`check`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

MAX_AHEAD_MS = 5 * 60 * 1000  # how far past the server's time a device's clock may run
_FORMAT = re.compile(r"^(\d{15})-(\d{6})-([A-Za-z0-9_.:]{1,64})$")


class HybridClock:
    def __init__(self, node_id: str, wall_ms: Callable[[], int] | None = None) -> None:
        self.node_id = node_id
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self._ms = 0
        self._counter = 0
        self._lock = threading.Lock()

    def now(self) -> str:
        """A new timestamp for a local write."""
        with self._lock:
            wall = self._wall_ms()
            if wall > self._ms:
                self._ms, self._counter = wall, 0
            else:
                self._counter += 1
            return self._format()

    def observe(self, remote: str) -> None:
        """Moves this clock past a timestamp received from another node."""
        ms, counter, _node = parse(remote)
        with self._lock:
            wall = self._wall_ms()
            if ms > wall + MAX_AHEAD_MS:
                ms, counter = wall + MAX_AHEAD_MS, 0  # a clock far ahead moves this one only so far
            top = max(wall, self._ms, ms)
            if top == self._ms == ms:
                self._counter = max(self._counter, counter) + 1
            elif top == self._ms:
                self._counter += 1
            elif top == ms:
                self._counter = counter + 1
            else:
                self._counter = 0
            self._ms = top

    def _format(self) -> str:
        return f"{self._ms:015d}-{self._counter:06d}-{self.node_id}"


def parse(value: str) -> tuple[int, int, str]:
    ms, counter, node = value.split("-", 2)
    return int(ms), int(counter), node


def check(value: str, wall_ms: int) -> str | None:
    """Why a clock value sent by a device cannot be taken (not a clock; too far ahead of `wall_ms`), or None."""
    found = _FORMAT.match(value)
    if found is None:
        return "its clock is not a hybrid logical clock value"
    ahead = int(found.group(1)) - wall_ms
    if ahead > MAX_AHEAD_MS:
        return (f"its clock is {_span(ahead)} ahead of the server's time. Set the device's date and time "
                "correctly, then make the change again")
    return None


def _span(ms: int) -> str:
    minutes = ms // 60_000
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    days = hours // 24
    return f"{days} days" if days < 3650 else "more than ten years"
