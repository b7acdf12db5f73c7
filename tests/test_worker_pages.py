"""The worker's screens as a worker meets them (NiceGUI's simulated user): caseload, child, log a visit,
settings. Common paths, bad paths with their messages, and a draft that survives a reload and a restart."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timedelta

from nicegui import ui
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction
from nicegui.testing.user_simulation import user_simulation
from sqlmodel import select

from pwa.layout import STATUS_STYLE
from pwa.pages.caseload import child_card
from storage.caseload import CaseloadRow
from storage.models import AuditEvent, CarePlanAction, Child, Visit, Worker, utcnow
from storage.store import Store
from storage.timescales import STATUS_ORDER, Clock
from storage.timescales.calendar import LONDON
from tests.conftest import ROOT, sign_in


def ben_child(store: Store, category: str = "cic") -> tuple[str, str]:
    """(id, name) of one of ben's children."""
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        child = session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == category)
                             .order_by(Child.id)).first()
        return child.id, store.opened(child).body.name


def choose(user: User, field: str, option: str) -> None:
    """Taps an option of one of the form's radio groups (found by its field name)."""
    UserInteraction(user, user.find(marker=field).elements, option).click()


def field(user: User, name: str) -> UserInteraction:
    elements = {e for e in user.find(kind=ui.input).elements if f'data-field="{name}"' in str(e.props) or
                e.props.get("data-field") == name}
    assert elements, f"no input for {name}"
    return UserInteraction(user, elements, None)


async def open_visit(user: User, child_id: str) -> None:
    await user.open(f"/child/{child_id}/visit")
    await user.should_see(marker="submit", retries=50)


def caseload_html(user: User) -> str:
    """The caseload's cards as the page sends them (one HTML element holds the whole list)."""
    return next(iter(user.find(marker="caseload").elements)).content  # type: ignore[attr-defined]


async def test_caseload_searches_by_name_and_shows_clock_category_and_place(user: User, app_store: Store) -> None:
    child_id, name = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.should_see(marker="summary")
    await user.should_see(" due ")  # the next clock and its date
    await user.should_see("Child in care")
    everyone = caseload_html(user).count("data-child=")
    assert everyone > 1
    user.find(marker="search").type(name.split()[0].lower())
    await user.should_see(name)
    found = caseload_html(user)
    assert f'data-child="{child_id}"' in found and found.count("data-child=") < everyone
    # One tap to the child, one tap to log a visit: real links, named for the child.
    assert f'href="/child/{child_id}"' in found and f'href="/child/{child_id}/visit"' in found
    assert f'aria-label="Log a visit for {name}"' in found or f'aria-label="Continue visit draft for {name}"' in found
    user.find(marker="search").clear()
    user.find(marker="search").type("nobody-called-this")
    await user.should_see("No children match that name.")
    assert "data-child=" not in caseload_html(user)


async def test_the_caseload_is_worst_first_with_every_status_in_words(user: User, app_store: Store) -> None:
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    html = caseload_html(user)
    statuses = re.findall(r'data-status="([a-z_]+)"', html)
    assert statuses and statuses == sorted(statuses, key=STATUS_ORDER.index)
    for status in set(statuses):  # a colour is never the only signal: the word is on the card too
        word, colours = STATUS_STYLE[status]
        assert f'<span class="badge {colours}">{word}</span>' in html


