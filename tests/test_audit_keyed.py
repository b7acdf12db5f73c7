"""The audit chain is keyed: someone with the database but not the store's key cannot delete or change an
event and make the chain whole again; a chain begun before keying keeps its old events, still checked."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select

from storage import audit
from storage.db import make_engine, migrate
from storage.models import AuditEvent, KeyringEntry
from storage.store import Store
from tests.support import SERVER_KEY

ROOT = Path(__file__).resolve().parent.parent


def seen_audit_verify(db_url: str, data_dir: Path, *args: str, key: bytes | None = SERVER_KEY
                      ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_", "SEEN_"))}
    env.update(SEEN_DATABASE_URL=db_url, SEEN_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    if key is not None:
        env["SEEN_SERVER_KEY"] = base64.b64encode(key).decode()
    return subprocess.run([str(ROOT / ".venv" / "bin" / "seen"), "audit", "verify", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def events(store: Store) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))))


def rechain(store: Store, rows: list[AuditEvent], key: bytes | None) -> None:
    """What someone with database access does to hide a deletion: every hash recomputed after the gap, with
    the algorithm (SHA-256 or HMAC-SHA256) and a key of their own (None: plain), and the head moved."""
    prev = audit.GENESIS
    with store.engine.begin() as connection:
        for row in rows:
            row.prev_hash = prev
            prev = audit.event_hash(row, key)
            connection.execute(text("UPDATE audit_event SET prev_hash = :p, hash = :h WHERE seq = :s"),
                               {"p": row.prev_hash, "h": prev, "s": row.seq})
        connection.execute(text("UPDATE keyring SET value = :v WHERE name = :n"), {"v": prev, "n": audit.HEAD_KEY})


def test_a_deleted_event_with_the_chain_recomputed_is_found_and_verify_needs_the_key(
        store: Store, db_url: str, tmp_path: Path) -> None:
    with store.session() as session:
        for n in range(5):
            audit.append(session, "read", "visit", f"visit-{n}", worker_id="w1", child_id="c1")
    intact = seen_audit_verify(db_url, tmp_path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "Audit chain intact: 5 events." in intact.stdout

    without_key = seen_audit_verify(db_url, tmp_path, key=None)
    assert without_key.returncode == 2
    assert "needs the store's key" in without_key.stderr and "Nothing was checked" in without_key.stderr
    assert not (tmp_path / "server.key").exists()  # no key was made up to check with
    wrong_key = seen_audit_verify(db_url, tmp_path, key=b"w" * 32)
    assert wrong_key.returncode == 2 and "cannot be checked without it" in wrong_key.stderr

    rows = events(store)
    doomed = rows[2]
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": doomed.seq})
    for attackers_key in (None, b"a" * 32):  # plain SHA-256 as before keying, or an HMAC under a key of theirs
        rechain(store, [r for r in rows if r.seq != doomed.seq], attackers_key)
        found = seen_audit_verify(db_url, tmp_path)
        assert found.returncode == 1, found.stdout
        assert f"First broken link: event #{rows[0].seq} (" in found.stdout
        assert "contents were changed" in found.stdout


def test_the_end_cut_off_is_found_against_a_head_noted_elsewhere(store: Store, db_url: str, tmp_path: Path) -> None:
    with store.session() as session:
        for n in range(4):
            audit.append(session, "read", "visit", f"visit-{n}", worker_id="w1")
    first = seen_audit_verify(db_url, tmp_path)
    line = first.stdout
    assert "Newest event: #" in line, line
    head = line.split("--head ")[1].split(":")[0] + ":" + line.split("--head ")[1].split(":")[1][:16]
    assert seen_audit_verify(db_url, tmp_path, "--head", head).returncode == 0
    with store.session() as session:
        audit.append(session, "read", "visit", "visit-4", worker_id="w1")
    assert seen_audit_verify(db_url, tmp_path, "--head", head).returncode == 0  # the chain grew past it: fine

    # Someone with the database cuts the last two events off and moves the recorded head back: the keyed
    # hashes of what is left still hold, so only the head noted elsewhere shows it.
    rows = events(store)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq >= :s"), {"s": rows[-2].seq})
        connection.execute(text("UPDATE keyring SET value = :v WHERE name = :n"),
                           {"v": rows[-3].hash, "n": audit.HEAD_KEY})
    assert seen_audit_verify(db_url, tmp_path).returncode == 0  # what it cannot see without the anchor
    cut = seen_audit_verify(db_url, tmp_path, "--head", head)
    assert cut.returncode == 1
    assert f"event #{head.split(':')[0]}, noted as the newest earlier" in cut.stdout
    assert "events at its end were deleted" in cut.stdout


def write_plain_chain(url: str) -> list[dict[str, Any]]:
    """A store as an earlier Seen left it: schema before keying, events with plain SHA-256 hashes."""
    engine = make_engine(url)
    migrate(engine, "0004_one_head")
    prev = audit.GENESIS
    written = []
    with engine.begin() as connection:
        for n in range(3):
            event = AuditEvent(action="read", kind="visit", record_id=f"old-{n}", worker_id="w1", child_id="c1",
                               prev_hash=prev, hash="")
            event.hash = prev = audit.event_hash(event, None)
            connection.execute(text(
                "INSERT INTO audit_event (id, at, worker_id, device_id, action, kind, record_id, child_id, detail, "
                "prev_hash, hash) VALUES (:id, :at, :worker_id, :device_id, :action, :kind, :record_id, :child_id, "
                ":detail, :prev_hash, :hash)"), event.model_dump(exclude={"seq", "origin", "received_at"}))
            written.append(event.model_dump())
        connection.execute(text("INSERT INTO keyring (name, value) VALUES (:n, :v)"), {"n": audit.HEAD_KEY, "v": prev})
    engine.dispose()
    return written


def test_a_chain_from_before_keying_is_kept_checked_and_bound_by_the_first_keyed_event(db_url: str) -> None:
    old = write_plain_chain(db_url)
    store = Store.open(db_url)
    store.initialise_with_server_key(SERVER_KEY)
    try:
        rows = events(store)
        assert [r.hash for r in rows[:3]] == [e["hash"] for e in old]  # not re-hashed
        marker = rows[3]
        assert (marker.action, marker.kind) == ("key", "audit_chain")
        assert "up to #" in marker.detail and "plain" in marker.detail
        with store.session() as session:
            audit.append(session, "read", "visit", "new-0", worker_id="w1")
            assert audit.verify(session).ok

        # An old, plain event changed and the plain hashes after it recomputed up to the keyed part: the first
        # keyed event still names the old last hash.
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE audit_event SET worker_id = 'someone-else' WHERE seq = :s"),
                               {"s": rows[1].seq})
        changed = events(store)[:3]
        prev = audit.GENESIS
        with store.engine.begin() as connection:
            for row in changed:
                row.prev_hash = prev
                prev = audit.event_hash(row, None)
                connection.execute(text("UPDATE audit_event SET prev_hash = :p, hash = :h WHERE seq = :s"),
                                   {"p": row.prev_hash, "h": prev, "s": row.seq})
        with store.session() as session:
            verdict = audit.verify(session)
        assert not verdict.ok and verdict.broken_seq == marker.seq, verdict

        # The record of where keying began cannot be moved (to pass keyed events off as plain) or removed.
        with store.session() as session:
            entry = session.get(KeyringEntry, audit.KEYED_AFTER_KEY)
            assert entry is not None
            moved = {**json.loads(entry.value), "seq": marker.seq + 5}
            entry.value = json.dumps(moved)
            session.add(entry)
        with store.session() as session:
            assert "was altered" in audit.verify(session).reason
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM keyring WHERE name = :n"), {"n": audit.KEYED_AFTER_KEY})
        with store.session() as session:
            assert "is missing" in audit.verify(session).reason
    finally:
        store.engine.dispose()


def test_a_laptop_nodes_chain_is_keyed_by_its_passphrase_and_verify_asks_for_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'laptop.db'}"
    node = Store.open(url)
    node.initialise_with_passphrase("a long laptop passphrase")
    with node.session() as session:
        audit.append(session, "read", "child", "c1", worker_id="w1", child_id="c1")
    node.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_", "SEEN_"))}
    env.update(SEEN_DATABASE_URL=url, SEEN_DATA_DIR=str(tmp_path), SEEN_NODE_MODE="personal", PYTHONPATH=str(ROOT))

    def run(passphrase: str) -> subprocess.CompletedProcess[str]:
        # No terminal: getpass reads the passphrase from standard input.
        return subprocess.run([str(ROOT / ".venv" / "bin" / "seen"), "audit", "verify"], cwd=ROOT, env=env,
                              input=passphrase + "\n", capture_output=True, text=True, timeout=120)

    right = run("a long laptop passphrase")
    assert right.returncode == 0 and "Audit chain intact: 1 events." in right.stdout, right.stdout + right.stderr
    wrong = run("not the passphrase")
    assert wrong.returncode == 2 and "cannot be checked without it" in wrong.stderr


def test_events_made_ready_before_the_head_is_known_link_into_a_chain_that_verifies(store: Store) -> None:
    # A sync push makes its events ready before it takes the chain's lock, and links them once it holds it. An
    # event with a field that is the very stand-in for its prev_hash is linked the long way (SQLite only:
    # PostgreSQL takes no NUL in text); every hash still verifies, whatever was appended in between.
    nul = store.engine.dialect.name == "sqlite"
    with store.session() as session:
        ready = audit.prepare_many([
            {"action": "sync", "kind": "visit", "record_id": "v1", "worker_id": "w1", "child_id": "c1"},
            {"action": "sync", "kind": "visit", "record_id": "v2", "worker_id": "w1",
             "detail": "\x00prev_hash\x00" if nul else "odd text"},
            {"action": "sync", "kind": "visit", "record_id": "v3", "detail": "odd \x00prev_hash\x00" if nul else "x"},
            {"action": "read", "kind": "child", "record_id": "c1", "detail": "Zoë’s file"},
        ])
        assert (ready.texts[1] is None) == nul and None not in (ready.texts[0], ready.texts[2], ready.texts[3])
        audit.append(session, "read", "child", "c2", worker_id="w2")  # the head moves after they were made ready
        audit.append_many(session, ready)
    with store.session() as session:
        assert audit.verify(session).ok
    chained = events(store)[-4:]
    assert [e.record_id for e in chained] == ["v1", "v2", "v3", "c1"]
    assert [row.prev_hash for row in chained[1:]] == [row.hash for row in chained[:-1]]
