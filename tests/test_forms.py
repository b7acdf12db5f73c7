"""One definition per kind of form (storage/forms/): the screen, the offline page, the checks and what is
stored all come from it, so they cannot disagree, and a question added to the visit's definition in one
place is asked on the screen and offline, checked, and kept with the sealed visit that syncs."""

from __future__ import annotations

from datetime import date

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction
from sqlmodel import select

from pwa.pwa_shell import OFFLINE_FORMS, offline_forms
from storage.child_view import child_view
from storage.forms import Field
from storage.forms.care_plan_action import CARE_PLAN_ACTION
from storage.forms.life_story import LIFE_STORY
from storage.forms.visit import VISIT
from storage.forms.wishes import WISHES
from storage.models import Child, Visit, Worker, utcnow
from storage.offline import receive_draft
from storage.store import Store
from storage.visits import VisitInvalid, blank_form, check_visit, form_from_visit, submit_visit
from tests.conftest import sign_in

WEATHER = Field("weather", "What was the weather like?", "longtext", required=True,
                message="Say what the weather was like: it changes what the child could do outside.")


@pytest.fixture
def weather(monkeypatch: pytest.MonkeyPatch) -> Field:
    """The visit's definition with one question more, added in that one place, before the correction's note."""
    at = VISIT.names().index("supersedes")
    monkeypatch.setattr(VISIT, "fields", [*VISIT.fields[:at], WEATHER, *VISIT.fields[at:]])
    return WEATHER


def ben_and_cic_child(store: Store) -> tuple[Worker, Child]:
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        child = session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic")
                             .order_by(Child.id)).first()
        assert child is not None
        return ben, child


def answered(**changes: str) -> dict:
    form = blank_form()
    form.update(seen_alone="yes", bedroom_seen="yes", observations="Room tidy; we played football.",
                child_words="It was too wet to go out.")
    form.update(changes)
    return form


def test_the_offline_forms_say_what_the_definitions_say() -> None:
    for form in (VISIT, WISHES, LIFE_STORY):
        offline = {f["name"]: f for f in OFFLINE_FORMS[form.kind]["fields"]}
        assert list(offline) == form.names()
        for f in form.fields:
            assert offline[f.name]["label"] == f.label
            if f.choices:
                assert offline[f.name]["options"] == [[code, words] for code, words in f.choices.items()]
    reason = next(f for f in OFFLINE_FORMS["visit"]["fields"] if f["name"] == "not_alone_reason")
    assert reason["when"] == {"seen": "yes", "seen_alone": "no"}  # shown offline only when asked, as online
    assert OFFLINE_FORMS["visit"]["defaults"] == {"location": "placement", "seen": "yes"}


def test_a_conditional_question_is_asked_and_required_only_when_its_answer_calls_for_it() -> None:
    alone = {"seen": "yes", "seen_alone": "yes"}
    assert "not_alone_reason" not in VISIT.problems(alone)
    assert "Care Planning Regulations" in VISIT.problems({**alone, "seen_alone": "no"})["not_alone_reason"]
    assert "seen_alone" not in VISIT.problems({"seen": "no"})
    assert "bedroom_seen" not in VISIT.problems(alone, category="cp")  # asked only for a child in care
    assert "bedroom_seen" in VISIT.problems(alone, category="cic")
    # The child's words, or why not: either answers it.
    assert "child_words" in VISIT.problems(alone)
    assert "child_words" not in VISIT.problems({**alone, "child_words_not_recorded_reason": "Asleep."})


def test_the_direct_work_checks_come_from_their_definitions() -> None:
    today = date(2026, 11, 23)
    assert WISHES.problems({"on": "2026-12-01", "method": "conversation", "child_words": "Hi"}, today=today) == {
        "on": "The date is in the future. Enter the day the direct work happened."}
    assert LIFE_STORY.problems({"on": "not a day", "section": "nowhere", "title": "x"}, today=today) == {
        "on": "Enter the date of the entry as a date, like 2026-11-23.",
        "section": "Choose the chapter of the life-story book this belongs in."}
    assert CARE_PLAN_ACTION.problems({"plan_id": "p", "description": "Dentist", "owner": "Carer", "due": "soon"}) == {
        "due": "Give the due date as a date, or leave it blank."}


def test_a_question_added_to_the_visit_definition_is_in_the_blank_form_the_checks_and_the_offline_form(
        weather: Field) -> None:
    assert blank_form()["weather"] == ""
    with pytest.raises(VisitInvalid) as refused:
        check_visit(answered(), "cic", utcnow())
    assert refused.value.problems == {"weather": weather.message}
    assert check_visit(answered(weather="Rain all day."), "cic", utcnow()).body.answers == {"weather": "Rain all day."}
    offline = next(f for f in offline_forms()["visit"]["fields"] if f["name"] == "weather")
    assert offline == {"name": "weather", "label": weather.label, "type": "textarea", "required": True}


def test_a_question_added_to_the_visit_definition_is_kept_sealed_and_synced_with_the_visit(
        weather: Field, app_store: Store) -> None:
    ben, child = ben_and_cic_child(app_store)
    visit = submit_visit(app_store, ben, child.id, answered(weather="Rain all day."))
    assert app_store.opened(visit).body.answers == {"weather": "Rain all day."}
    with app_store.session() as session:
        sealed = session.get(Visit, visit.id)
        assert sealed is not None and b"Rain all day" not in sealed.sealed
    assert form_from_visit(app_store, ben, child.id, visit.id)["weather"] == "Rain all day."  # a correction keeps it
    item = next(i for i in child_view(app_store, ben, child.id).timeline if i.record_id == visit.id)
    assert (weather.label, "Rain all day.") in item.lines  # the child's page shows it under its question
    # A visit written offline and sent from the phone carries it too.
    received = receive_draft(app_store, ben, "visit", child.id, answered(weather="Sunny.", submission_key=""),
                             "weather-offline-key-1")
    with app_store.session() as session:
        offline_visit = session.get(Visit, received.record_id)
        assert offline_visit is not None
        assert app_store.opened(offline_visit).body.answers == {"weather": "Sunny."}


async def test_a_question_added_to_the_visit_definition_is_asked_on_the_screen(
        weather: Field, user: User, app_store: Store) -> None:
    _ben, child = ben_and_cic_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child.id}/visit")
    await user.should_see(marker="submit", retries=50)
    await user.should_see(weather.label)
    user.find(marker="submit").click()
    await user.should_see(weather.message, retries=50)
    user.find(marker="weather").type("Snow.")
    for name, option in (("seen_alone", "Yes"), ("bedroom_seen", "Yes")):
        UserInteraction(user, user.find(marker=name).elements, option).click()
    user.find(marker="observations").type("Built a snowman.")
    user.find(marker="child_words").type("I love snow.")
    user.find(marker="submit").click()
    await user.should_see("Visit recorded", retries=50)
    with app_store.session() as session:
        visit = session.exec(select(Visit).where(Visit.child_id == child.id)
                             .order_by(Visit.created_at.desc())).first()  # type: ignore[attr-defined]
        assert visit is not None
        assert app_store.opened(visit).body.answers == {"weather": "Snow."}
