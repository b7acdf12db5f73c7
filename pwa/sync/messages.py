"""The sync protocol's messages, imported by both ends: what a node sends and what the server answers.

A push batch is signed with an HMAC keyed by the device token's hash (`batch_signature`), over the batch
id and every change, so a batch altered on the way is refused, and one replayed is applied once. An
upload of the node's own audit events is signed the same way (`audit_signature`, over its events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, StringConstraints

PREFIX = "/api/sync"  # where the sync API is served, and where a node sends
MAX_BATCH = 500
MAX_PAGE = 1000
MAX_AUDIT_EVENTS = 500
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
def _count(value: Any) -> Any:
    # A JSON integer (1 or 1.0), never a boolean or a string of digits: what the document says.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("must be a whole number")
    return int(value)


def _moment(value: Any) -> Any:
    # A date and time as the document says, a string, never a number of seconds (which pydantic would take).
    if value is not None and not isinstance(value, str):
        raise ValueError("must be a date and time, written as text")
    return value


# Text with no control characters but tab and new lines: PostgreSQL text holds no NUL, and nothing Seen keeps
# from a device (ids, names, audit details) has any.
TEXT_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$"
Text = Annotated[str, StringConstraints(pattern=TEXT_PATTERN)]
Count = Annotated[int, BeforeValidator(_count)]
SYNCED_KIND = Literal["child", "placement", "visit", "wishes_and_feelings", "life_story", "photo", "care_plan",
                      "care_plan_action", "review", "missing_episode", "conflict"]


class Change(BaseModel):
    """One write to one record: its clear fields, its body in plain text (HTTPS only), and its change stamps
    (storage/hlc.py; the wire calls them clocks)."""

    change_id: str = Field(pattern=UUID_PATTERN, description="made by the node; the same change twice is held once")
    kind: SYNCED_KIND
    record_id: str = Field(pattern=ID_PATTERN)
    fields: dict[str, Any] = Field(description="the record's clear columns, field_clocks among them")
    body: dict[str, Any] | None = Field(default=None, description="the record's sealed body, opened")
    clock: str = Field(default="", max_length=80, description="the write's change stamp (hybrid logical clock)")
    base_clocks: dict[str, str] = Field(default_factory=dict,
                                        description="each changed field's change stamp before the write")


class PushBatch(BaseModel):
    batch_id: str = Field(pattern=UUID_PATTERN)
    changes: list[Change] = Field(max_length=MAX_BATCH)
    signature: str = Field(description="hex HMAC-SHA256 of the batch, keyed by sha256(device token)")


class PushResult(BaseModel):
    applied: list[str]
    duplicates: list[str] = Field(description="changes the server already held: applied once, not again")
    conflicts: int = Field(description="values that lost a concurrent edit, kept in the conflict log")
    cursor: int
    outdated: list[str] = Field(default_factory=list, description="changes held but not applied: the server "
                                "holds a later write of everything they carry, so they changed nothing")
    refused: dict[str, str] = Field(default_factory=dict, description="changes refused, by id, with why: the rest "
                                    "of the batch was applied; the device sets these aside and shows them")
    held: dict[str, str] = Field(default_factory=dict, description="changes for a child who has left the worker, "
                                 "written after the child left: the server holds them for a manager to decide")


class PullRequest(BaseModel):
    cursor: Count = Field(default=0, ge=0, le=2**31 - 1)
    held: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default_factory=list, max_length=100_000, description="ids of the children the node holds now")
    child_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] | None = Field(
        default=None, max_length=1000, description="only these children (403 if any is not the worker's)")
    limit: Count = Field(default=200, ge=1, le=MAX_PAGE)
    directory_version: Text = Field(default="", max_length=64,
                                    description="the directory version the node holds: not sent again if unchanged")
    holds: DeviceHolds | None = Field(default=None, description="what the device still holds (its first page)")


class DeviceHolds(BaseModel):
    """What a device still holds as it syncs, for its manager's "Devices" page and the changes-waiting alert."""

    waiting: Count = Field(default=0, ge=0, le=2**31 - 1, description="changes not yet on the server")
    set_aside: Count = Field(default=0, ge=0, le=2**31 - 1, description="changes the server refused, kept aside")
    conflicts: Count = Field(default=0, ge=0, le=2**31 - 1, description="conflicts not yet decided")
    waiting_since: Annotated[AwareDatetime | None, BeforeValidator(_moment)] = Field(
        default=None, description="when the oldest of those was written (an ISO 8601 date and time with its offset)")


