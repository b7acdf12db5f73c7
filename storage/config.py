"""Settings, read once from the environment. Every knob an authority may turn is here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("SEEN_DATA_DIR", "./data")))
    database_url: str = field(default_factory=lambda: os.environ.get("SEEN_DATABASE_URL", ""))
    # The server's key: base64 of 32 bytes. Without it, an all-in-one node keeps one in data_dir.
    server_key: str = field(default_factory=lambda: os.environ.get("SEEN_SERVER_KEY", ""))
    # "server": data key wrapped by the server key; "personal": wrapped by the worker's passphrase.
    node_mode: str = field(default_factory=lambda: os.environ.get("SEEN_NODE_MODE", "server"))
    host: str = field(default_factory=lambda: os.environ.get("SEEN_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _int("SEEN_PORT", 8080))
    idle_lock_minutes: int = field(default_factory=lambda: _int("SEEN_IDLE_LOCK_MINUTES", 10))
    storage_secret: str = field(default_factory=lambda: os.environ.get("SEEN_STORAGE_SECRET", ""))
    sync_server_url: str = field(default_factory=lambda: os.environ.get("SEEN_SYNC_URL", ""))
    scheduler_minutes: int = field(default_factory=lambda: _int("SEEN_SCHEDULER_MINUTES", 15))
    # Working days a device may hold changes the server lacks before its worker is alerted (storage/sync/behind.py).
    waiting_working_days: int = field(default_factory=lambda: _int("SEEN_WAITING_WORKING_DAYS", 1))
    # Days (England's dates) a closed case stays on its worker's devices after the day it closed (storage/sync/pull.py).
    closed_case_days: int = field(default_factory=lambda: _int("SEEN_CLOSED_CASE_DAYS", 30))
    # The most photos a device holds: the newest of its children's (storage/sync/pull.py, storage/sync/node.py).
    device_photos: int = field(default_factory=lambda: _int("SEEN_DEVICE_PHOTOS", 500))

    # `seen server`'s apply processes (pwa/sync/processes.py): by default one a core on PostgreSQL, none on SQLite.
    sync_processes: int = field(default_factory=lambda: _int("SEEN_SYNC_PROCESSES", -1))

    @property
    def url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'seen.db').resolve()}"


def settings() -> Settings:
    return Settings()
