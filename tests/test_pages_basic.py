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
