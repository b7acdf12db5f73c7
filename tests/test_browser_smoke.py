"""The app in a real browser at a phone's size: a worker signs in and sees their caseload."""

import pytest

from tests.browser_support import no_horizontal_scroll, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_a_worker_signs_in_on_a_phone_and_sees_their_caseload(page) -> None:
    sign_in(page, "ben")
    assert page.get_by_role("link", name="Log a visit").first.is_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "caseload-phone")
