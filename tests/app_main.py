"""The app as the NiceGUI User fixture runs it: built on the store the test's fixtures prepared."""

from nicegui import ui

from pwa.app import build
from tests.support import current_test_store

build(current_test_store())
ui.run(storage_secret="test secret", reconnect_timeout=90.0)
