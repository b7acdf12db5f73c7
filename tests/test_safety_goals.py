"""Signs of Safety on the visit (issue 18): danger statements paired with safety goals, scored 0-10 by each
person, carried forward from visit to visit and followed over time on the child page (a chart and a table).

Storage on SQLite and PostgreSQL (the checks, the sealed body, the scores over time with a corrected visit
counted once, a pair carried forward or typed again), then the screens as a worker meets them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction
from sqlmodel import select

from pwa.pwa_shell import OFFLINE_FORMS
from storage.child_view import child_view
from storage.models import Child, Visit, VisitBody, Worker
from storage.offline import receive_draft
from storage.signs_of_safety import safety_scores
from storage.store import Store
from storage.timescales.calendar import LONDON
from storage.visits import VisitInvalid, blank_form, form_from_visit, start_visit_form, submit_visit
from tests.conftest import DEMO_DAY, sign_in

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the demo's day (a Monday), mid-afternoon
assert NOW.date() == DEMO_DAY
DRINK = "Dad drinks at contact and shouts at Sam."
SCHOOL = "Sam misses school and no one knows where he is."


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def cp_child(store: Store, who: Worker, n: int = 0) -> Child:
    with store.session() as session:
        return list(session.exec(select(Child).where(Child.worker_id == who.id, Child.category == "cp")
                                 .order_by(Child.id)))[n]


def visit_form(at: datetime, goals: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    form = blank_form(at)
    form.update(seen_alone="yes", observations="Sam showed me his room.", child_words="Dad was loud.",
                safety_goals=goals, **changes)
    return form


def pair(danger: str, goal: str, pair_id: str = "", **scores: Any) -> dict[str, Any]:
    return {"pair_id": pair_id, "danger": danger, "goal": goal, **scores}


def test_each_worry_and_goal_is_scored_over_time_carried_forward_and_a_corrected_visit_counts_once(
        module_demo_store: Store) -> None:
    store = module_demo_store
    erin = worker(store, "erin")
    child = cp_child(store, erin)
    first = submit_visit(store, erin, child.id, visit_form(NOW - timedelta(days=7), [
        pair(DRINK, "Dad comes to contact sober.", worker=3, parent="6", child="2"),
        pair(SCHOOL, "Sam is in school every day.", worker=5),
    ]), now=NOW)
    sealed: VisitBody = store.opened(first).body
    assert [(g.danger, g.scores) for g in sealed.safety_goals] == [
        (DRINK, {"worker": 3, "parent": 6, "child": 2}), (SCHOOL, {"worker": 5})]

    # The next visit opens with both pairs, their ids kept and their scores blank, to be scored again.
    start = start_visit_form(store, erin, child.id, now=NOW - timedelta(days=3))
    carried = start.fields["safety_goals"]
    assert [(row["pair_id"], row["danger"], row["worker"], row["parent"]) for row in carried] == [
        (g.pair_id, g.danger, None, None) for g in sealed.safety_goals]
    carried[0].update(goal="Dad comes to contact sober, checked by the contact worker.", worker=4, parent=7)
    carried[1].update(pair_id="", danger=f"  {SCHOOL.upper()} ", worker=6)  # typed again (offline): its words match
    wrong = submit_visit(store, erin, child.id, {**start.fields, "seen_alone": "yes", "observations": "Calm.",
                                                  "child_words": "Better."}, now=NOW)
    correction = form_from_visit(store, erin, child.id, wrong.id)
    assert correction["safety_goals"][0]["worker"] == 4  # a correction keeps the scores given
    correction["safety_goals"][0]["worker"] = 5
    submit_visit(store, erin, child.id, {**correction, "supersedes": wrong.id}, now=NOW)

    scores = safety_scores(store, erin, child.id)
    days = [(NOW - timedelta(days=d)).astimezone(LONDON).date() for d in (7, 3)]
    drink, school = scores.goals
    assert (drink.pair_id, drink.days, drink.goal) == (sealed.safety_goals[0].pair_id, days,
                                                       "Dad comes to contact sober, checked by the contact worker.")
    assert drink.scores == {"Social worker": [3, 5], "Parent or carer": [6, 7], "Child": [2, None]}
    assert drink.latest() == {"Social worker": 5, "Parent or carer": 7, "Child": 2}
    assert school.days == days and school.scores == {"Social worker": [5, 6]}

    # The timeline says each pair with its scores.
    item = next(i for i in child_view(store, erin, child.id, on=DEMO_DAY).timeline if i.record_id == first.id)
    assert ("Worry and safety goal 1", f"Worried that {DRINK} What needs to happen: Dad comes to contact sober. "
            "Scores (0-10): Social worker 3, Parent or carer 6, Child 2.") in item.lines


@pytest.mark.parametrize(("goals", "words"), [
    ([pair(DRINK, "Sober.", parent=11)], "row 1: give the parent's or carer's score as a whole number from 0 to 10"),
    ([pair(DRINK, "Sober."), pair(SCHOOL, "In school.", child=-1)], "row 2: give the child's score as a whole number"),
    ([pair(DRINK, "Sober.", worker="7.5")], "row 1: give the social worker's score as a whole number"),
    ([pair(DRINK, "Sober.", others="seven")], "row 1: give the others' score as a whole number"),
    ([pair(DRINK, "", worker=3)], "row 1: write the safety goal (What needs to happen…) that goes with the danger"),
    ([pair("", "Sober.")], "row 1: write the danger statement (Worried that…) that goes with the safety goal"),
    ([pair("", "", child=4)], "row 1: write the danger statement (Worried that…) and the safety goal"),
    ("not rows", "the rows could not be read"),
])
def test_a_bad_score_or_a_worry_without_its_goal_is_refused_naming_the_field_and_nothing_is_stored(
        module_demo_store: Store, goals: Any, words: str) -> None:
    erin = worker(module_demo_store, "erin")
    child = cp_child(module_demo_store, erin, 1)
    with module_demo_store.session() as session:
        before = len(list(session.exec(select(Visit.id))))
    with pytest.raises(VisitInvalid) as refused:
        submit_visit(module_demo_store, erin, child.id, visit_form(NOW - timedelta(hours=2), goals), now=NOW)
    assert refused.value.problems["safety_goals"].startswith("Worries and safety goals")
    assert words in refused.value.problems["safety_goals"]
    with module_demo_store.session() as session:
        assert len(list(session.exec(select(Visit.id)))) == before


def test_a_score_of_nought_is_kept_an_unscored_pair_is_kept_and_an_empty_row_is_dropped(module_demo_store: Store) -> None:
    erin = worker(module_demo_store, "erin")
    child = cp_child(module_demo_store, erin, 2)
    visit = submit_visit(module_demo_store, erin, child.id, visit_form(NOW - timedelta(hours=2), [
        pair(DRINK, "Sober.", child=0, worker=0.0), pair(SCHOOL, "In school."), pair("", "", "carried-id")]), now=NOW)
    goals = module_demo_store.opened(visit).body.safety_goals
    assert [(g.danger, g.scores) for g in goals] == [(DRINK, {"worker": 0, "child": 0}), (SCHOOL, {})]


def test_the_offline_page_asks_the_same_pairs_and_a_visit_sent_from_the_phone_keeps_them(
        module_demo_store: Store) -> None:
    offline = next(f for f in OFFLINE_FORMS["visit"]["fields"] if f["name"] == "safety_goals")
    assert [c[:3] for c in offline["columns"][:3]] == [["pair_id", "Pair", "hidden"],
                                                      ["danger", "Worried that…", "longtext"],
                                                      ["goal", "What needs to happen…", "longtext"]]
    assert [c[3:] for c in offline["columns"][3:]] == [[0, 10]] * 4
    assert offline["paired"] == {"danger": "goal", "goal": "danger"}
    erin = worker(module_demo_store, "erin")
    child = cp_child(module_demo_store, erin, 3)
    # The offline page sends every answer as text, an unused row's hidden id included.
    received = receive_draft(module_demo_store, erin, "visit", child.id, visit_form(
        NOW - timedelta(hours=2), [pair(DRINK, "Sober.", worker="4", parent="", child="", others="8"),
                                   pair("", "", "", worker="", parent="", child="", others="")],
        submission_key=""), "safety-goals-offline-1")
    with module_demo_store.session() as session:
        visit = session.get(Visit, received.record_id)
        assert visit is not None
        assert [(g.danger, g.scores) for g in module_demo_store.opened(visit).body.safety_goals] == [
            (DRINK, {"worker": 4, "others": 8})]


def test_an_older_visit_with_only_the_overall_scale_still_reads(module_demo_store: Store) -> None:
    erin = worker(module_demo_store, "erin")
    child = next(c for c in (cp_child(module_demo_store, erin, n) for n in range(6))
                 if safety_scores(module_demo_store, erin, c.id).days)  # the demo scores the overall scale
    scores = safety_scores(module_demo_store, erin, child.id)
    assert scores.latest() and scores.goals == []


# ---------------------------------------------------------------- the screens


def cp_child_of_erin(store: Store) -> Child:
    erin = worker(store, "erin")
    return next(c for c in (cp_child(store, erin, n) for n in range(6)) if not safety_scores(store, erin, c.id).goals)


def choose(user: User, field: str, option: str) -> None:
    UserInteraction(user, user.find(marker=field).elements, option).click()


async def test_a_visit_with_two_worries_and_goals_is_charted_with_a_table_and_the_next_visit_carries_them(
        user: User, app_store: Store) -> None:
    child = cp_child_of_erin(app_store)
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child.id}/visit")
    await user.should_see(marker="submit", retries=50)
    await user.should_see("Worries and safety goals")
    choose(user, "seen_alone", "Yes")
    user.find(marker="observations").type("Sam showed me his room.")
    user.find(marker="child_words").type("Dad was loud.")
    for index, (danger, goal, scores) in enumerate([(DRINK, "Dad comes to contact sober.", (3, 6, 2, None)),
                                                    (SCHOOL, "Sam is in school every day.", (5, None, 8, None))]):
        user.find(marker="add-goal").click()
        await user.should_see(f"Worry and safety goal {index + 1}")
        user.find(marker=f"goal-danger-{index}").type(danger)
        user.find(marker=f"goal-goal-{index}").type(goal)
        for who, score in zip(("worker", "parent", "child", "others"), scores, strict=True):
            if score is not None:
                user.find(marker=f"goal-{who}-{index}").type(str(score))
    user.find(marker="submit").click()
    await user.should_see("Visit recorded", retries=50)

    await user.open(f"/child/{child.id}")
    await user.should_see(marker="safety-goal-1", retries=50)
    await user.should_see(f"Worry 1: {DRINK}")
    await user.should_see(f"Worry 2: {SCHOOL}")
    await user.should_see("What needs to happen: Sam is in school every day.")
    # The chart's table: a caption, a column per person who scored, the visit's row with its scores.
    await user.should_see("Scores for worry 1, 0 (the worry will happen) to 10 (the goal is met), by visit")
    table = user.find(marker="safety-goal-table-1").elements.pop()
    cells = [e.text for e in table.descendants() if e.tag in ("th", "td")]  # type: ignore[attr-defined]
    today = datetime.now(UTC).astimezone(LONDON).date()  # the form opens dated now
    assert cells == ["Visit", "Social worker", "Parent or carer", "Child", f"{today:%-d %b %Y}", "3", "6", "2"]
    await user.should_see("Worried that " + DRINK)  # the timeline says it in words too

    # The next visit opens with both pairs, to be scored again.
    await user.open(f"/child/{child.id}/visit")
    await user.should_see(marker="submit", retries=50)
    await user.should_see("Worry and safety goal 2")
    assert user.find(marker="goal-danger-0").elements.pop().value == DRINK  # type: ignore[attr-defined]
    assert user.find(marker="goal-goal-1").elements.pop().value == "Sam is in school every day."  # type: ignore[attr-defined]
    assert user.find(marker="goal-worker-0").elements.pop().value is None  # type: ignore[attr-defined]


async def test_a_bad_score_on_the_screen_is_refused_naming_the_worry(user: User, app_store: Store) -> None:
    child = cp_child_of_erin(app_store)
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child.id}/visit")
    await user.should_see(marker="submit", retries=50)
    choose(user, "seen_alone", "Yes")
    user.find(marker="observations").type("Fine.")
    user.find(marker="child_words").type("Hi.")
    user.find(marker="add-goal").click()
    await user.should_see("Worry and safety goal 1")
    user.find(marker="goal-danger-0").type(DRINK)
    user.find(marker="submit").click()
    await user.should_see("Worries and safety goals, row 1: write the safety goal (What needs to happen…) that goes "
                          "with the danger statement (Worried that…), or remove the row.", retries=50)
    with app_store.session() as session:  # nothing stored
        assert session.exec(select(Visit).where(Visit.child_id == child.id,
                                                Visit.created_at > datetime.now(UTC) - timedelta(hours=1))).first() \
            is None
