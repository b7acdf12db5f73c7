"""One definition per kind of form: each field's name, label, hint, kind, choices, when it is asked, when it
is required and what to say when it is missing, declared once (storage/forms/visit.py, wishes.py,
life_story.py, care_plan_action.py).

From a definition come the blank form (`Form.blank`), the checks every form shares (`Form.problems`: a
missing answer, a code not in the list, a date that has not happened, a row's number out of its bounds or
one of a pair of columns left blank), the sealed body's fields (`Form.body_values`, `Form.form_values`), the
NiceGUI page's fields (pwa/form_fields.py) and the offline page's form (`Form.offline`, served by
pwa/pwa_shell.py). A new field is one line here; the checks no definition can say (a visit's date and time
together, who gave the overall scale's scores) stay with the kind's own module.

A form travels as a plain dict of strings (rows: lists of dicts), the same shape from the screen, a draft
or the offline page. A yes/no answer is "yes", "no" or "" (True and False are read as yes and no).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any, Literal

from pydantic import BaseModel

from storage.record_dates import CONFIRM_FIELD
from storage.submissions import KEY_FIELD, new_key

# date, time, one line of text, several lines, a whole number, one of a list of codes, yes or no, a list of rows (each a
# dict of columns), a note shown when the field has a value (not typed), a value carried but not shown.
Kind = Literal["date", "time", "text", "longtext", "number", "choice", "yesno", "rows", "note", "hidden"]
# Where a checked answer is kept: the sealed body (mechanical: storage maps it), the record's own row
# (the kind's module maps it), or nowhere (what the form carries for the way there: a note, a key).
Kept = Literal["body", "row", "none"]
YES_NO = {"yes": "Yes", "no": "No"}


@dataclass(frozen=True)
class Column:
    """One column of a field whose answer is a list of rows (a safety score, an action arising)."""

    name: str
    label: str
    kind: Kind = "text"
    low: int | None = None  # a number's bounds
    high: int | None = None
    noun: str = ""  # the column in a sentence ("the parent's score"); the label if not given
    paired: str = ""  # another column that goes with this one: a row in use answers both (a worry and its goal)

    @property
    def words(self) -> str:
        return self.noun or self.label


@dataclass(frozen=True)
class Field:
    """One question of a form, as the worker sees it and as storage checks and keeps it."""

    name: str
    label: str
    kind: Kind = "text"
    hint: str = ""
    choices: Mapping[str, str] = field(default_factory=dict)  # code: words, in the order shown
    required: bool = False
    message: str = ""  # what to do when the answer is missing or not one of the choices
    # Asked only when each named field has the given answer ("seen": "yes"); otherwise ignored.
    asked_when: Mapping[str, str] = field(default_factory=dict)
    # Required only when each named field has the given answer (with `required`); asked either way.
    required_when: Mapping[str, str] = field(default_factory=dict)
    unless: str = ""  # another field whose answer stands in for this one ("or say why not")
    categories: tuple[str, ...] = ()  # asked only for a child in these categories ("cic"); () for all
    past: str = ""  # a date that has happened: the words for what happened ("direct work"), for the messages
    format_message: str = ""  # an answer that is not a date or time; `message` if not given
    section: str = ""  # the heading of the part of the form this field begins
    kept: Kept = "body"
    voice: bool = False  # the child's own words: shown in their own style on every screen
    default: Any = ""
    widget: str = ""  # how the screen shows a choice: "" inline radios, "column" radios, "select"
    only_when_asked: bool = False  # offered only once the server asks for it (confirming a date)
    columns: tuple[Column, ...] = ()  # rows: what each row holds
    row_word: str = ""  # rows: "a person's score" in "Add a person's score"
    row_field: str = ""  # rows: the data-field of each row on the screen


@dataclass
class Form:
    """A kind of form: its fields in the order they are asked, and the words the offline page uses."""

    kind: str
    title: str
    noun: str
    fields: list[Field]
    photos: dict[str, int] | None = None  # the offline page's photo limits, for a form that takes photos

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def names(self, *kinds: Kind) -> list[str]:
        return [f.name for f in self.fields if not kinds or f.kind in kinds]

    # ------------------------------------------------------------ the blank form

    def blank(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A new form: each kept field at its default (rows empty), then `values`, and a fresh submission key."""
        blank: dict[str, Any] = {f.name: [] if f.kind == "rows" else f.default
                                 for f in self.fields if f.kept != "none"}
        return {**blank, **(values or {}), KEY_FIELD: new_key()}

    # ------------------------------------------------------------ the checks

    def answer(self, fields: Mapping[str, Any], name: str) -> str:
        """A field's answer as text, trimmed: a yes/no field's as "yes", "no" or ""."""
        value = fields.get(name)
        if isinstance(value, bool):
            return "yes" if value else "no"
        text = value.strip() if isinstance(value, str) else ""
        if any(f.name == name and f.kind == "yesno" for f in self.fields):
            lowered = text.lower()
            return "yes" if lowered in ("yes", "true") else "no" if lowered in ("no", "false") else ""
        return text

    def asked(self, f: Field, fields: Mapping[str, Any], category: str | None = None) -> bool:
        """Whether the form asks this field, given the other answers (and the child's category, if known)."""
        if f.categories and category is not None and category not in f.categories:
            return False
        return all(self.answer(fields, name) == value and self.asked(self.field(name), fields, category)
                   for name, value in f.asked_when.items())

    def problems(self, fields: Mapping[str, Any], *, category: str | None = None,
                 today: date | None = None) -> dict[str, str]:
        """What to fix, field by field, in the order asked: each problem in the definition's own words."""
        problems: dict[str, str] = {}
        for f in self.fields:
            if f.kind == "rows" and self.asked(f, fields, category):
                problem = self.row_problem(f, fields.get(f.name))
                if problem:
                    problems[f.name] = problem
            if f.kind in ("rows", "note", "hidden") and not f.required or not self.asked(f, fields, category):
                continue
            text = self.answer(fields, f.name)
            required = f.required and all(self.answer(fields, n) == v for n, v in f.required_when.items())
            if not text:
                if required and not (f.unless and self.answer(fields, f.unless)):
                    problems[f.name] = f.message or (f"Enter the date of the {f.past}." if f.past else
                                                     f"Answer \"{f.label}\".")
                continue
            problem = self._wrong(f, text, today)
            if problem:
                problems[f.name] = problem
        return problems

    def rows(self, fields: Mapping[str, Any], name: str) -> list[dict[str, str]]:
        """A rows field's answer as a list of rows of trimmed text (0 stays "0"), rows left empty dropped."""
        f = self.field(name)
        value = fields.get(name)
        rows = [{c.name: cell(row, c.name) for c in f.columns} for row in value if isinstance(row, Mapping)] \
            if isinstance(value, list) else []
        return [row for row in rows if any(row[c.name] for c in f.columns if c.kind != "hidden")]

    def row_problem(self, f: Field, value: Any) -> str:
        """The first row that cannot be kept, in words naming the field and the row: a number out of its
        bounds or not whole, one of a pair of columns left blank in a row in use."""
        if value not in (None, "") and not (isinstance(value, list) and all(isinstance(r, Mapping) for r in value)):
            return f"{f.label}: the rows could not be read. Add them again."
        for n, row in enumerate(self.rows({f.name: value}, f.name), 1):
            for c in f.columns:
                text = row[c.name]
                if c.kind == "number" and text:
                    try:
                        number = float(text)
                    except ValueError:
                        number = 0.5  # not a number: as wrong as a fraction
                    if not number.is_integer() or (c.low is not None and number < c.low) \
                            or (c.high is not None and number > c.high):
                        bounds = f" from {c.low} to {c.high}" if c.low is not None and c.high is not None else ""
                        return f"{f.label}, row {n}: give the {c.words} as a whole number{bounds}, or leave it blank."
                if c.paired and not text:  # a row in use answers both of a pair (scores need what they score)
                    other = next(o for o in f.columns if o.name == c.paired)
                    missing = f"the {c.words} that goes with the {other.words}" if row[other.name] else \
                        f"the {c.words} and the {other.words}"
                    return f"{f.label}, row {n}: write {missing}, or remove the row."
        return ""

    def _wrong(self, f: Field, text: str, today: date | None) -> str:
        if f.kind in ("choice", "yesno") and text not in (f.choices or YES_NO):
            return f.message or f"Choose an answer to \"{f.label}\"."
        if f.kind == "time":
            try:
                time.fromisoformat(text)
            except ValueError:
                return f.format_message or f.message
        if f.kind == "date":
            try:
                day = date.fromisoformat(text)
            except ValueError:
                return f.format_message or (f"Enter the date of the {f.past} as a date, like {today:%Y-%m-%d}."
                                            if f.past and today else f.message)
            if f.past and today is not None and day > today:
                return f"The date is in the future. Enter the day the {f.past} happened."
        return ""

    # ------------------------------------------------------------ to and from the sealed body

    def body_values(self, fields: Mapping[str, Any], body: type[BaseModel],
                    category: str | None = None) -> dict[str, Any]:
        """The body's fields from the checked form: each answer kept in the body under its own name, or
        in the body's `answers` when the body has no field of that name (a field added to the form)."""
        values: dict[str, Any] = {}
        answers: dict[str, str] = {}
        for f in self.fields:
            if f.kept != "body" or f.kind == "rows":
                continue
            text = self.answer(fields, f.name) if self.asked(f, fields, category) else ""
            if f.name in body.model_fields:
                values[f.name] = text
            elif text:
                answers[f.name] = text
        if "answers" in body.model_fields:
            values["answers"] = answers
        return values

    def form_values(self, body: BaseModel) -> dict[str, Any]:
        """The form's answers kept in a sealed body, to prefill a correction."""
        answers: Mapping[str, str] = getattr(body, "answers", {}) or {}
        return {f.name: getattr(body, f.name, None) or answers.get(f.name, "")
                for f in self.fields if f.kept == "body" and f.kind != "rows"}

    # ------------------------------------------------------------ the offline page's form

    def offline(self) -> dict[str, Any]:
        """The form as the offline page builds it (pwa/static/seen-offline.js): the same names, labels,
        codes and rules as the screen."""
        described: dict[str, Any] = {"title": self.title, "noun": self.noun,
                                     "fields": [offline_field(f) for f in self.fields]}
        defaults = {f.name: f.default for f in self.fields if f.default}
        if defaults:
            described["defaults"] = defaults
        if self.photos:
            described["photos"] = dict(self.photos)
        return described


