"""A laptop node keeps its worker's web password hash sealed under the passphrase's data key, never in clear:
a real `seen server` on loopback and the real PostgreSQL, the node on its own SQLite file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from pwa.sync.client import Phase
from storage.models import Worker
from storage.sign_in import SignInRefused, sign_in
from storage.store import Store
from tests.sync_support import PASSWORD_HASH, enrol, seed, server_store

PASSPHRASE = "a long laptop passphrase"


def stored_hashes(node: Store) -> dict[str, str]:
    with node.engine.connect() as connection:
        return dict(connection.execute(text("SELECT username, password_hash FROM worker")).all())


def test_the_laptops_password_hash_is_sealed_and_still_signs_in(pg_url: str, server_url: str, tmp_path: Path) -> None:
    server = server_store(pg_url)
    suffix = "-" + uuid.uuid4().hex[:6]
    caseload = seed(server, suffix=suffix)
    url = f"sqlite:///{tmp_path / 'laptop.db'}"
    node = Store.open(url)
    node.initialise_with_passphrase(PASSPHRASE)
    ben = enrol(server, node, "ben", caseload, urls=[server_url])
    assert ben.sync_once().phase == Phase.idle

    kept = stored_hashes(node)[f"ben{suffix}"]
    assert kept.startswith("sealed$") and "scrypt$" not in kept and PASSWORD_HASH not in kept
    assert all(not h or h.startswith("sealed$") for h in stored_hashes(node).values())
    assert sign_in(node, f"ben{suffix}", "seen-demo").id == caseload.workers["ben"]
    with pytest.raises(SignInRefused):
        sign_in(node, f"ben{suffix}", "not-the-password")
    # Copied onto another worker's row, the sealed hash does not open (it is bound to ben's id).
    with node.engine.begin() as connection:
        connection.execute(text("UPDATE worker SET password_hash = :h WHERE username = :u"),
                           {"h": kept, "u": f"chloe{suffix}"})
    with pytest.raises(SignInRefused, match="do not match"):
        sign_in(node, f"chloe{suffix}", "seen-demo")

    # A node from before kept the hash in clear: sealed at its next unlock.
    with node.engine.begin() as connection:
        connection.execute(text("UPDATE worker SET password_hash = :h WHERE username = :u"),
                           {"h": PASSWORD_HASH, "u": f"ben{suffix}"})
    node.engine.dispose()
    again = Store.open(url)
    again.unlock(PASSPHRASE)
    assert stored_hashes(again)[f"ben{suffix}"].startswith("sealed$")
    assert sign_in(again, f"ben{suffix}", "seen-demo").id == caseload.workers["ben"]
    with again.session() as session:
        assert session.exec(select(Worker).where(Worker.username == f"ben{suffix}")).one().active
    again.engine.dispose()
    server.engine.dispose()
