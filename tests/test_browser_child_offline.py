"""Child mode with no signal, in Debian's chromium at a phone's size (360x740): the signal goes while the child
has the phone, the child's screens carry on from the service worker with what was entered, every answer (a photo
of a drawing per house, "I don't feel safe") is kept sealed on the phone, leaving needs the worker, and when the
signal returns Seen holds exactly one statement with everything, and one flag, pushed once."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from storage import push_delivery
from storage.child_voice import HOUSES, statements_for_child
from storage.models import ChildStatement, Photo, SafeguardingFlag, Worker
from tests.browser_support import (
    LiveServer,
    ben_and_child,
    check_screen,
    read_indexeddb,
    running_server,
    sign_in,
    wait_connected,
    wait_for_worker,
)
from tests.push_service import Device, PushService

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server(tmp_path: Path, demo_template: Path) -> Iterator[LiveServer]:
    # The server's own scheduler stays off: Ben's phone hears the child's flag, and only that, at any hour.
    # Running, in England's notify hours (07:00-20:00) it would also send him the demo caseload's due visits.
    with running_server(tmp_path / "server", demo=demo_template, SEEN_SCHEDULER_MINUTES="0") as server:
        yield server

WORDS = {"good_things": "My cat Biscuit", "worries": "Loud nights at home", "hopes": "Be a vet",
         "tell_worker": "Visit on Tuesdays", "tell_iro": "I want to see my brother", "tell_judge": "Let me stay here"}


def drawing(tmp_path: Path, house: str, colour: tuple[int, int, int]) -> Path:
    path = tmp_path / f"{house}.png"
    out = io.BytesIO()
    Image.new("RGB", (800, 600), colour).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


def held_on_server(server: LiveServer, child_id: str) -> tuple[list[ChildStatement], list[SafeguardingFlag]]:
    store = server.store()
    try:
        with store.session() as session:
            return (list(session.exec(select(ChildStatement).where(ChildStatement.child_id == child_id))),
                    list(session.exec(select(SafeguardingFlag).where(SafeguardingFlag.child_id == child_id))))
    finally:
        store.engine.dispose()


def test_the_child_carries_on_with_no_signal_and_it_reaches_seen_once(page, context, live_server: LiveServer,
                                                                      tmp_path: Path) -> None:
    ben, child_id = ben_and_child(live_server)
    service = PushService()
    device = Device(service, "ben-phone")
    store = live_server.store()
    try:
        push_delivery.subscribe(store, ben.id, device.subscription())
    finally:
        store.engine.dispose()
    try:
        sign_in(page, "ben")
        page.goto(f"/child/{child_id}")
        wait_connected(page)
        wait_for_worker(page)
        page.get_by_role("button", name="Hand to the child").click()
        page.get_by_label("A PIN to take it back").fill("2468")
        page.get_by_role("button", name="Hand over").click()
        page.wait_for_url("**/child-mode")
        wait_connected(page)
        wait_for_worker(page)
        page.locator('[data-child-field="feeling_home"][data-child-value="5"]').click()  # online: kept as it is given
        page.locator('[data-child-field="feeling_home"][data-child-value="5"][aria-pressed="true"]').wait_for()
        page.get_by_role("button", name="Next").click()
        page.get_by_role("heading", name="My Three Houses").wait_for()
        page.locator('[data-child-drawing="good_things"] input[type=file]').set_input_files(
            str(drawing(tmp_path, "online", (250, 250, 0))))
        page.get_by_role("img", name="Photo of my drawing").wait_for()  # the screen has it
        page.get_by_label("Write here, or tell your worker").nth(1).fill("Typed online")
        page.wait_for_timeout(800)

        # The signal goes: the offline child screens take over, on the same step, with the answers given online.
        context.set_offline(True)
        page.wait_for_url("**/offline")
        page.get_by_role("heading", name="Your space").wait_for()
        page.get_by_role("heading", name="My Three Houses").wait_for()
        page.locator('img[data-drawing="good_things"]').wait_for()
        assert page.locator("#words-worries").input_value() == "Typed online"
        assert page.get_by_role("button", name="Start a new visit").is_hidden()
        page.get_by_role("button", name="Back").click()
        page.locator('[data-child-field="feeling_home"][data-child-value="5"][aria-pressed="true"]').wait_for()
        page.get_by_role("group", name="How do you feel at school?").get_by_role("button", name="Sad", exact=True).click()
        page.get_by_role("group", name="How do you feel about seeing your family?").get_by_role(
            "button", name="OK", exact=True).click()
        check_screen(page, "a11y-child-offline-faces")
        small = page.evaluate("""[...document.querySelectorAll('main button')].filter(b => {
            const r = b.getBoundingClientRect(); return r.width && (r.width < 48 || r.height < 48);
          }).map(b => b.textContent)""")
        assert small == []
        page.get_by_role("button", name="Next").click()
        page.get_by_role("heading", name="My Three Houses").wait_for()
        for house, colour in zip(HOUSES, [(200, 30, 30), (30, 200, 30), (30, 30, 200)], strict=True):
            page.locator(f"#words-{house}").fill(WORDS[house])
            page.locator(f'input[data-child-drawing="{house}"]').set_input_files(str(drawing(tmp_path, house, colour)))
            page.locator(f'img[data-drawing="{house}"]').wait_for()
        page.get_by_role("button", name="I don't feel safe").click()
        page.locator("#unsafe-heard").wait_for()
        check_screen(page, "a11y-child-offline-houses")

        # Read aloud: the browser's speech synthesis says the words on the step.
        page.evaluate("() => { window.speechSynthesis.speak = (u) => { window.seenSaid = [u.lang, u.text]; }; }")
        page.get_by_role("button", name="Read aloud").click()
        assert "House of worries" in page.evaluate("window.seenSaid")[1]

        page.get_by_role("button", name="Next").click()
        for name in ("tell_worker", "tell_iro", "tell_judge"):
            page.locator(f"#words-{name}").fill(WORDS[name])
        page.wait_for_timeout(300)
        dump = repr(read_indexeddb(page)["stores"])
        assert all(words not in dump for words in WORDS.values())  # sealed on the phone
        page.get_by_role("button", name="Send").click()
        page.locator("#child-thanks").wait_for()

        # Reloaded with no signal, the phone is still the child's.
        page.reload()
        page.locator("#child-thanks").wait_for()
        page.get_by_role("button", name="For your worker").click()
        page.get_by_label("Your PIN or password").fill("1357")
        page.get_by_role("button", name="Take it back").click()
        page.get_by_text("That is not your worker's PIN or password").wait_for()
        check_screen(page, "a11y-child-offline-leave-refused")
        assert held_on_server(live_server, child_id) == ([], [])
        page.get_by_label("Your PIN or password").fill("2468")
        page.get_by_role("button", name="Take it back").click()
        page.get_by_role("heading", name="The phone is yours again").wait_for()

        # The signal returns: the statement and the flag reach Seen once, and child mode ends there too.
        context.set_offline(False)
        page.get_by_role("link", name="Return to Seen").wait_for(timeout=30000)
        deadline = time.time() + 30
        while time.time() < deadline and not service.to(device.path):
            time.sleep(0.2)
        page.wait_for_timeout(3000)  # nothing more arrives
        statements, flags = held_on_server(live_server, child_id)
        assert len(statements) == 1 and len(flags) == 1 and statements[0].unsafe
        assert len(service.to(device.path)) == 1
        store = live_server.store()
        try:
            with store.session() as session:
                ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            [view] = statements_for_child(store, ben, child_id)
            with store.session() as session:  # the photo taken online and taken again offline: one per house
                assert len(list(session.exec(select(Photo).where(Photo.record_id == view.id)))) == len(HOUSES)
        finally:
            store.engine.dispose()
        assert view.feelings == {"home": 5, "school": 2, "contact": 3}
        assert view.words == WORDS and set(view.drawings) == set(HOUSES)
        page.get_by_role("link", name="Return to Seen").click()
        page.get_by_role("button", name="Hand to the child").wait_for()  # the worker's screens again
    finally:
        service.close()
