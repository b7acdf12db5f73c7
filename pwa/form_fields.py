"""A form's fields on the screen, from its one definition (storage/forms/): each field's label, hint,
choices and bounds as the definition says, so the screen, the offline page and the checks agree.

Every input carries `data-field="<name>"` (the offline script, pwa/static/seen-page.js, reads the form
by it) and the marker of its name (tests find it by that); a field named by `dom_prefix` also gives its
native control the id `<prefix>-<name>`. A choice's or yes/no's radios are named by a label above them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from nicegui import ui
from nicegui.elements.mixins.value_element import ValueElement

from storage.forms import YES_NO, Field, Form
from storage.timescales.calendar import today_in_england


def date_limits(born: date | None) -> str:
    """A date picker's bounds: today in England at the latest, the child's date of birth at the earliest."""
    return f'max={today_in_england().isoformat()}' + (f' min={born.isoformat()}' if born else "")


def screen_fields(form: Form) -> list[Field]:
    """The fields a screen draws as they are: not notes, hidden values or lists of rows (the page says
    those its own way), nor a date to confirm (offered only when storage asks)."""
    return [f for f in form.fields if f.kind not in ("note", "hidden", "rows") and not f.only_when_asked]


def field_input(f: Field, value: Any = None, *, dom_prefix: str = "", born: date | None = None,
                mark: str = "") -> ValueElement:
    """The field's input, labelled and hinted as its definition says. A date that has happened offers no
    future day, and none before the child was born (`born`)."""
    marker = mark or f.name
    if f.kind in ("choice", "yesno"):
        options = dict(f.choices) if f.kind == "choice" else YES_NO
        picked = value if value in options else None
        if f.widget == "select":
            return ui.select(options, label=f.label, value=picked).props(
                f'outlined data-field="{f.name}"').classes("w-full").mark(marker)
        ui.label(f.label).classes("font-bold").props(f'id="label-{f.name}"')
        if f.hint:
            ui.label(f.hint).classes("text-sm")
        return ui.radio(options, value=picked).props(
            f'aria-labelledby="label-{f.name}" data-field="{f.name}" size="lg"'
            + ("" if f.widget == "column" else " inline")).classes("text-base").mark(marker)
    maker = ui.textarea if f.kind == "longtext" else ui.input
    element: ValueElement = maker(f.label, value=value or "").props(
        f'outlined stack-label data-field="{f.name}"' + (f' for="{dom_prefix}-{f.name}"' if dom_prefix else "")
        + (f" type={f.kind}" if f.kind in ("date", "time", "number") else "")
        + (" autogrow" if f.kind == "longtext" else "")).classes("w-full").mark(marker)
    if f.voice:
        element.classes("seen-child-words-input")
    if f.kind == "date" and f.past:
        element.props(date_limits(born))
    if f.hint:
        element.props["hint"] = f.hint  # set as a value: a hint's words are never parsed as props
    return element


def section(title: str) -> None:
    """The heading of a part of a form."""
    ui.label(title).classes("text-lg font-bold mt-3").props('role="heading" aria-level="2"')
