"""The child page's review and placement forms: what the statutory returns need, recorded where the work is done.

Each is drawn from its one definition (storage/forms/review.py, placement.py) and saved through one storage
function (storage/reviews.py, storage/placements.py) with its submission key (pwa/form_key.py). A field shows
only while the form asks it (a CP review's quorate, a placement's end). The returns' rules speak on save: a
problem the worker must put right is refused beside its field; one they can put right later asks them to tick
"save it anyway" first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui
from nicegui.elements.mixins.value_element import ValueElement

from pwa import state
from pwa.auth import current_worker
from pwa.error_summary import error_summary, show_problems
from pwa.form_fields import field_input, screen_fields
from pwa.form_key import FormKey
from pwa.threads import io_bound
from storage.child_forms import FormInvalid
from storage.child_view import ChildView
from storage.forms import Form
from storage.forms.placement import PLACEMENT
from storage.forms.review import CONFIRM_RETURNS, REVIEW
from storage.placements import PLACED, record_placement
from storage.reviews import record_review
from storage.store import NotAllowed
from storage.submissions import KEY_FIELD

Save = Callable[..., Any]


def returns_forms(view: ChildView) -> None:
    """The review form for every child; the placement form for a child in care or a care leaver."""
    record_form(view, REVIEW, record_review, "Record a review", "groups", "review", "Review saved")
    if view.category in PLACED:
        record_form(view, PLACEMENT, record_placement, "Start or end a placement", "home_work", "placement",
                    "Placement saved")


def record_form(view: ChildView, form: Form, save_with: Save, title: str, icon: str, prefix: str,
                saved: str) -> None:
    """One of the forms, folded until opened: its fields, the problem box, the confirmation when asked, Save."""
    with ui.expansion(title, icon=icon).classes("w-full border rounded").mark(f"{prefix}-form"):
        problems = error_summary()
        with ui.column().classes("w-full gap-2") as holder:
            key = FormKey(container=holder)
            inputs: dict[str, ValueElement] = {}
            wrappers: dict[str, ui.column] = {}
            for f in screen_fields(form):
                with ui.column().classes("w-full gap-1") as wrapper:
                    inputs[f.name] = field_input(f, f.default or None, born=view.date_of_birth,
                                                 mark=f"{prefix}-{f.name}")
                wrappers[f.name] = wrapper
            confirm = ui.checkbox(CONFIRM_RETURNS.label).mark(f"{prefix}-{CONFIRM_RETURNS.name}")
            confirm.visible = False

        def answers() -> dict[str, Any]:
            return {name: element.value or "" for name, element in inputs.items()}

        def show_asked() -> None:
            values = answers()
            for f in screen_fields(form):
                wrappers[f.name].visible = form.asked(f, values)

        def changed() -> None:
            key.changed()
            show_asked()

        for element in inputs.values():
            element.on_value_change(changed)
        show_asked()

        async def save() -> None:
            fields = {**answers(), KEY_FIELD: key.value, CONFIRM_RETURNS.name: "yes" if confirm.value else ""}
            try:
                await io_bound(save_with, state.store(), current_worker(), view.child_id, fields)
            except FormInvalid as e:
                confirm.visible = CONFIRM_RETURNS.name in e.problems or confirm.value
                show_problems(problems, e.problems, fields={**inputs, CONFIRM_RETURNS.name: confirm})
                return
            except NotAllowed as e:
                ui.notify(str(e), type="warning")
                return
            key.stored()
            ui.notify(saved, type="positive")
            ui.navigate.to(f"/child/{view.child_id}")

        ui.button(f"Save the {form.noun}", icon="save", on_click=save).classes("w-full h-12").mark(f"{prefix}-save")
