"""Opening the store a node runs on: the server key for servers, the passphrase for personal nodes."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from storage import sealing
from storage.config import Settings, settings
from storage.store import Store


def server_key(config: Settings | None = None) -> bytes:
    """SEEN_SERVER_KEY if given; otherwise a key kept in the data directory (all-in-one demo use)."""
    config = config or settings()
    if config.server_key:
        return sealing.server_key_from_text(config.server_key)
    path = Path(config.data_dir) / "server.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(os.urandom(32)).decode())
    return sealing.server_key_from_text(path.read_text().strip())


def open_server_store(config: Settings | None = None, *, outbox: bool = False) -> Store:
    """The store of a server or all-in-one node, unlocked by the server key."""
    config = config or settings()
    store = Store.open(config.url, outbox=outbox)
    key = server_key(config)
    if store.is_initialised():
        store.unlock_with_server_key(key)
    else:
        store.initialise_with_server_key(key)
    return store


def open_personal_store(config: Settings | None = None) -> Store:
    """A personal node's store, locked until the worker gives the passphrase."""
    config = config or settings()
    return Store.open(config.url, outbox=True)
