"""The sync status card on a page: what it says, and its "Sync now" button."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User

from pwa.layout import frame
from pwa.sync.status import sync_status_card
from tests.conftest import sign_in


async def test_sync_status_card_says_how_sync_stands_and_syncs_on_demand(user: User):
    @ui.page("/sync-card")
    def page() -> None:
        with frame("Sync"):
            sync_status_card()

    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open("/sync-card")
    await user.should_see("Never synced", retries=50)
    await user.should_see("0 changes waiting to sync")
    await user.should_see("0 conflicts")
    user.find("Sync now").click()
    await user.should_see("not enrolled", retries=50)