def test_a_caseload_card_escapes_what_the_councils_import_holds() -> None:
    name = """<img src=x onerror=alert(1)> O'Brien "Bo" & Co"""
    row = CaseloadRow(child_id="c-1", name=name, initials="OB", age=9, category="cic", worker_id="w", team_id="t",
                      placement_town="<b>Town</b>", placement_la="<script>x</script>", out_of_area=True,
                      distance_km=120.4, clocks=[Clock("c-1", "cic_visit", date(2026, 12, 1), "overdue", "r", "s")])
    html = child_card(row, drafts={"visit"}, today=date(2026, 12, 3))
    assert "<img" not in html and "<b>" not in html and "<script" not in html
    assert """>&lt;img src=x onerror=alert(1)&gt; O'Brien "Bo" &amp; Co</a>""" in html
    assert ('aria-label="Continue visit draft for &lt;img src=x onerror=alert(1)&gt; O&#x27;Brien &quot;Bo&quot; '
            '&amp; Co"') in html
    assert "&lt;b&gt;Town&lt;/b&gt;" in html and "Out of area: &lt;script&gt;x&lt;/script&gt;, 120 km away" in html
    assert ">Overdue</span>" in html and "(2 days overdue)" in html


async def test_caseload_says_out_of_area_in_words(user: User, app_store: Store) -> None:
    await sign_in(user, "ben")
    await user.should_see("Out of area:", retries=50)
    await user.should_see(" km away")


async def test_the_child_page_shows_who_placement_clocks_and_timeline(user: User, app_store: Store) -> None:
    child_id, name = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}")
    await user.should_see(name, retries=50)
    await user.should_see("Legal status")
    await user.should_see(" – ")  # code and words, e.g. "C2 – Full care order"
    await user.should_see("Placement")
    await user.should_see("Source: Care Planning, Placement and Case Review")
    await user.should_see("Timeline")
    await user.should_see("Wishes and feelings")
    await user.should_see("Life story")
    await user.should_see("Care plan")
    user.find(marker="log-visit").click()
    await user.should_see(marker="submit", retries=50)


async def test_another_workers_child_is_not_found_and_the_refusal_audited(user: User, app_store: Store) -> None:
    child_id, name = ben_child(app_store)
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    for path in (f"/child/{child_id}", f"/child/{child_id}/visit"):
        await user.open(path)
        await user.should_see("Child not found", retries=50)
        await user.should_not_see(name)
    with app_store.session() as session:
        denied = list(session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                            AuditEvent.record_id == child_id)))
    assert len(denied) == 2


async def test_logging_a_visit_the_common_path(user: User, app_store: Store) -> None:
    child_id, name = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child_id)
    await user.should_see(f"Visit to {name}")
    choose(user, "seen_alone", "Yes")
    choose(user, "bedroom_seen", "Yes")
    field(user, "observations").type("Room tidy; new posters.")
    field(user, "analysis").type("Settled and happy.")
    field(user, "child_words").type("I like my new bike.")
    user.find(marker="add-action").click()
    await user.should_see("Action 1")
    user.find("Action 1").type("Book the dentist")
    user.find(marker="submit").click()
    await user.should_see("Visit recorded", retries=50)
    await user.should_see(f"for {name}")
    with app_store.session() as session:
        visit = session.exec(select(Visit).where(Visit.child_id == child_id).order_by(
            Visit.created_at.desc())).first()  # type: ignore[attr-defined]
        action = session.exec(select(CarePlanAction).where(CarePlanAction.from_visit == visit.id)).one()
    assert visit.status == "submitted" and visit.seen_alone is True and visit.bedroom_seen is True
    assert app_store.opened(visit).body.child_words == "I like my new bike."
    assert app_store.opened(action).body.description == "Book the dentist"


async def test_not_alone_without_a_reason_is_refused_with_a_clear_message(user: User, app_store: Store) -> None:
    child_id, _ = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child_id)
    choose(user, "seen_alone", "No")
    choose(user, "bedroom_seen", "No")
    field(user, "observations").type("Carer present throughout.")
    field(user, "child_words").type("Hello.")
    user.find(marker="submit").click()
    await user.should_see("Choose why the child was not seen alone", retries=50)
    await user.should_see("This visit cannot be submitted yet")
    choose(user, "not_alone_reason", NOT_ALONE_UNABLE)
    user.find(marker="submit").click()
    await user.should_see(f"Seen, not alone: {NOT_ALONE_UNABLE}", retries=50)  # the confirmation says so