class PullPage(BaseModel):
    changes: list[Change]
    removals: list[str] = Field(description="children that must leave the node: no longer the worker's")
    directory: dict[str, list[dict[str, Any]]] = Field(
        description="teams and workers; empty when the node's directory_version is current")
    cursor: int
    more: bool
    directory_version: str = Field(default="", description="the directory's version, to send back next time")
    photo_limit: int | None = Field(default=None, description="the most photos the node keeps: the newest")


class AuditEventUpload(BaseModel):
    """One event of the node's own audit chain, as the node wrote it.

    The server records it with the sending device's id, whatever else the node sends.
    """

    id: str = Field(pattern=ID_PATTERN, description="the event's id on the node; sent twice, it is held once")
    at: AwareDatetime = Field(description="when it happened, on the node; one in the future is refused (403)")
    worker_id: Text | None = Field(default=None, max_length=64,
                                  description="the device's own worker, or none (any other is refused)")
    action: Text = Field(min_length=1, max_length=40, description="read, create, update, submit, denied, ...")
    kind: Text = Field(max_length=64, description="the kind of record it concerns")
    record_id: Text = Field(max_length=200)
    child_id: Text | None = Field(default=None, max_length=200)
    detail: Text = Field(default="", max_length=2000, description="ids and field names only, never content")


class AuditUpload(BaseModel):
    batch_id: str = Field(pattern=UUID_PATTERN)
    events: list[AuditEventUpload] = Field(min_length=1, max_length=MAX_AUDIT_EVENTS,
                                           description="in the order the node's chain holds them")
    signature: str = Field(description="hex HMAC-SHA256 of the upload, keyed by sha256(device token)")


class AuditResult(BaseModel):
    recorded: list[str] = Field(description="events now on the server's chain, by their id on the node")
    duplicates: list[str] = Field(description="events the server held already: recorded once, not again")


class EnrolRequest(BaseModel):
    code: Text = Field(min_length=1, max_length=40)
    device_name: Text = Field(default="", max_length=200)


class Enrolled(BaseModel):
    device_id: str
    token: str = Field(description="shown once; the server keeps only its hash")
    worker_id: str
    username: str


class Refusal(BaseModel):
    """Every refusal: what went wrong in plain English, and whether the device must wipe itself."""

    code: str
    message: str
    wipe: bool = False
    change_ids: list[str] = Field(default_factory=list,
                                  description="the changes (or audit events) refused, when some were")
    reasons: dict[str, str] = Field(default_factory=dict,
                                    description="why each change named in change_ids was refused, by its id")


class DeviceStatus(BaseModel):
    device_id: str
    worker_id: str
    latest_seq: int


class SyncRequest(BaseModel):
    """A push and the pull after it in one request: one transaction, one lookup of the device. The client's
    last batch (or only one) goes this way; a refusal of the batch refuses the request (nothing applied,
    nothing pulled), as `/push` would."""

    push: PushBatch
    pull: PullRequest = Field(default_factory=PullRequest, description="the pull after the push (no child_ids); "
                              "`holds` as they are once this batch is taken")


class SyncResult(BaseModel):
    push: PushResult
    pull: PullPage


def request_body(payload: dict[str, Any]) -> bytes:
    """A request's JSON, as a node sends it: by orjson, ~15x faster than json for a batch of 500 visits (~1.5 ms, not
    ~20, on the node while the server waits for the batch). Text goes as UTF-8; what the server checks the
    signature on is the changes it parses, encoded again (`signed_encodings`), so the two need not match."""
    return orjson.dumps(payload)


