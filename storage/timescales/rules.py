"""The rule file: each clock's periods and citations (storage/rules.toml, with an authority's file over it)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from storage.timescales.calendar import add_months, add_working_days
from storage.timescales.facts import ARRANGEMENTS

DEFAULT_RULES_PATH = Path(__file__).parent.with_name("rules.toml")


class RuleError(ValueError):
    """A rule file that cannot be used (bad TOML, an unknown key, a period that is not a period)."""


_PERIOD = re.compile(r"^\s*(\d+)\s+(working days?|days?|weeks?|months?)\s*$")


def memo(fn: Callable[[date], date]) -> Callable[[date], date]:
    """`fn` remembered per date: a caseload's clocks count from the same few hundred dates over and over."""
    known: dict[date, date] = {}
    get = known.get

    def after(d: date) -> date:
        due = get(d)
        if due is None:
            due = known[d] = fn(d)
        return due

    return after


class Period:
    """A length of time from a rule file: "6 weeks", "3 months", "20 working days"."""

    __slots__ = ("n", "unit", "text", "after")

    def __init__(self, text: str) -> None:
        match = _PERIOD.match(text) if isinstance(text, str) else None
        if match is None:
            raise RuleError(
                f"{text!r} is not a period: write a number and a unit, e.g. '6 weeks', '3 months', "
                "'10 working days'"
            )
        n, word = int(match[1]), match[2]
        unit = word.removesuffix("s")
        self.n = n
        self.unit = unit
        self.text = f"{n} {unit}" + ("" if n == 1 else "s")
        self.after: Callable[[date], date]
        if unit == "working day":
            self.after = memo(lambda d: add_working_days(d, n))
        elif unit == "month":
            self.after = memo(lambda d: add_months(d, n))
        else:
            delta = timedelta(days=n * 7 if unit == "week" else n)
            self.after = lambda d: d + delta

    def __repr__(self) -> str:
        return f"Period({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Period) and (self.n, self.unit) == (other.n, other.unit)

    def __hash__(self) -> int:
        return hash((self.n, self.unit))


@dataclass(frozen=True, slots=True)
class Rule:
    """One arm of a clock: how long after its starting date it falls due, and who says so."""

    period: Period
    source: str


@dataclass(frozen=True, slots=True)
class WeeklyThenRule:
    """A reg 28(3)/(4) arrangement: visits weekly until the first review, then at a fixed interval."""

    until_first_review: Period
    then: Period
    source: str


_SIMPLE_CLOCKS = (
    "initial_conference",
    "cp_visit",
    "cin_visit",
    "cin_review",
    "case_managed_review",
    "assessment",
    "pathway_plan_review",
    "initial_health_assessment",
    "return_home_interview",
)
_ARMED_CLOCKS = {
    "cic_visit": (
        "placement_start",
        "first_year",
        "long_term",
        "after_first_year",
        "child_agreed_less_frequent",
    ),
    "cic_review": ("first", "second", "subsequent"),
    "cp_review": ("first", "subsequent"),
    "pa_visit": ("interval", "after_move"),
    "review_health_assessment": ("under_five", "five_and_over"),
}


class RuleSet:
    """The rules in force: every clock's periods and sources, plus the due-soon and late write-up windows."""

    def __init__(self, data: Mapping[str, Any], origin: str = "rules") -> None:
        self.origin = origin
        self.data = data
        try:
            settings = data["settings"]
            self.due_soon = Period(settings["due_soon"])
            self.late_write_up = Period(settings["late_write_up"])
            self.late_write_up_source = str(settings.get("late_write_up_source", ""))
            self.simple: dict[str, Rule] = {name: self._rule(data[name]) for name in _SIMPLE_CLOCKS}
            self.arms: dict[str, dict[str, Rule]] = {
                clock: {arm: self._rule(data[clock][arm]) for arm in arms}
                for clock, arms in _ARMED_CLOCKS.items()
            }
            self.arrangements: dict[str, WeeklyThenRule] = {
                name: WeeklyThenRule(
                    Period(data["cic_visit"][name]["until_first_review"]),
                    Period(data["cic_visit"][name]["then"]),
                    str(data["cic_visit"][name]["source"]),
                )
                for name in ARRANGEMENTS
                if name not in ("standard", "care_order_with_parent")
            }
            self.plan_visit_source = str(data["plan_visit"]["source"])
            order = data["cic_visit"]["care_order_with_parent"]
            self.care_order_with_parent = (Rule(Period(order["first"]), str(order["source"])),
                                           Rule(Period(order["then"]), str(order["source"])))
        except KeyError as missing:
            raise RuleError(f"{origin}: the rule set has no {missing}") from None
        except RuleError as bad:
            raise RuleError(f"{origin}: {bad}") from None

    @staticmethod
    def _rule(table: Mapping[str, Any]) -> Rule:
        return Rule(Period(table["period"]), str(table["source"]))

    def __repr__(self) -> str:
        return f"RuleSet({self.origin!r})"


_plan_periods: dict[str, Period] = {}


def plan_period(text: str) -> Period:
    """A plan's visit period ("5 working days"), parsed once per wording: many children share a few."""
    period = _plan_periods.get(text)
    if period is None:
        period = _plan_periods[text] = Period(text)
    return period


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str, origin: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        name = f"{where}.{key}" if where else key
        if key not in base:
            raise RuleError(f"{origin}: unknown rule '{name}' (the defaults in rules.toml have no such key)")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise RuleError(f"{origin}: '{name}' should be a table")
            merged[key] = _merge(base[key], value, name, origin)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise RuleError(f"cannot read the rule file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"the rule file {path} is not valid TOML: {e}") from None


_loaded: dict[tuple[str, int], RuleSet] = {}


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rule set: storage/rules.toml, with an authority's file merged over it.

    The authority's file is `path` or, when that is None, the file `SEEN_RULES` names (if set).
    Merging is table by table, key by key: the file need only hold what it changes, and a key the
    defaults lack is an error. Results are cached per file and modification time.
    """
    if path is None:
        path = os.environ.get("SEEN_RULES") or None
    override = Path(path) if path is not None else None
    key = (str(override), override.stat().st_mtime_ns if override is not None and override.exists() else 0)
    rules = _loaded.get(key)
    if rules is None:
        data = _read_toml(DEFAULT_RULES_PATH)
        origin = str(DEFAULT_RULES_PATH)
        if override is not None and override.resolve() != DEFAULT_RULES_PATH.resolve():
            data = _merge(data, _read_toml(override), "", str(override))
            origin = str(override)
        rules = _loaded[key] = RuleSet(data, origin)
    return rules
