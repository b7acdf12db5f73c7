"""The sign-in guard and the caseload, as a worker meets them."""

from nicegui.testing.user import User

from tests.conftest import sign_in


async def test_a_worker_not_signed_in_is_sent_to_sign_in(user: User) -> None:
    await user.open("/")
    await user.should_see("Sign in to see your caseload")


async def test_a_wrong_password_is_refused_with_a_clear_message(user: User) -> None:
    await sign_in(user, "ben", "not-the-password", wait=False)
    await user.should_see("That username and password do not match", retries=100)


async def test_a_worker_sees_their_caseload_worst_first(user: User) -> None:
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.should_see("Log a visit")
    await user.should_not_see("Sign in to see your caseload")


async def test_a_case_closed_recently_is_listed_under_the_caseload_to_finish_recording(user, app_store, monkeypatch):
    from datetime import date, timedelta

    from sqlmodel import select

    from storage import caseload
    from storage.models import Child, Worker

    today = date(2026, 11, 23)
    monkeypatch.setattr(caseload, "today_in_england", lambda: today)
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        child = session.exec(select(Child).where(Child.worker_id == ben.id).order_by(Child.id)).first()
        child.closed_on = today - timedelta(days=3)
        session.add(child)
        name = app_store.opened(child).body.name
    await sign_in(user, "ben")
    await user.should_see("Closed recently", retries=50)
    await user.should_see(name)  # only here: a closed case is not on the caseload itself
    await user.should_see(f"(closed {today - timedelta(days=3):%d %b %Y})")