def token_key(token: str) -> str:
    """What the server keeps of a device token, and the key batches are signed with."""
    return hashlib.sha256(token.encode()).hexdigest()


def canonical(batch_id: str, changes: list[dict[str, Any]], *, name: str = "changes") -> bytes:
    return json.dumps({"batch_id": batch_id, name: changes}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def encode_change(change: dict[str, Any]) -> bytes:
    """One change as it stands in `canonical`: the server checks the signature with these and seals them."""
    return _CANONICAL.encode(change).encode()


def quick_encode_change(change: dict[str, Any]) -> bytes | None:
    """`encode_change` by orjson, ~6x faster (a visit's change: ~3 us, not ~18), or None for a change it cannot
    write. The same bytes for a change of text, whole numbers, booleans, nulls, lists and objects: what json
    escapes and orjson does not (text outside ASCII, the DEL character) is escaped here as json escapes it. Not
    for a float, which the two write differently: a change holding one does not match its signature this way,
    and is encoded by json (`signed_encodings`)."""
    try:
        out = orjson.dumps(change, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError, or an integer past 64 bits; a lone surrogate
        return None
    if b"\x7f" in out:  # DEL, which json escapes (only ever inside text)
        out = out.replace(b"\x7f", b"\\u007f")
    return out if out.isascii() else _NOT_ASCII.sub(_escaped, out.decode()).encode()


_NOT_ASCII = re.compile(r"[^\x00-\x7f]")


def _escaped(found: re.Match[str]) -> str:
    # As json's ensure_ascii writes a character: u and four lower-case hex digits, a surrogate pair past U+FFFF.
    code = ord(found.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"


def signed_encodings(key: str, batch: PushBatch, wire: list[dict[str, Any]]) -> list[bytes] | None:
    """Each change of the batch (`wire`, its changes dumped) as the device signed it, if the signature holds,
    else None. orjson encodes them first (`quick_encode_change`); only if its bytes do not match the signature
    does json encode them again, so the bytes given are always the signed ones."""
    quick = [q for q in map(quick_encode_change, wire) if q is not None]
    if len(quick) == len(wire) and signature_ok(key, batch, encoded=quick):
        return quick
    encoded = [encode_change(c) for c in wire]
    return encoded if signature_ok(key, batch, encoded=encoded) else None


# `json.dumps` with these options, made once: dumps builds an encoder a call (40% of a change's encoding).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _canonical_of(batch_id: str, encoded: list[bytes]) -> bytes:
    # `canonical(batch_id, changes)` from its changes already encoded: the same bytes.
    return b'{"batch_id":' + json.dumps(batch_id).encode() + b',"changes":[' + b",".join(encoded) + b"]}"


def batch_signature(key: str, batch_id: str, changes: list[dict[str, Any]]) -> str:
    return hmac.new(key.encode(), canonical(batch_id, changes), hashlib.sha256).hexdigest()


def audit_signature(key: str, batch_id: str, events: list[dict[str, Any]]) -> str:
    """An audit upload's signature: over "events", so it can never pass for a push batch's, nor one for it."""
    return hmac.new(key.encode(), canonical(batch_id, events, name="events"), hashlib.sha256).hexdigest()


def audit_signature_ok(key: str, upload: AuditUpload, wire: list[dict[str, Any]]) -> bool:
    """Whether the upload is as its device signed it; `wire` is its events dumped as JSON."""
    expected = audit_signature(key, upload.batch_id, wire)
    return hmac.compare_digest(expected.encode(), upload.signature.encode())


def signature_ok(key: str, batch: PushBatch, wire: list[dict[str, Any]] | None = None, *,
                 encoded: list[bytes] | None = None) -> bool:
    """Whether the batch is as its device signed it; `wire` is its changes dumped, or `encoded` each of them
    encoded (`encode_change`), if the caller has them."""
    if encoded is None:
        if wire is None:
            wire = [c.model_dump(mode="json") for c in batch.changes]
        encoded = [encode_change(c) for c in wire]
    expected = hmac.new(key.encode(), _canonical_of(batch.batch_id, encoded), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), batch.signature.encode())  # bytes: any text is comparable
