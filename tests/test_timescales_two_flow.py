"""The new clocks reach the caseload, the child's page, the team dashboard and the push alerts with no code of
their own; the child's page records a missing episode and its return home interview.

The demo caseload (made for DEMO_DAY) holds a care leaver who moved five days ago, a child missing now, a child
back from being missing two days ago with no interview yet, and a child whose plan says "5 working days".
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from nicegui.testing.user import User
from sqlmodel import select

from storage import notify
from storage.caseload import caseload
from storage.child_view import child_view
from storage.models import AuditEvent, Child, MissingEpisode, Worker
from storage.oversight import team_dashboard
from storage.store import Store
from storage.timescales.calendar import LONDON, today_in_england
from tests.conftest import DEMO_DAY, sign_in


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def the_children(store: Store) -> dict[str, str]:
    """The demo's care leaver (Ben's), missing child, returned child and child with a weekly plan, by role."""
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        leaver = session.exec(select(Child).where(Child.category == "care_leaver", Child.worker_id == ben.id)).one()
        episodes = list(session.exec(select(MissingEpisode)))
        missing = next(e.child_id for e in episodes if e.end is None)
        returned = next(e.child_id for e in episodes if e.end is not None and e.interview_held_on is None)
        planned = session.exec(select(Child).where(Child.plan_visit_every == "5 working days")).one()
    return {"leaver": leaver.id, "missing": missing, "returned": returned, "planned": planned.id}


def test_new_clocks_show_on_caseload_child_page_dashboard_and_alerts(demo_store: Store) -> None:
    kids = the_children(demo_store)
    wanted = {(kids["leaver"], "pa_visit"), (kids["leaver"], "pathway_plan_review"),
              (kids["returned"], "return_home_interview"), (kids["planned"], "cin_visit")}

    rows = {r.child_id: r for who in ("ben", "chloe", "erin", "femi")
            for r in caseload(demo_store, worker(demo_store, who), on=DEMO_DAY)}
    assert wanted <= {(r.child_id, c.clock) for r in rows.values() for c in r.clocks}
    assert rows[kids["missing"]].missing and not rows[kids["returned"]].missing
    plan_clock = next(c for c in rows[kids["planned"]].clocks if c.clock == "cin_visit")
    assert "5 working days" in plan_clock.rule and plan_clock.source.startswith("the child's plan")

    for child_id, clock in wanted:
        owner = next(w for w in ("ben", "chloe", "erin", "femi")
                     if rows[child_id].worker_id == worker(demo_store, w).id)
        view = child_view(demo_store, worker(demo_store, owner), child_id, on=DEMO_DAY)
        assert clock in {c.clock for c in view.clocks}
    assert child_view(demo_store, worker(demo_store, "ben"), kids["missing"], on=DEMO_DAY).missing

    dashboard_rows = {r.child_id: r for manager in ("amara", "dev")
                      for r in team_dashboard(demo_store, worker(demo_store, manager), on=DEMO_DAY).rows}
    assert wanted <= {(r.child_id, c.clock) for r in dashboard_rows.values() for c in r.clocks}
    assert dashboard_rows[kids["missing"]].missing

    decided = notify.plan(demo_store, datetime.combine(DEMO_DAY, time(9, 0), LONDON))
    alerted = {(a.child_id, a.clock): a for a in decided.alerts if a.audience == "worker"}
    # pa_visit due Fri 27 Nov (moved Wed 18 Nov + 7 days): within 3 working days of Mon 23 Nov; the
    # interview due Tue 24 Nov; the weekly plan's visit overdue. The pathway plan review is months away.
    for key in wanted - {(kids["leaver"], "pathway_plan_review")}:
        assert key in alerted, key
    assert alerted[(kids["leaver"], "pa_visit")].title.startswith("Visit due")
    assert alerted[(kids["returned"], "return_home_interview")].title.startswith("Return interview due")


async def test_the_missing_episode_form_records_a_return_and_starts_the_interview_clock(
        user: User, app_store: Store) -> None:
    kids = the_children(app_store)
    today = today_in_england()
    await sign_in(user, "ben")
    await user.open(f"/child/{kids['missing']}")
    await user.should_see(marker="missing-now")

    await user.open(f"/child/{kids['leaver']}")
    await user.should_see("Missing episodes")
    await user.should_not_see(marker="missing-now")
    # Out of order: refused, said why, nothing saved, and the refusal is in the audit trail.
    user.find(marker="missing-start").type((today - timedelta(days=1)).isoformat())
    user.find(marker="missing-end").type((today - timedelta(days=3)).isoformat())
    user.find(marker="missing-save").click()
    await user.should_see("cannot end before it starts", retries=100)
    with app_store.session() as session:
        assert not list(session.exec(select(MissingEpisode).where(MissingEpisode.child_id == kids["leaver"])))
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                     AuditEvent.kind == "missing_episode")).first() is not None

    user.find(marker="missing-start").clear()
    user.find(marker="missing-end").clear()
    user.find(marker="missing-start").type((today - timedelta(days=3)).isoformat())
    user.find(marker="missing-end").type((today - timedelta(days=1)).isoformat())
    user.find(marker="missing-said").type("I stayed at a friend's")
    user.find(marker="missing-save").click()
    await user.should_see("Return home interview", retries=100)
    with app_store.session() as session:
        episode = session.exec(select(MissingEpisode).where(MissingEpisode.child_id == kids["leaver"])).one()
        assert (episode.start, episode.end) == (today - timedelta(days=3), today - timedelta(days=1))
        assert b"friend" not in episode.sealed  # what the child said is sealed
        assert app_store.opened(episode).body.child_said == "I stayed at a friend's"
