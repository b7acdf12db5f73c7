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
    path = Path(config.data_dir) / "server.key"
    print(KEY_BESIDE_DATA.format(path=path), file=sys.stderr, flush=True)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(os.urandom(32)).decode())
    return sealing.server_key_from_text(path.read_text().strip())


def open_server_store(config: Settings | None = None, *, outbox: bool = False, standalone: bool = False) -> Store:
    """The store of a server or all-in-one node, unlocked by the server key."""
    config = config or settings()
    key = server_key(config, standalone=standalone)
    store = Store.open(config.url, outbox=outbox)
    if store.is_initialised():
        store.unlock_with_server_key(key)
    else:
        store.initialise_with_server_key(key)
    return store


def open_personal_store(config: Settings | None = None) -> Store:
    """A personal node's store, locked until the worker gives the passphrase."""
    config = config or settings()
    return Store.open(config.url, outbox=True)
