"""Change stamps: a hybrid logical clock's values, which order writes across nodes even when the nodes'
device times disagree. (In Seen a "clock" is a statutory clock; this module's are called change stamps.)

A change stamp is a string that sorts in causal order: 15 digits of milliseconds, 6 of counter, then the
node id, so comparing two stamps as strings picks the later write, with the node id breaking ties. The
sync format and the stored columns keep their first names for them: `clock`, `base_clocks`, `field_clocks`.

Stamps never run far ahead of real time: a stamp from elsewhere more than `MAX_AHEAD_MS` past this
node's device time moves its stamper only that far (so one device set to the wrong time cannot carry every
node it syncs with into the future), and the sync server refuses a change stamped past it (`check`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

MAX_AHEAD_MS = 5 * 60 * 1000  # how far past the server's time a device's stamps may run
_FORMAT = re.compile(r"^(\d{15})-(\d{6})-([A-Za-z0-9_.:]{1,64})$")


class ChangeStamper:
    """One node's source of change stamps (a hybrid logical clock), told of the stamps it receives."""

    def __init__(self, node_id: str, device_ms: Callable[[], int] | None = None) -> None:
        self.node_id = node_id
        self._device_ms = device_ms or (lambda: int(time.time() * 1000))
        self._ms = 0
        self._counter = 0
        self._lock = threading.Lock()

    def stamp(self) -> str:
        """A new change stamp for a local write."""
        with self._lock:
            wall = self._device_ms()
            if wall > self._ms:
                self._ms, self._counter = wall, 0
            else:
                self._counter += 1
            return self._format()

    def observe(self, remote: str) -> None:
        """Moves this stamper past a change stamp received from another node."""
        ms, counter, _node = parse(remote)
        with self._lock:
            wall = self._device_ms()
            if ms > wall + MAX_AHEAD_MS:
                ms, counter = wall + MAX_AHEAD_MS, 0  # a stamp far ahead moves this stamper only so far
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


def check(value: str, server_ms: int) -> str | None:
    """Why a change stamp sent by a device cannot be taken (not a stamp; too far ahead of `server_ms`), or None."""
    found = _FORMAT.match(value)
    if found is None:
        return "its change stamp is not a hybrid logical clock value"
    ahead = int(found.group(1)) - server_ms
    if ahead > MAX_AHEAD_MS:
        return (f"its change stamp is {_span(ahead)} ahead of the server's time. Set the device's date and time "
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