def cell(row: Mapping[str, Any], name: str) -> str:
    """One column of a row as trimmed text: nothing is "", a number 0 is "0"."""
    value = row.get(name)
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return str(value).strip()


OFFLINE_TYPES = {"longtext": "textarea", "choice": "select"}


def offline_field(f: Field) -> dict[str, Any]:
    described: dict[str, Any] = {"name": f.name, "label": f.label, "type": OFFLINE_TYPES.get(f.kind, f.kind)}
    optional = {"hint": f.hint, "section": f.section, "required": f.required and not f.required_when,
                "when": dict(f.asked_when), "only_when_asked": f.only_when_asked,
                "row_word": f.row_word, "row_field": f.row_field}
    described.update({k: v for k, v in optional.items() if v})
    if f.kind == "choice":
        described["options"] = [[code, words] for code, words in f.choices.items()]
    if f.columns:
        described["columns"] = [[c.name, c.label, c.kind, c.low, c.high] for c in f.columns]
        paired = {c.name: c.paired for c in f.columns if c.paired}
        if paired:
            described["paired"] = paired
    return described


# Asked only when the server asks (storage/record_dates.py): a date before the case opened is sent again with
# the same date entered here, which confirms it.
CONFIRM_DATE = Field(CONFIRM_FIELD, "If the date is right though it is before the case opened, enter it again here",
                     "date", kept="none", only_when_asked=True)
