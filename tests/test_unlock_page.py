"""A personal node's unlock screen, as a worker meets it (NiceGUI's simulated user): choosing the passphrase
the first time, a wrong passphrase (a clear message, the wait shown, nothing unlocked), and the right one."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation

from storage import sealing
from storage.store import Store
from tests.conftest import ROOT
from tests.support import set_current_test_store

PASSPHRASE = "kestrel over the ring road"


@pytest.fixture
def node_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    """A personal node's store as it is first opened: nothing in it, no key, locked."""
    monkeypatch.setenv("SEEN_DATA_DIR", str(tmp_path))
    store = Store.open(f"sqlite:///{tmp_path / 'node.db'}", outbox=True)
    set_current_test_store(store)
    yield store
    set_current_test_store(None)
    store.engine.dispose()


@pytest.fixture
async def node(node_store: Store, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    async with user_simulation(main_file=ROOT / "tests" / "app_main.py") as simulated:
        yield simulated
    errors = [r for r in caplog.get_records("call") if r.levelname == "ERROR"]
    if errors:
        pytest.fail(f"There were unexpected ERROR logs: {errors[0].getMessage()}", pytrace=False)


async def unlock_with(user: User, passphrase: str, again: str | None = None) -> None:
    user.find(marker="passphrase").type(passphrase)
    if again is not None:
        user.find(marker="passphrase-again").type(again)
    user.find(marker="unlock").click()


async def test_a_new_node_asks_for_a_passphrase_twice_and_then_is_unlocked(node: User, node_store: Store) -> None:
    await node.open("/")  # any screen of a locked node leads to the unlock screen
    await node.should_see("Choose a passphrase for this device")

    await unlock_with(node, "short", "short")
    await node.should_see("Choose a passphrase of at least 8 characters.")
    assert not node_store.is_initialised() and node_store.locked

    await unlock_with(node, PASSPHRASE, PASSPHRASE + "x")
    await node.should_see("The two passphrases do not match.")
    assert not node_store.is_initialised() and node_store.locked

    await unlock_with(node, PASSPHRASE, PASSPHRASE)
    await node.should_see("Sign in to see your caseload", retries=50)  # unlocked: on to sign in
    assert node_store.is_initialised() and not node_store.locked
    assert node_store.key_mode() == "passphrase"


async def test_a_wrong_passphrase_says_so_shows_the_wait_and_opens_nothing(
        node: User, node_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    node_store.initialise_with_passphrase(PASSPHRASE)
    node_store.lock()  # as the node is after a restart
    # The back-off's clock is the test's: "straight away" is straight away however slow the machine, and the
    # wait is over when the test says so, not after a real second.
    clock = [1_800_000_000.0]
    monkeypatch.setattr(node_store, "unlock", functools.partial(Store.unlock, node_store, now=lambda: clock[0]))

    await node.open("/unlock")
    await node.should_see("Enter your passphrase to open it")
    await node.should_not_see(marker="passphrase-again")  # asked twice only when it is being chosen

    await unlock_with(node, "kestrel over the ring rod")
    await node.should_see("That passphrase is not right. Wait 1 second before trying again", retries=50)
    assert node_store.locked
    await node.open("/")
    await node.should_see("Enter your passphrase to open it")  # still sealed: every screen leads here

    # Straight away again, even with the right passphrase: the wait is not over, and the screen says how long.
    await unlock_with(node, PASSPHRASE)
    await node.should_see("Too many wrong passphrases. Try again in 1 second.", retries=50)
    assert node_store.locked

    clock[0] += sealing.backoff_seconds(1)  # the wait is over
    await unlock_with(node, PASSPHRASE)
    await node.should_see("Sign in to see your caseload", retries=50)
    assert not node_store.locked


async def test_an_unlocked_node_goes_straight_past_the_unlock_screen(node: User, node_store: Store) -> None:
    node_store.initialise_with_passphrase(PASSPHRASE)
    await node.open("/unlock?next=/settings")
    await node.should_see("Sign in to see your caseload")
    await node.should_not_see("Unlock Seen")
