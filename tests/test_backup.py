"""`seen backup`: a copy of a SQLite store an engineer can restore, made while Seen keeps running.

What they depend on: the copy opens with the same key and holds every record and an intact audit trail,
even when a worker was saving at the same moment; a backup never overwrites a file; a PostgreSQL store is
pointed at pg_dump; and the copy is sealed, so without the key it reads nothing.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlmodel import func, select

from storage import audit, sealing
from storage.db import BackupRefused, backup_sqlite
from storage.models import Child, ChildBody, Team
from storage.store import Store
from tests.support import SERVER_KEY

ROOT = Path(__file__).resolve().parent.parent


def add_children(store: Store, team_id: str, n: int) -> None:
    for i in range(n):
        with store.session() as session:
            child = Child(category="cin", team_id=team_id, birth_year=2014)
            store.write(session, child, ChildBody(first_name=f"Juno{i}", last_name="Periwinkle"), action="create")


def test_a_copy_made_while_a_worker_saves_opens_with_the_key_and_holds_a_whole_trail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seen.db'}"
    store = Store.open(url)
    store.initialise_with_server_key(SERVER_KEY)
    with store.session() as session:
        team = Team(name="Children in Need Team")
        session.add(team)
        session.flush()
        team_id = team.id
    add_children(store, team_id, 20)
    saving = threading.Thread(target=add_children, args=(store, team_id, 200))
    saving.start()
    size = backup_sqlite(url, tmp_path / "copies" / "seen-backup.db")
    saving.join()
    store.engine.dispose()
    assert size > 0

    copy = Store.open(f"sqlite:///{tmp_path / 'copies' / 'seen-backup.db'}")
    copy.unlock_with_server_key(SERVER_KEY)
    with copy.session() as session:
        held = session.exec(select(func.count()).select_from(Child)).one()
        assert 20 <= held <= 220  # what was committed when the copy was taken
        assert all(copy.opened(c).body.last_name == "Periwinkle" for c in session.exec(select(Child)))
        assert audit.verify(session).ok
    copy.engine.dispose()
    stranger = Store.open(f"sqlite:///{tmp_path / 'copies' / 'seen-backup.db'}")
    with pytest.raises(sealing.SealError):
        stranger.unlock_with_server_key(b"x" * 32)
    stranger.engine.dispose()


def test_a_backup_never_overwrites_a_file_and_postgresql_is_sent_to_pg_dump(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seen.db'}"
    Store.open(url).engine.dispose()
    earlier = tmp_path / "monday.db"
    earlier.write_bytes(b"last week's backup")
    with pytest.raises(BackupRefused, match="never overwrites"):
        backup_sqlite(url, earlier)
    assert earlier.read_bytes() == b"last week's backup"
    with pytest.raises(BackupRefused, match="pg_dump"):
        backup_sqlite("postgresql://seen@db.internal/seen", tmp_path / "pg.db")
    with pytest.raises(BackupRefused, match="no Seen store"):
        backup_sqlite(f"sqlite:///{tmp_path / 'nowhere.db'}", tmp_path / "x.db")
    assert not (tmp_path / "pg.db").exists() and not (tmp_path / "x.db").exists()


def test_seen_backup_copies_the_all_in_ones_store_and_says_to_keep_the_key_apart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_", "SEEN_"))}
    env.update(SEEN_DATA_DIR=str(tmp_path / "data"), SEEN_SERVER_KEY=base64.b64encode(SERVER_KEY).decode())

    def seen(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pwa.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    assert seen("demo").returncode == 0
    done = seen("backup", str(tmp_path / "nightly.db"))
    assert done.returncode == 0, done.stderr
    assert "checked" in done.stdout and "server key" in done.stdout
    again = seen("backup", str(tmp_path / "nightly.db"))
    assert again.returncode == 2 and "never overwrites" in again.stderr
    env["SEEN_DATA_DIR"] = str(tmp_path / "restored")
    (tmp_path / "restored").mkdir()
    (tmp_path / "nightly.db").rename(tmp_path / "restored" / "seen.db")
    restored = seen("due", "--json")
    assert restored.returncode == 0, restored.stderr
    assert '"cic_visit"' in restored.stdout  # the demo's children, read back from the copy
