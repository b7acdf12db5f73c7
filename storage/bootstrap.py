"""Opening the store a node runs on: the server key for servers, the passphrase for personal nodes."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

from storage import sealing
from storage.config import Settings, settings
from storage.store import Store


class ServerKeyMissing(Exception):
    """A standalone server was started without SEEN_SERVER_KEY."""


KEY_BESIDE_DATA = ("Seen: the server key is kept beside the data in {path}. That suits a demo or a trial; for "
                   "real records set SEEN_SERVER_KEY (`seen keygen` makes one) and keep it apart from the data: "
                   "anyone with a copy of both can read every record.")


def server_key(config: Settings | None = None, *, standalone: bool = False) -> bytes:
    """SEEN_SERVER_KEY if given; otherwise (all-in-one only) a key kept in the data directory, with a
    warning. A `standalone` server (`seen server`, holding an authority's records) must be given the key."""
    config = config or settings()
    if config.server_key:
        return sealing.server_key_from_text(config.server_key)
    if standalone:
        raise ServerKeyMissing("seen server needs the server key in SEEN_SERVER_KEY (base64 of 32 bytes; "
                               "`seen keygen` makes one). Every server of an authority uses the same key, kept "
                               "apart from the database.")
    path = key_file(config)
    print(KEY_BESIDE_DATA.format(path=path), file=sys.stderr, flush=True)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(os.urandom(32)).decode())
    return sealing.server_key_from_text(path.read_text().strip())


def key_file(config: Settings) -> Path:
    """Where an all-in-one node without SEEN_SERVER_KEY keeps its key."""
    return Path(config.data_dir) / "server.key"


def _pending_key_file(config: Settings) -> Path:
    # A new key written here first, while `seen rotate-key` runs: never a moment with no file that opens the store.
    return key_file(config).with_name("server.key.new")


def open_server_store(config: Settings | None = None, *, outbox: bool = False, standalone: bool = False) -> Store:
    """The store of a server or all-in-one node, unlocked by the server key."""
    config = config or settings()
    key = server_key(config, standalone=standalone)
    store = Store.open(config.url, outbox=outbox)
    if not store.is_initialised():
        store.initialise_with_server_key(key)
        return store
    try:
        store.unlock_with_server_key(key)
    except sealing.SealError:
        pending = _pending_key_file(config)
        if config.server_key or not pending.exists():
            raise
        # A rotation stopped after the store took the new key but before the file was swapped: finish it.
        store.unlock_with_server_key(sealing.server_key_from_text(pending.read_text().strip()))
        os.replace(pending, key_file(config))
    return store


class KeyRotationRefused(Exception):
    """`seen rotate-key` cannot run here; the message says why. Nothing was changed."""


def _new_key(text: str) -> bytes:
    try:
        return sealing.server_key_from_text(text)
    except ValueError:
        raise KeyRotationRefused("SEEN_NEW_SERVER_KEY is too short: give 32 random bytes in base64 (`seen keygen` "
                                 "prints one). Nothing was changed.") from None


def rotate_server_key(new_text: str = "", config: Settings | None = None) -> str:
    """Rewraps the store's data key under a new server key (no record is re-sealed) and says what to do next.

    A server given SEEN_SERVER_KEY takes the new key from `new_text` (SEEN_NEW_SERVER_KEY: the operator made
    it with `seen keygen` and keeps it before the store depends on it). An all-in-one keeping its key in
    its data directory makes one, unless given one, and swaps the file: the new key is written beside the
    old first, so a crash at any point leaves a file that opens the store (`open_server_store` finishes a
    rotation that stopped half way). Refused, changing nothing, on a personal node, with a wrong current
    key, or with a new key that is too short or the same as the old.
    """
    config = config or settings()
    store = Store.open(config.url, outbox=False)
    try:
        mode = store.key_mode()
        if mode is None:
            raise KeyRotationRefused(f"There is no Seen store at {config.url} yet: nothing to rotate.")
        if mode != "server":
            raise KeyRotationRefused("This is a personal node: its key is wrapped by the worker's passphrase. "
                                     "Use `seen passphrase` to change it.")
        path, from_file = key_file(config), not config.server_key
        if from_file and not path.exists():
            raise KeyRotationRefused(f"No SEEN_SERVER_KEY is set and there is no key file at {path}.")
        if from_file:
            new_text = new_text or base64.b64encode(os.urandom(32)).decode()  # the all-in-one makes its own
        elif not new_text:
            raise KeyRotationRefused("Give the new key in SEEN_NEW_SERVER_KEY (`seen keygen` makes one), and "
                                     "keep it safe before you run this: the store will need it from now on.")
        old = sealing.server_key_from_text(path.read_text().strip() if from_file else config.server_key)
        new = _new_key(new_text)
        if new == old:
            raise KeyRotationRefused("SEEN_NEW_SERVER_KEY is the key in use now: nothing was changed.")
        if not from_file:
            store.change_server_key(old, new)
            return ("The server key is changed; no record needed re-sealing. Start every server of this "
                    "authority with the new key in SEEN_SERVER_KEY from now on (servers already running "
                    "keep working until they restart). The old key no longer opens this store.")
        pending = _pending_key_file(config)
        fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            store.change_server_key(old, new)
        except sealing.SealError:
            pending.unlink()  # the file's key does not open the store: nothing was changed
            raise
        os.replace(pending, path)
        return (f"The server key in {path} is changed; no record needed re-sealing. Restart Seen to use it "
                "(a copy of the old key no longer opens this store).")
    finally:
        store.engine.dispose()


def open_personal_store(config: Settings | None = None) -> Store:
    """A personal node's store, locked until the worker gives the passphrase."""
    config = config or settings()
    return Store.open(config.url, outbox=True)
