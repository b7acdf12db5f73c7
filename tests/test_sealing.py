"""Sealing: bodies open only on their own record, with the right key; wrong passphrases back off."""

import json
import os
from datetime import UTC, date, datetime

import pytest

from storage import sealing


def test_a_sealed_body_opens_on_its_own_record() -> None:
    sealer = sealing.Sealer(sealing.new_data_key())
    blob = sealer.seal("visit", "v1", {"child_words": "I like it here"})
    assert b"I like it here" not in blob
    assert sealer.open("visit", "v1", blob) == {"child_words": "I like it here"}


@pytest.mark.parametrize("kind, record_id", [("visit", "v2"), ("child", "v1")])
def test_a_body_moved_to_another_record_or_kind_is_refused(kind: str, record_id: str) -> None:
    sealer = sealing.Sealer(sealing.new_data_key())
    blob = sealer.seal("visit", "v1", {"child_words": "secret"})
    with pytest.raises(sealing.SealError, match="altered or belongs to another record"):
        sealer.open(kind, record_id, blob)


def test_an_altered_body_is_refused_not_returned_as_garbage() -> None:
    sealer = sealing.Sealer(sealing.new_data_key())
    blob = bytearray(sealer.seal("visit", "v1", {"observations": "The bedroom was tidy."}))
    blob[-5] ^= 0x01
    with pytest.raises(sealing.SealError):
        sealer.open("visit", "v1", bytes(blob))
    with pytest.raises(sealing.SealError, match="not a sealed body"):
        sealer.open("visit", "v1", b"plain text")


def test_wrong_passphrases_back_off_exponentially_and_say_so() -> None:
    key = sealing.new_data_key()
    wrapped = sealing.wrap_with_passphrase(key, "correct horse battery")
    now = [1000.0]
    waits = []
    for _ in range(4):
        with pytest.raises(sealing.WrongPassphrase, match="not right. Wait") as caught:
            sealing.unlock_with_passphrase(wrapped, "wrong guess!", lambda: now[0])
        waits.append(caught.value.wait_seconds)
        # Trying again too soon, even with the right passphrase, is refused until the wait is over.
        with pytest.raises(sealing.TooSoon):
            sealing.unlock_with_passphrase(wrapped, "correct horse battery", lambda: now[0])
        now[0] += caught.value.wait_seconds
    assert waits == [1, 2, 4, 8]
    assert sealing.unlock_with_passphrase(wrapped, "correct horse battery", lambda: now[0]) == key
    assert wrapped.failures == 0


def test_the_back_off_is_capped() -> None:
    assert sealing.backoff_seconds(40) == sealing.MAX_BACKOFF_SECONDS


def test_a_short_passphrase_is_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="at least 8 characters"):
        sealing.wrap_with_passphrase(sealing.new_data_key(), "short")


def test_the_wrong_server_key_is_refused_clearly() -> None:
    wrapped = sealing.wrap_with_server_key(sealing.new_data_key(), b"a" * 32)
    with pytest.raises(sealing.SealError, match="SEEN_SERVER_KEY"):
        sealing.unlock_with_server_key(wrapped, b"b" * 32)


def test_a_sealed_record_moved_to_another_child_outside_seen_does_not_open_and_old_records_still_do(
        demo_store) -> None:
    """Someone with the database moves a visit to another child (or signs it off) by changing its clear
    columns: the body, sealed with the columns it belongs with, is refused instead of opening under them."""
    from sqlalchemy import text
    from sqlmodel import select

    from storage.models import Visit
    from storage.sealing import SealError
    from storage.store import SEALED_WITH

    store = demo_store
    with store.session() as session:
        visits = list(session.exec(select(Visit).where(Visit.status == "submitted").limit(2)))
        other_child = session.exec(select(Visit.child_id).where(Visit.child_id != visits[0].child_id)).first()
    visit, old_style = visits
    assert store.opened(visit).body is not None
    for column, value in (("child_id", other_child), ("status", "signed_off")):
        with store.engine.begin() as connection:
            connection.execute(text(f"UPDATE visit SET {column} = :v WHERE id = :id"), {"v": value, "id": visit.id})
        with store.session() as session:
            moved = session.get(Visit, visit.id)
            with pytest.raises(SealError, match=f"sealed with another {column}"):
                store.opened(moved)
        with store.engine.begin() as connection:
            connection.execute(text(f"UPDATE visit SET {column} = :v WHERE id = :id"),
                               {"v": getattr(visit, column), "id": visit.id})
    with store.session() as session:
        assert store.opened(session.get(Visit, visit.id)).body is not None  # put back, it opens again

    # A body sealed before Seen recorded its clear columns (as an earlier version stored it) still opens.
    body = store.open_payload("visit", old_style.id, old_style.sealed)
    assert SEALED_WITH not in body
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE visit SET sealed = :s WHERE id = :id"),
                           {"s": store.sealer.seal("visit", old_style.id, body), "id": old_style.id})
    with store.session() as session:
        assert store.opened(session.get(Visit, old_style.id)).body.model_dump(mode="json") == body


