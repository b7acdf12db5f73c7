"""The team dashboard in a real browser, as a manager sees it on a phone (360x740) and at a desk (1280x800)."""

from __future__ import annotations

import pytest

from tests.browser_support import (
    LiveServer,
    axe_problems,
    check_screen,
    no_horizontal_scroll,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 800}


def open_dashboard(page) -> None:
    sign_in(page, "amara")
    page.goto("/team")
    page.get_by_role("heading", name="Visits in and out of timescale, by month").wait_for()
    page.locator(".nicegui-echart canvas").first.wait_for()
    page.get_by_role("heading", name="Overdue (").wait_for()
    # The chart and any notification fade in: wait until nothing is moving before the picture.
    page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")


def test_the_team_dashboard_on_a_phone_and_a_desktop(page, browser, live_server: LiveServer) -> None:
    open_dashboard(page)
    counts = page.locator("[data-count]")
    assert counts.count() == 5
    assert page.locator("[data-count=overdue]").inner_text().split()[0].isdigit()
    assert page.locator("[data-child]").count() == 18  # every child in the Children in Care Team: 16 in care, 2 care leavers
    assert no_horizontal_scroll(page), "the dashboard scrolls sideways at 360 px"
    assert not axe_problems(page)
    screenshot(page, "team-dashboard-phone")

    # The worker filter narrows the list and the chart to one worker's children.
    page.get_by_label("Worker").click()
    page.get_by_role("option", name="Ben Castle").click()
    # Ben's children in the team: eight in care and a care leaver.
    page.wait_for_function("document.querySelectorAll('[data-child]').length === 9")
    assert "Chloe Dunmore ·" not in page.locator("main").inner_text()

    # Moving a child to another worker asks first, in a dialog named by its question.
    page.get_by_role("button", name="Move to another worker").first.click()
    page.get_by_role("dialog", name="to another worker").wait_for()
    check_screen(page, "team-move-dialog-phone", within=".q-dialog")
    page.get_by_role("button", name="Cancel").click()

    desk = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    try:
        wide = desk.new_page()
        open_dashboard(wide)
        box = wide.locator(".nicegui-echart").first.bounding_box()
        assert box and box["width"] > 600  # at a desk the chart has room to breathe
        assert no_horizontal_scroll(wide)
        screenshot(wide, "team-dashboard-desktop")
    finally:
        desk.close()
