"""The submission key of the form on a page (storage/submissions.py), and where the page shows it.

The key is made when the form is opened (or kept from its restored draft) and sent with every submission of
the form, so storage holds the form once however often it is sent. The element holding the form's inputs
carries it as `data-submission-key`: the phone's offline copy of the form (pwa/static/seen-page.js) uses it as
its draft's idempotency key, so a form begun online and finished offline is held once too.

After a successful submission the form is emptied but keeps its key until the worker starts writing again:
a second tap of the button (or one that arrives late) answers with the record the first one made, rather
than saying the emptied form needs fixing. The first change after that begins a new form, with a new key.
"""

from __future__ import annotations

from nicegui import ui

from storage.submissions import new_key


class FormKey:
    """One form's key, shown on the element being built into when it is made (the form's container)."""

    def __init__(self, key: str | None = None, container: ui.element | None = None) -> None:
        self.value = key or new_key()
        self.sent = False
        self.container = container if container is not None else ui.context.slot.parent
        self._show()

    def _show(self) -> None:
        self.container.props(f'data-submission-key="{self.value}"')

    def stored(self) -> None:
        """The form was stored: until the worker changes it, sending it again answers with that record."""
        self.sent = True

    def changed(self) -> None:
        """The worker changed the form: after a submission, that begins a new one."""
        if self.sent:
            self.renew()

    def renew(self) -> None:
        """A new form (a new entry, a correction begun): a new key."""
        self.value = new_key()
        self.sent = False
        self._show()
