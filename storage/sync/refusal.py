"""Why the server will not carry out a sync request: a reason a device and the API can act on.

Storage says what went wrong (`Reason`, also the code a device receives); the sync API
(pwa/sync/server.py) chooses the HTTP status for each reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Why a request was refused."""

    bad_request = "bad_request"  # asked for something that is not there to do (an inactive worker's code)
    bad_code = "bad_code"  # an enrolment code not valid, used already or expired
    not_found = "not_found"  # no such device
    no_token = "no_token"  # a request without a device token
    unknown_device = "unknown_device"  # a token no enrolled device holds
    revoked = "revoked"  # a revoked device: it is told to wipe itself
    not_allowed = "not_allowed"  # the policy refuses it: another worker's child, a final record, ...
    tampered = "tampered"  # altered on the way: its signature does not match, or it repeats itself
    integrity = "integrity"  # refers to a record the server does not have, or repeats one differently
    invalid = "invalid"  # holds a value that is not valid, or that the database cannot store


class SyncRefused(Exception):
    """A request the server will not carry out, and why (`code`)."""

    def __init__(self, message: str, *, code: Reason = Reason.bad_request,
                 change_ids: Iterable[str] = (), wipe: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.change_ids = list(change_ids)
        self.wipe = wipe
        self.reasons: dict[str, str] = {}  # change id -> why it was refused, when changes were
        self.refused: list[Any] = []  # the changes refused (`Refused`), for the audit trail
