"""Hybrid logical clocks: timestamps that order writes across nodes even when their clocks disagree.

A clock value is a string that sorts in causal order: 15 digits of milliseconds, 6 of counter, then the
node id, so comparing two values as strings picks the later write, with the node id breaking ties.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
