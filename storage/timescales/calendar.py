"""England's calendar: its time zone, today's date there, working days (bank holidays skipped) and months.

"Today" in Seen is England's date, from `today_in_england`, everywhere. "+ N working days" is the Nth
working day after a date, skipping Saturdays, Sundays and England's bank holidays, substitute days included
(the `holidays` package, GB/ENG). "+ N months" is calendar; a month that lacks the day ends on its last day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")  # England's time zone: the one definition


def today_in_england() -> date:
    """Today's date in England (not the server's time zone's)."""
    return datetime.now(LONDON).date()


_TABLE_FIRST = date(2000, 1, 1)
_TABLE_LAST = date(2100, 12, 31)


class _WorkingDays:
    """England's working days 2000–2100 as a table, so adding N working days is two list lookups."""

    def __init__(self) -> None:
        self.holidays = holidays.country_holidays(
            "GB", subdiv="ENG", years=range(_TABLE_FIRST.year, _TABLE_LAST.year + 1)
        )
        self.base = _TABLE_FIRST.toordinal()
        self.size = _TABLE_LAST.toordinal() - self.base + 1
        # upto[i]: how many working days fall on or before day i; days[k]: the (k+1)th working day.
        self.upto: list[int] = []
        self.days: list[date] = []
        bank = self.holidays
        count = 0
        for i in range(self.size):
            d = date.fromordinal(self.base + i)
            if d.weekday() < 5 and d not in bank:
                count += 1
                self.days.append(d)
            self.upto.append(count)

    def is_working_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def add(self, d: date, n: int) -> date:
        i = d.toordinal() - self.base
        if 0 <= i < self.size:
            upto = self.upto[i]
            if n > 0:
                k = upto + n - 1
            elif n < 0:
                before = upto - 1 if (upto - (self.upto[i - 1] if i else 0)) else upto
                k = before + n
            else:
                return d
            if 0 <= k < len(self.days):
                return self.days[k]
        return self._add_slowly(d, n)

    def _add_slowly(self, d: date, n: int) -> date:
        # Outside the table (before 2000 or near 2100): step a day at a time. The holidays object
        # extends itself to any year it is asked about.
        step = timedelta(days=1 if n > 0 else -1)
        left = abs(n)
        while left:
            d += step
            if self.is_working_day(d):
                left -= 1
        return d


_calendar: _WorkingDays | None = None


def _working_days() -> _WorkingDays:
    global _calendar
    if _calendar is None:
        _calendar = _WorkingDays()
    return _calendar


def add_working_days(d: date, n: int) -> date:
    """The Nth working day after `d` (before it, for negative N), skipping weekends and England's bank holidays."""
    return (_calendar or _working_days()).add(d, n)


def is_working_day(d: date) -> bool:
    """Whether `d` is a working day in England: not a Saturday, Sunday or bank holiday."""
    return (_calendar or _working_days()).is_working_day(d)


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(d: date, n: int) -> date:
    """`d` plus N calendar months; a month that lacks the day ends on its last day (30 Nov + 3 = 28 Feb)."""
    y, m0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    last = _DAYS_IN_MONTH[m0]
    if m0 == 1 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        last = 29
    return date(y, m0 + 1, d.day if d.day <= last else last)


_MONTH_NAMES = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_shown: dict[date, str] = {}


def show_date(d: date) -> str:
    """A date as a manager reads it: 16 Nov 2026. Cached: a caseload repeats the same few hundred dates."""
    s = _shown.get(d)
    if s is None:
        s = _shown[d] = f"{d.day} {_MONTH_NAMES[d.month]} {d.year}"
    return s
