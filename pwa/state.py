"""The node's one store, opened at start-up and shared by every page and API route."""

from __future__ import annotations

from storage.store import Store

_store: Store | None = None


def set_store(store: Store) -> None:
    global _store
    _store = store


def store() -> Store:
    if _store is None:
        raise RuntimeError("Seen's store has not been opened; start Seen with `seen run`.")
    return _store
