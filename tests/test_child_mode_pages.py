"""Child mode as a worker and a child meet it (NiceGUI's User): handing over, the child's screen in Welsh, no way
out without the worker, the statement on the child page with the worker's response, and "I don't feel safe" on
the caseload and the dashboard until a manager records what was done."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from nicegui import ui
from nicegui.testing.user import User
from sqlmodel import col, select

from pwa.child_texts import languages, translate
from storage import push_delivery
from storage.models import AuditEvent, Child, ChildStatement, Photo, SafeguardingFlag, Worker
from storage.photos import open_photo
from storage.signs_of_safety import safety_scores
from storage.store import Store
from tests.conftest import sign_in
from tests.push_service import Device, PushService
from tests.test_direct_work_pages import child_of, png_with_marker, set_value, upload


@pytest.fixture(autouse=True)
def _no_background_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    # The app's own scheduler stays off: the phones hear the child's flag, and only that, at any hour. Running,
    # in England's notify hours (07:00-20:00) it would also send the demo caseload's due visits, and a send
    # under way when a test ends held the app's shutdown up for seconds.
    monkeypatch.setenv("SEEN_SCHEDULER_MINUTES", "0")


async def hand_over(user: User, child_id: str, language: str = "en", pin: str = "") -> None:
    await user.open(f"/child/{child_id}")
    user.find(marker="hand-to-child").click()
    set_value(user, "child-language", language)
    if pin:
        user.find(marker="child-pin").type(pin)
    user.find(marker="hand-over").click()
    await user.should_see(marker="not-safe", retries=300)


def test_welsh_is_offered_and_every_child_mode_text_has_its_welsh() -> None:
    assert languages() == {"en": "English", "cy": "Cymraeg"}
    assert translate("cy", "I don't feel safe") == "Dydw i ddim yn teimlo'n ddiogel"
    assert translate("cy", "Something not translated") == "Something not translated"
    assert translate("fr", "Read aloud") == "Read aloud"  # no file for French: English


async def test_the_child_screen_shows_welsh_and_keeps_the_language_on_the_child(user: User, app_store: Store,
                                                                                monkeypatch) -> None:
    child_id, _ = child_of(app_store, "ben")
    asked: set[str] = set()  # every text the child's screens ask for, to check each has its Welsh
    # The module the running app's pages come from, as pwa.app holds it: NiceGUI's test fixture drops page
    # modules from sys.modules after each test, and the app built again keeps the pages it imported first.
    page = sys.modules["pwa.app"].child_mode
    monkeypatch.setattr(page, "translate", lambda language, message: asked.add(message) or translate(language, message))
    await sign_in(user, "ben")
    await hand_over(user, child_id, "cy")
    await user.should_see("Dy le di")
    await user.should_see("Sut wyt ti'n teimlo gartref?")
    await user.should_see("Dydw i ddim yn teimlo'n ddiogel")
    await user.should_see("Darllen yn uchel")
    await user.should_not_see("Your space")
    for heading in ("Fy Nhri Thŷ", "Beth wyt ti eisiau i'r barnwr ei wybod?"):
        user.find(marker="child-next").click()
        await user.should_see(heading, retries=300)
    user.find(marker="child-next").click()
    await user.should_see("Diolch. Rho'r ffôn yn ôl i dy weithiwr.", retries=300)
    user.find(marker="not-safe").click()
    await user.should_see(marker="unsafe-heard", retries=300)
    assert len(asked) > 20
    assert [m for m in asked if translate("cy", m) == m] == []  # nothing left in English
    with app_store.session() as session:
        assert session.get(Child, child_id).voice_language == "cy"


async def test_leaving_child_mode_needs_the_worker_and_the_statement_is_kept_apart(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    await sign_in(user, "ben")
    await hand_over(user, child_id, "en", pin="2468")
    await user.should_see("Your space")
    await user.should_not_see("Menu")
    for path in ("/", f"/child/{child_id}", "/settings", "/logout"):  # no way to the record, others or the menu
        await user.open(path)
        await user.should_see(marker="not-safe")
        await user.should_not_see("My caseload")

    user.find(marker="leave-child-mode").click()
    user.find(marker="leave-secret").type("1111")
    user.find(marker="leave-confirm").click()
    await user.should_see("That is not your worker's PIN or password", retries=300)
    user.find(marker="leave-secret").type("not-the-password")
    user.find(marker="leave-confirm").click()
    await user.should_see("That is not your worker's PIN or password", retries=300)
    await user.open("/")
    await user.should_see(marker="not-safe")

    user.find(marker="face-home-5").click()
    user.find(marker="face-school-2").click()
    user.find(marker="child-next").click()
    await user.should_see(marker="words-worries")
    user.find(marker="words-worries").type("Moving school")
    await upload(user, "camera-hopes", png_with_marker("a drawing of a dog"))  # a photo of their drawing
    await user.should_see(marker="drawing-hopes")
    await user.should_see(kind=ui.image, retries=300)  # the child sees the drawing they added
    user.find(marker="child-next").click()
    await user.should_see(marker="words-tell_judge")
    user.find(marker="words-tell_judge").type("I want to stay with my carer")
    user.find(marker="words-tell_iro").type("Please come to school to see me")
    user.find(marker="child-next").click()
    await user.should_see(marker="child-thanks", retries=300)
    with app_store.session() as session:
        [statement] = list(session.exec(select(ChildStatement).where(ChildStatement.child_id == child_id)))
        assert not statement.unsafe
        body = app_store.opened(statement).body
        assert body.feelings == {"home": 5, "school": 2}
        photo = session.get(Photo, body.drawings["hopes"])  # sealed as a photo of the statement, without EXIF
        assert photo.record_id == statement.id and b"a drawing of a dog" not in open_photo(app_store, photo)
        denied = list(session.exec(select(AuditEvent).where(AuditEvent.kind == "child_mode",
                                                            AuditEvent.action == "denied")))
        assert len(denied) == 2

    user.find(marker="leave-child-mode").click()
    user.find(marker="leave-secret").type("2468")
    user.find(marker="leave-confirm").click()
    await user.should_see(marker="hand-to-child", retries=300)  # the PIN is checked off the event loop
    await user.should_see(marker="child-statement")
    await user.should_see("I want to stay with my carer")
    await user.should_see("How do you feel at home? Very happy (5 of 5)")
    await user.should_see(marker="child-drawing")
    await user.should_see("Their next review's participation: PN6", retries=1)  # told their IRO: a child in care
    user.find(marker="statement-response-input").type("I will tell the judge at the hearing on Friday.")
    user.find(marker="acknowledge").click()
    await user.should_see(marker="statement-response", retries=300)
    user.find(marker="put-in-book").click()  # the child agrees to keep it in their life-story book
    await user.should_see(marker="in-book", retries=300)
    with app_store.session() as session:
        assert app_store.opened(session.get(ChildStatement, statement.id)).body.in_book
    await user.open("/")
    await user.should_see("My caseload")  # the worker has the phone back


async def test_i_dont_feel_safe_shows_until_a_manager_records_what_was_done(user: User, app_store: Store) -> None:
    child_id, first = child_of(app_store, "ben")
    service = PushService()
    devices = {name: Device(service, name) for name in ("ben", "amara", "erin")}
    with app_store.session() as session:
        ids = {w.username: w.id for w in session.exec(select(Worker).where(col(Worker.username).in_(devices)))}
    for name, device in devices.items():
        push_delivery.subscribe(app_store, ids[name], device.subscription())
    await sign_in(user, "ben")
    await hand_over(user, child_id)
    user.find(marker="not-safe").click()
    await user.should_see(marker="unsafe-heard", retries=300)
    try:  # the worker's and the manager's phones hear at once, through the push service; the name never
        for _ in range(300):
            if service.to(devices["ben"].path) and service.to(devices["amara"].path):
                break
            await asyncio.sleep(0.05)
        for name in ("ben", "amara"):
            [received] = service.to(devices[name].path)
            payload = devices[name].decrypt(received)
            assert payload["url"] == f"/child/{child_id}" and first not in json.dumps(payload)
        assert not service.to(devices["erin"].path)  # another team's worker hears nothing
    finally:
        service.close()
    user.find(marker="leave-child-mode").click()
    user.find(marker="leave-secret").type("seen-demo")  # no PIN set: the worker's password
    user.find(marker="leave-confirm").click()
    await user.should_see(marker="hand-to-child", retries=300)
    await user.should_see("The child said they do not feel safe")
    await user.should_not_see(marker="clear-flag")  # a worker cannot clear it
    await user.open("/")
    await user.should_see(marker="safeguarding-flag")

    await user.open("/logout")
    await sign_in(user, "amara")
    await user.open("/team")
    await user.should_see(marker="safeguarding-flag")
    await user.open(f"/child/{child_id}")
    user.find(marker="clear-flag").click()
    await user.should_see("Write what was done", retries=300)
    user.find(marker="flag-action").type("Strategy discussion; the child stays with the carer tonight.")
    user.find(marker="clear-flag").click()
    await user.should_not_see(marker="clear-flag", retries=300)
    await user.open("/team")
    await user.should_not_see(marker="safeguarding-flag")
    with app_store.session() as session:
        [flag] = list(session.exec(select(SafeguardingFlag)))
        assert flag.cleared_at is not None
        assert first  # the child's name never needed on the phone's alerts (see tests/test_child_voice.py)


async def test_the_idle_lock_still_applies_in_child_mode_and_ends_it(user: User, app_store: Store,
                                                                     monkeypatch) -> None:
    child_id, _ = child_of(app_store, "ben")
    await sign_in(user, "ben")
    await hand_over(user, child_id, pin="2468")
    with monkeypatch.context() as idle:
        idle.setattr(sys.modules["pwa.auth"], "idle_limit_seconds", lambda: -1)  # the phone left untouched past the limit
        await user.open("/child-mode")
        await user.should_see("Sign in")  # locked: the child's screen is gone, and only the worker signs in
    await sign_in(user, "ben")
    await user.open("/child-mode")  # the hand-over ended with the lock: the worker has their own screens back
    await user.should_see("My caseload", retries=300)


async def test_the_child_page_charts_the_safety_scores_of_the_childs_visits(user: User, app_store: Store) -> None:
    with app_store.session() as session:
        erin = session.exec(select(Worker).where(Worker.username == "erin")).one()
        children = [c.id for c in session.exec(select(Child).where(Child.worker_id == erin.id))]
    child_id = next(c for c in children if safety_scores(app_store, erin, c).days)  # the demo scores child protection visits
    latest = safety_scores(app_store, erin, child_id).latest()
    await sign_in(user, "erin")
    await user.open(f"/child/{child_id}")
    await user.should_see(marker="safety-chart")
    who, score = next(iter(latest.items()))
    await user.should_see(f"{who} {score} of 10")
