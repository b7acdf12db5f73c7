"""Rotating the server key, as an engineer at a council does when a key may have leaked or policy says so.

What they depend on: every record stays readable with the new key and none with the old; a wrong current
key, a missing or weak new key, or a personal node changes nothing and says why; the all-in-one's key file
is swapped so that a crash at any moment leaves a file that opens the store; the change is in the audit trail.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from storage import audit, sealing
from storage.bootstrap import KeyRotationRefused, key_file, open_server_store, rotate_server_key
from storage.config import Settings
from storage.models import AuditEvent, Child, ChildBody, Team
from storage.store import Store
from tests.support import SERVER_KEY

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW = base64.b64encode(SERVER_KEY).decode(), base64.b64encode(os.urandom(32)).decode()


def a_child(store: Store) -> str:
    with store.session() as session:
        team = Team(name="Children in Care Team")
        session.add(team)
        session.flush()
        child = Child(category="cic", team_id=team.id, birth_year=2015)
        store.write(session, child, ChildBody(first_name="Wren", last_name="Thistledown"), action="create")
        return child.id


def first_name(store: Store, child_id: str) -> str:
    with store.session() as session:
        found = session.get(Child, child_id)
        assert found is not None
        return store.opened(found).body.first_name


def test_a_servers_key_is_rotated_and_from_then_only_the_new_key_opens_its_records(db_url: str, tmp_path: Path) -> None:
    config = Settings(data_dir=tmp_path, database_url=db_url, server_key=OLD)
    store = open_server_store(config)
    child_id = a_child(store)
    store.engine.dispose()

    said = rotate_server_key(NEW, config)
    assert "SEEN_SERVER_KEY" in said and "no record needed re-sealing" in said

    rotated = open_server_store(Settings(data_dir=tmp_path, database_url=db_url, server_key=NEW))
    assert first_name(rotated, child_id) == "Wren"
    with rotated.session() as session:
        assert audit.verify(session).ok
        events = session.exec(select(AuditEvent).where(AuditEvent.kind == "keyring")).all()
        assert [(e.action, e.detail) for e in events] == [("update", "server key changed")]
    rotated.engine.dispose()
    with pytest.raises(sealing.SealError, match="does not open"):
        open_server_store(config)


@pytest.mark.parametrize(("current", "new", "why"), [
    (OLD, "", "SEEN_NEW_SERVER_KEY"),                              # no new key given
    (OLD, "short", "too short"),                                   # a new key too weak to use
    (OLD, OLD, "the key in use now"),                              # the same key again
    (base64.b64encode(b"w" * 32).decode(), NEW, "does not open"),  # the current key is wrong
], ids=["no new key", "new key too short", "same key", "wrong current key"])
def test_a_rotation_that_cannot_be_done_changes_nothing_and_says_why(
        db_url: str, tmp_path: Path, current: str, new: str, why: str) -> None:
    config = Settings(data_dir=tmp_path, database_url=db_url, server_key=OLD)
    store = open_server_store(config)
    child_id = a_child(store)
    store.engine.dispose()
    with pytest.raises((KeyRotationRefused, sealing.SealError), match=why):
        rotate_server_key(new, Settings(data_dir=tmp_path, database_url=db_url, server_key=current))
    still = open_server_store(config)
    assert first_name(still, child_id) == "Wren"
    still.engine.dispose()


def test_a_personal_node_is_told_to_change_its_passphrase_instead(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    node = Store.open(url)
    node.initialise_with_passphrase("a long passphrase for the laptop")
    node.engine.dispose()
    with pytest.raises(KeyRotationRefused, match="seen passphrase"):
        rotate_server_key(NEW, Settings(data_dir=tmp_path, database_url=url, server_key=OLD))


def test_the_all_in_one_swaps_its_key_file_and_a_rotation_cut_short_is_finished_at_the_next_start(
        tmp_path: Path) -> None:
    config = Settings(data_dir=tmp_path, database_url="", server_key="")
    store = open_server_store(config)  # makes its key file beside the data
    child_id = a_child(store)
    store.engine.dispose()
    before = key_file(config).read_text()

    assert "Restart Seen" in rotate_server_key("", config)  # makes a new key itself
    after = key_file(config).read_text()
    assert after != before and not (tmp_path / "server.key.new").exists()
    assert oct(key_file(config).stat().st_mode & 0o777) == "0o600"
    reopened = open_server_store(config)
    assert first_name(reopened, child_id) == "Wren"
    reopened.engine.dispose()
    with pytest.raises(sealing.SealError):
        open_server_store(Settings(data_dir=tmp_path, database_url="", server_key=before))

    # Cut short: the new key written beside the old and taken by the store, the process gone before the swap.
    newest = base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "server.key.new").write_text(newest)
    store = Store.open(config.url)
    store.change_server_key(sealing.server_key_from_text(after), sealing.server_key_from_text(newest))
    store.engine.dispose()
    finished = open_server_store(config)
    assert first_name(finished, child_id) == "Wren"
    finished.engine.dispose()
    assert key_file(config).read_text() == newest and not (tmp_path / "server.key.new").exists()


def test_seen_rotate_key_takes_the_new_key_from_the_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_", "SEEN_"))}
    env.update(SEEN_DATA_DIR=str(tmp_path), SEEN_SERVER_KEY=OLD)

    def seen(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pwa.cli", *args], cwd=ROOT, env={**env, **extra},
                              capture_output=True, text=True, timeout=120)

    store = open_server_store(Settings(data_dir=tmp_path, database_url="", server_key=OLD))
    a_child(store)
    store.engine.dispose()
    refused = seen("rotate-key")
    assert refused.returncode == 2 and "SEEN_NEW_SERVER_KEY" in refused.stderr
    done = seen("rotate-key", SEEN_NEW_SERVER_KEY=NEW)
    assert done.returncode == 0, done.stderr
    assert "Start every server" in done.stdout
    assert seen("audit", "verify", SEEN_SERVER_KEY=NEW).returncode == 0
    old_key = seen("audit", "verify")
    assert old_key.returncode != 0 and "does not open" in old_key.stderr