def test_a_keyring_wrapped_with_the_old_scrypt_cost_unlocks_and_is_stored_with_the_new(tmp_path) -> None:
    """A personal node set up by an earlier Seen (scrypt N=2^15, no cost recorded) opens with its
    passphrase, and from that unlock its data key is wrapped at N=2^17, r=8, p=1 with a new salt."""
    import base64
    import json
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    from sqlmodel import select

    from storage.models import KeyringEntry, Team
    from storage.store import DATA_KEY, Store

    passphrase = "correct horse battery"
    data_key = sealing.new_data_key()
    salt, nonce = os.urandom(16), os.urandom(12)
    kek = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())
    old = {"mode": "passphrase", "salt": base64.b64encode(salt).decode(), "failures": 0, "not_before": 0.0,
           "wrapped": base64.b64encode(nonce + AESGCM(kek).encrypt(nonce, data_key, b"seen:data-key")).decode()}
    url = f"sqlite:///{tmp_path / 'laptop.db'}"
    store = Store.open(url)
    with store.session() as session:
        session.add(KeyringEntry(name=DATA_KEY, value=json.dumps(old)))
        session.add(Team(id="t1", name="A team"))
    sealed = sealing.Sealer(data_key).seal("team_note", "t1", {"text": "kept across the rewrap"})

    store.unlock(passphrase)

    assert store.open_payload("team_note", "t1", sealed) == {"text": "kept across the rewrap"}
    with store.session() as session:
        stored = json.loads(session.get(KeyringEntry, DATA_KEY).value)
        assert session.exec(select(Team)).first() is not None
    assert stored["scrypt_n"] == 2**17 and (sealing.SCRYPT_R, sealing.SCRYPT_P) == (8, 1)
    assert stored["salt"] != old["salt"] and stored["wrapped"] != old["wrapped"]
    new_salt = base64.b64decode(stored["salt"])
    new_kek = Scrypt(salt=new_salt, length=32, n=2**17, r=8, p=1).derive(passphrase.encode())
    raw = base64.b64decode(stored["wrapped"])
    assert AESGCM(new_kek).decrypt(raw[:12], raw[12:], b"seen:data-key") == data_key
    store.engine.dispose()
    again = Store.open(url)
    again.unlock(passphrase)  # the next unlock uses the stored cost, and leaves it as it is
    assert again.open_payload("team_note", "t1", sealed) == {"text": "kept across the rewrap"}
    with again.session() as session:
        assert json.loads(session.get(KeyringEntry, DATA_KEY).value)["salt"] == stored["salt"]
    again.engine.dispose()


def test_a_body_opens_as_json_would_have_written_it() -> None:
    # Bodies are written by orjson: whatever they hold opens as json's encoding of it would (dates as text, an
    # integer past 64 bits, text outside ASCII, keys sorted).
    sealer = sealing.Sealer(sealing.new_data_key())
    body = {"words": "Je m’appelle Zoë 😀\x7f", "on": date(2026, 3, 1),
            "at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
            "count": 2**70, "scores": [{"who": "Child", "score": 7}], "b": None}
    expected = json.loads(json.dumps(body, default=str))
    assert sealer.open("visit", "v1", sealer.seal("visit", "v1", body)) == expected


def test_a_forked_process_never_reuses_the_parents_random_bytes() -> None:
    # Nonces come from a buffer of random bytes: a child process that kept a copy would seal with the parent's
    # nonces, which breaks AES-GCM.
    sealing.random_bytes(1)  # the buffer is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, sealing.random_bytes(64))
        os._exit(0)
    os.close(write)
    theirs = os.read(read, 64)
    os.waitpid(pid, 0)
    os.close(read)
    assert len(theirs) == 64
    assert theirs != sealing.random_bytes(64)
