"""Sealing: encryption at rest for identifying and narrative content.

Every sealed body is AES-256-GCM under the store's random data key, with the record's kind and id
bound in as associated data, so a body copied onto another record fails to open. The data key is
itself wrapped: by a key derived from the worker's passphrase with scrypt on a personal node, or by
the server's key on a server. Changing the passphrase rewraps the data key; no record is re-sealed.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = b"S1"  # version prefix on every sealed blob
NONCE_BYTES = 12
KEY_BYTES = 32
# scrypt cost for a passphrase: OWASP's figure (N=2^17, r=8, p=1), about 0.4 s and 128 MiB a try on a laptop,
# which makes guessing slow with the back-off below. (cryptography's Scrypt sets its own memory limit from
# these, so no maxmem is needed; hashlib.scrypt would need maxmem above 128 MiB.) Keys wrapped by an earlier
# Seen used N=2^15 (`LEGACY_SCRYPT_N`, when a wrapped key names no N): rewrapped at their next unlock.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
LEGACY_SCRYPT_N = 2**15
MAX_BACKOFF_SECONDS = 15 * 60


class SealError(Exception):
    """A sealed body could not be opened: it was altered, moved to another record, or the key is wrong."""


def wait_words(seconds: float) -> str:
    """A back-off as a person would say it: "1 second", "40 seconds", "4 minutes"."""
    whole = max(1, math.ceil(seconds))
    if whole < 90:
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{math.ceil(whole / 60)} minutes"


class WrongPassphrase(Exception):
    """The passphrase did not unwrap the data key."""

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(
            f"That passphrase is not right. Wait {wait_words(wait_seconds)} before trying again; "
            "each wrong try doubles the wait."
        )


class TooSoon(Exception):
    """An unlock was tried before the back-off after a wrong passphrase had passed."""

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(
            f"Too many wrong passphrases. Try again in {wait_words(wait_seconds)}."
        )


# json.dumps(body, separators=(",", ":"), sort_keys=True, default=str), made once: `dumps` builds an encoder
# a call, 40% of the time to encode a record's body.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)
# orjson writes what `_ENCODER` writes, read back the same by json.loads, ~10x faster (a visit's body: 17 us with
# json, under 2 with orjson; a sync push seals one a change): dates, times, dataclasses and subclasses of str or
# int are handed to `str` as json hands them. It writes text as UTF-8 where json escapes it, and a float that is
# not finite as null (no body has one: a placement's distance is the only float, and the forms take a number).
_ORJSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS)


def plain_json(body: Any) -> bytes:
    """A body as the JSON it is sealed as: keys sorted, no spaces. A value orjson does not take (an integer past 64
    bits) goes through json."""
    try:
        return orjson.dumps(body, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        return _ENCODER.encode(body).encode()


class _Random(threading.local):
    """Random bytes for nonces and ids, read from the operating system 4 KiB at a time: each `os.urandom` is a
    system call that lets another thread take the interpreter (three a pushed change, and with two pushes
    applied at once, each one a hand-over). The same bytes as separate calls would give; a thread keeps its own,
    and a forked process starts with none, so no two processes ever use the same bytes."""

    buffer = b""
    at = 0  # the bytes before `at` have been given out


_random = _Random()
os.register_at_fork(after_in_child=lambda: _random.__dict__.clear())


def random_bytes(n: int) -> bytes:
    """`n` random bytes from the operating system's generator (as `os.urandom(n)`)."""
    local = _random
    at = local.at
    if at + n > len(local.buffer):
        local.buffer, at = os.urandom(max(4096, n)), 0
    local.at = at + n
    return local.buffer[at:at + n]


def _aad(kind: str, record_id: str) -> bytes:
    return f"seen:{kind}:{record_id}".encode()


class Sealer:
    """Seals and opens record bodies with one store's data key."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self._aead = AESGCM(data_key)

    def seal_bytes(self, kind: str, record_id: str, plain: bytes) -> bytes:
        nonce = random_bytes(NONCE_BYTES)
        return FORMAT + nonce + self._aead.encrypt(nonce, plain, _aad(kind, record_id))

    def open_bytes(self, kind: str, record_id: str, sealed: bytes) -> bytes:
        if not sealed or sealed[:2] != FORMAT or len(sealed) < 2 + NONCE_BYTES + 16:
            raise SealError(f"The sealed {kind} {record_id} is not a sealed body this version of Seen can read.")
        nonce, body = sealed[2 : 2 + NONCE_BYTES], sealed[2 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, _aad(kind, record_id))
        except InvalidTag:
            raise SealError(
                f"The sealed {kind} {record_id} was altered or belongs to another record; it was not opened."
            ) from None

    def seal(self, kind: str, record_id: str, body: dict[str, Any]) -> bytes:
        return self.seal_bytes(kind, record_id, plain_json(body))

    def open(self, kind: str, record_id: str, sealed: bytes) -> dict[str, Any]:
        return json.loads(self.open_bytes(kind, record_id, sealed))


@dataclass
class WrappedKey:
    """The data key as it is kept on disk: wrapped, never in the clear."""

    mode: str  # "passphrase" or "server"
    salt: bytes
    wrapped: bytes
    failures: int = 0
    not_before: float = 0.0  # epoch seconds; unlock attempts before this are refused
    scrypt_n: int = SCRYPT_N  # the passphrase's scrypt cost when it was wrapped

    def to_json(self) -> str:
        return json.dumps(
            {
                "mode": self.mode,
                "salt": base64.b64encode(self.salt).decode(),
                "wrapped": base64.b64encode(self.wrapped).decode(),
                "failures": self.failures,
                "not_before": self.not_before,
                **({"scrypt_n": self.scrypt_n} if self.mode == "passphrase" else {}),
            }
        )

    @property
    def outdated(self) -> bool:
        """Wrapped by a passphrase with a weaker scrypt cost than Seen's now: rewrap it at the next unlock."""
        return self.mode == "passphrase" and self.scrypt_n != SCRYPT_N

    @classmethod
    def from_json(cls, text: str) -> WrappedKey:
        raw = json.loads(text)
        return cls(
            mode=raw["mode"],
            salt=base64.b64decode(raw["salt"]),
            wrapped=base64.b64decode(raw["wrapped"]),
            failures=int(raw.get("failures", 0)),
            not_before=float(raw.get("not_before", 0.0)),
            scrypt_n=int(raw.get("scrypt_n", LEGACY_SCRYPT_N)),
        )