NOT_ALONE_UNABLE = "The worker was unable to see the child alone"


async def test_a_new_visit_opens_dated_now_at_the_placement_with_the_child_seen(user: User, app_store: Store) -> None:
    # On the doorstep the worker answers only what the visit was; when and where are filled in already.
    child_id, _ = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    before = utcnow().astimezone(LONDON).replace(second=0, microsecond=0)
    await open_visit(user, child_id)
    after = utcnow().astimezone(LONDON)
    (day,) = field(user, "visit_date").elements
    (moment,) = field(user, "visit_time").elements
    opened = datetime.strptime(f"{day.value} {moment.value}", "%Y-%m-%d %H:%M").replace(tzinfo=LONDON)
    assert before <= opened <= after
    assert next(iter(user.find(marker="location").elements)).value == "placement"
    assert next(iter(user.find(marker="seen").elements)).value == "yes"


async def test_a_future_visit_date_is_refused(user: User, app_store: Store) -> None:
    child_id, _ = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child_id)
    field(user, "visit_date").clear()
    field(user, "visit_date").type(f"{(utcnow().astimezone(LONDON) + timedelta(days=2)):%Y-%m-%d}")
    choose(user, "seen_alone", "Yes")
    choose(user, "bedroom_seen", "Yes")
    field(user, "observations").type("Fine.")
    field(user, "child_words").type("Hi.")
    user.find(marker="submit").click()
    await user.should_see("The visit date and time are in the future", retries=50)
    with app_store.session() as session:
        assert session.exec(select(Visit).where(Visit.child_id == child_id,
                                                Visit.created_at > utcnow() - timedelta(minutes=5))).first() is None


async def test_an_empty_submit_says_what_is_missing(user: User, app_store: Store) -> None:
    child_id, _ = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child_id)
    user.find(marker="submit").click()
    await user.should_see("Say whether you saw the child alone.", retries=50)
    await user.should_see("Write what you saw and heard")
    await user.should_see("Say whether you saw the child's bedroom.")


async def wait_for_draft(user: User) -> None:
    for _ in range(100):
        if any("Draft saved at" in e.text for e in user.find(marker="saved").elements):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the draft was not saved")


async def test_a_draft_survives_a_reload_mid_typing(user: User, app_store: Store) -> None:
    child_id, _ = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child_id)
    choose(user, "seen_alone", "No")
    field(user, "observations").type("The child was half way through tell")
    await open_visit(user, child_id)  # the reload, before the next autosave tick
    await user.should_see(marker="restored", retries=50)
    await user.should_see("The child was half way through tell", retries=50)
    assert next(iter(user.find(marker="seen_alone").elements)).value == "no"  # type: ignore[attr-defined]
    await user.open("/")
    await user.should_see("Continue visit draft", retries=50)


async def test_a_draft_survives_a_server_restart(app_store: Store) -> None:
    child_id, _ = ben_child(app_store)
    async with user_simulation(main_file=ROOT / "tests" / "app_main.py") as before:
        await sign_in(before, "ben")
        await before.should_see("My caseload", retries=50)
        await open_visit(before, child_id)
        field(before, "observations").type("Typed before the server went down")
        await wait_for_draft(before)
    # The app is built again on the same database, as `seen run` does after a restart.
    async with user_simulation(main_file=ROOT / "tests" / "app_main.py") as after:
        await sign_in(after, "ben")
        await after.should_see("My caseload", retries=50)
        await open_visit(after, child_id)
        await after.should_see("Typed before the server went down")
        await after.should_see(marker="restored")


async def test_settings_shows_who_is_signed_in_and_the_idle_lock(user: User, app_store: Store) -> None:
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open("/settings")
    await user.should_see("Ben Castle", retries=50)
    await user.should_see("Seen locks itself after 10 minutes without use")
    await user.should_see("Notifications")
