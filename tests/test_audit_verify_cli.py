"""`seen audit verify` on a real store: a changed or deleted audit event is found, and named."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlmodel import col, select

from storage import audit
from storage.models import AuditEvent
from storage.store import Store
from tests.support import SERVER_KEY

ROOT = Path(__file__).resolve().parent.parent


def verify(store_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
    env.update(SEEN_DATABASE_URL=store_url, SEEN_DATA_DIR=str(data_dir),
               SEEN_SERVER_KEY=base64.b64encode(SERVER_KEY).decode())
    return subprocess.run([str(ROOT / ".venv" / "bin" / "seen"), "audit", "verify"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def raw(store: Store, sql: str, **params: object) -> None:
    """Tampering as someone with database access would: plain SQL, around the application."""
    with store.engine.begin() as connection:
        connection.execute(text(sql), params)


def test_verify_names_the_changed_event_then_the_deleted_one_then_a_cut_off_end(
        store: Store, db_url: str, tmp_path: Path) -> None:
    with store.session() as session:
        for n in range(6):
            audit.append(session, "read", "visit", f"visit-{n}", worker_id="w1", child_id="c1")
    with store.session() as session:
        seqs = list(session.exec(select(AuditEvent.seq).order_by(col(AuditEvent.seq))))
    assert len(seqs) == 6
    if not Path(sys.executable).parent.joinpath("seen").exists():
        raise AssertionError("the `seen` command is not installed in .venv (pip install -e .)")

    intact = verify(db_url, tmp_path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "Audit chain intact: 6 events." in intact.stdout

    third = seqs[2]
    raw(store, "UPDATE audit_event SET worker_id = 'someone-else' WHERE seq = :seq", seq=third)
    changed = verify(db_url, tmp_path)
    assert changed.returncode == 1
    assert f"First broken link: event #{third} (" in changed.stdout
    assert "read visit visit-2" in changed.stdout and "contents were changed" in changed.stdout

    raw(store, "UPDATE audit_event SET worker_id = 'w1' WHERE seq = :seq", seq=third)
    assert verify(db_url, tmp_path).returncode == 0  # put back exactly, the chain holds again

    raw(store, "DELETE FROM audit_event WHERE seq = :seq", seq=third)
    deleted = verify(db_url, tmp_path)
    assert deleted.returncode == 1
    assert f"First broken link: event #{seqs[3]} (" in deleted.stdout
    assert f"#{third}, were deleted" in deleted.stdout

    raw(store, "DELETE FROM audit_event WHERE seq >= :seq", seq=seqs[2])  # cut the end off the chain
    cut = verify(db_url, tmp_path)
    assert cut.returncode == 1
    assert f"event #{seqs[1]} (" in cut.stdout and "end of the chain were deleted" in cut.stdout