def _passphrase_kek(passphrase: str, salt: bytes, n: int = SCRYPT_N) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())


def _server_kek(server_key: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"seen data key wrap").derive(
        server_key
    )


def audit_key(data_key: bytes) -> bytes:
    """The key the audit chain's hashes are made with (HMAC-SHA256), derived from the data key: whoever can
    open the store's records can check (and extend) its chain, and nobody else. On a personal node the data
    key is unwrapped by the passphrase, so the chain is keyed by it too; on a server, by the server key."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"seen audit chain").derive(data_key)


def _wrap(kek: bytes, data_key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, b"seen:data-key")


def _unwrap(kek: bytes, wrapped: bytes) -> bytes:
    return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], b"seen:data-key")


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_with_passphrase(data_key: bytes, passphrase: str) -> WrappedKey:
    if len(passphrase) < 8:
        raise ValueError("Choose a passphrase of at least 8 characters.")
    salt = os.urandom(16)
    return WrappedKey("passphrase", salt, _wrap(_passphrase_kek(passphrase, salt), data_key))


def wrap_with_server_key(data_key: bytes, server_key: bytes) -> WrappedKey:
    salt = os.urandom(16)
    return WrappedKey("server", salt, _wrap(_server_kek(server_key, salt), data_key))


def backoff_seconds(failures: int) -> float:
    """Wait after the given number of consecutive wrong passphrases: 1, 2, 4, ... up to 15 minutes."""
    return 0.0 if failures <= 0 else float(min(2 ** (failures - 1), MAX_BACKOFF_SECONDS))


def unlock_with_passphrase(
    wrapped: WrappedKey, passphrase: str, now: Callable[[], float] = time.time
) -> bytes:
    """Unwraps the data key, updating the back-off state on `wrapped` (the caller saves it either way)."""
    moment = now()
    if moment < wrapped.not_before:
        raise TooSoon(wrapped.not_before - moment)
    try:
        data_key = _unwrap(_passphrase_kek(passphrase, wrapped.salt, wrapped.scrypt_n), wrapped.wrapped)
    except InvalidTag:
        wrapped.failures += 1
        wait = backoff_seconds(wrapped.failures)
        wrapped.not_before = moment + wait
        raise WrongPassphrase(wait) from None
    wrapped.failures = 0
    wrapped.not_before = 0.0
    return data_key


def unlock_with_server_key(wrapped: WrappedKey, server_key: bytes) -> bytes:
    try:
        return _unwrap(_server_kek(server_key, wrapped.salt), wrapped.wrapped)
    except InvalidTag:
        raise SealError("The server key does not open this store's data key. Check SEEN_SERVER_KEY.") from None


def server_key_from_text(text: str) -> bytes:
    """The server key as given in the environment: base64 of 32 bytes, or any long secret string."""
    try:
        raw = base64.b64decode(text, validate=True)
        if len(raw) == KEY_BYTES:
            return raw
    except ValueError:
        pass
    if len(text) < 16:
        raise ValueError("SEEN_SERVER_KEY is too short: give 32 random bytes in base64 (seen keygen prints one).")
    return text.encode()


# A record's clear columns its sealed body is bound to, recorded in the body under this key when sealed.
SEALED_WITH = "_sealed_with"
BOUND_COLUMNS = ("child_id", "kind", "status")


def binding(row: Any) -> dict[str, Any]:
    """The clear columns a record's sealed body is bound to, as the record has them now."""
    names = _BOUND_NAMES.get(type(row))
    if names is None:
        names = _BOUND_NAMES[type(row)] = tuple(name for name in BOUND_COLUMNS if name in type(row).model_fields)
    return {name: getattr(row, name) for name in names}


# Which of `BOUND_COLUMNS` each type of record has, known once a type: pydantic's `model_fields` costs ~0.5 us
# each time it is asked for, three times a record sealed.
_BOUND_NAMES: dict[type, tuple[str, ...]] = {}
