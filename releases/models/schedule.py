"""When a freeze window is in force: one-off (start, end), weekly (days and hours) or a cron
expression, each in a named time zone (``zoneinfo``). Pure functions of a window and an instant:
no queries here (``releases.governance.policy`` finds the windows that apply to a target).

Semantics, in the window's time zone:

- **one-off**: ``starts_at <= now < ends_at``.
- **weekly**: on each listed weekday (0 = Monday … 6 = Sunday) from ``start_time`` to
  ``end_time``; an end at or before the start runs into the next day (so Friday 18:00–08:00 ends
  Saturday 08:00, and 00:00–00:00 is the whole day).
- **cron**: a standard 5-field expression (minute hour day-of-month month day-of-week; ``*``,
  lists, ranges, steps, ``JAN``–``DEC``, ``SUN``–``SAT``, day-of-week 0 or 7 = Sunday; when both
  day fields are restricted either may match, as in Vixie cron). Without a ``duration`` the window
  is the set of matching minutes (``* 16-23 * * FRI`` = Friday from 16:00 to midnight); with one,
  each match opens a window that long (``0 16 * * FRI`` for 64 h = Friday 16:00 to Monday 08:00).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ONE_OFF, WEEKLY, CRON = "one_off", "weekly", "cron"
MAX_CRON_DURATION = timedelta(days=7)
# how far a cron window's start or end is searched (a window longer than this is reported as
# lasting at least this long)
HORIZON = timedelta(days=8)
MINUTE = timedelta(minutes=1)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class FreezeError(ValueError):
    """A window that cannot be evaluated (bad time zone, bad cron expression, missing field)."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FreezeError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)"
        ) from None


# --- cron -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    any_day: bool  # the day-of-month field is *
    any_weekday: bool  # the day-of-week field is *

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = (expression or "").split()
        if len(fields) != 5:
            raise FreezeError(
                f"a cron expression has 5 fields (minute hour day month weekday), got "
                f"{len(fields)} in {expression!r}"
            )
        minute, hour, day, month, weekday = fields
        weekdays = {d % 7 for d in _field(weekday, 0, 7, "day of week", WEEKDAYS)}
        return cls(
            minutes=frozenset(_field(minute, 0, 59, "minute")),
            hours=frozenset(_field(hour, 0, 23, "hour")),
            days=frozenset(_field(day, 1, 31, "day of month")),
            months=frozenset(_field(month, 1, 12, "month", MONTHS, first=1)),
            weekdays=frozenset(weekdays),
            any_day=day == "*",
            any_weekday=weekday == "*",
        )

    def day_matches(self, local: datetime) -> bool:
        if local.month not in self.months:
            return False
        dom = local.day in self.days
        dow = (local.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def matches(self, local: datetime) -> bool:
        return local.minute in self.minutes and local.hour in self.hours and self.day_matches(local)


def _value(text: str, names: tuple[str, ...], first: int, what: str) -> int:
    upper = text.upper()
    if names and upper in names:
        return names.index(upper) + first
    if not text.isdigit():
        raise FreezeError(f"{text!r} is not a valid {what}")
    return int(text)


def _field(text: str, low: int, high: int, what: str, names=(), first: int = 0) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise FreezeError(f"an empty list item in the {what} field")
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise FreezeError(f"the step in {part!r} ({what}) must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, end = _value(a, names, first, what), _value(b, names, first, what)
        else:
            start = _value(body, names, first, what)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise FreezeError(f"{part!r} is out of range for the {what} ({low}-{high})")
        values.update(range(start, end + 1, step))
    return values


# --- windows ----------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def interval_at(window, now: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of ``window`` that contains ``now`` as (start, end) in UTC, else None.
    ``window`` has the FreezeWindow fields (kind, starts_at, ends_at, weekdays, start_time,
    end_time, cron, duration, timezone)."""
    now = _utc(now)
    if window.kind == ONE_OFF:
        if window.starts_at is None or window.ends_at is None:
            raise FreezeError("a one-off window needs a start and an end")
        if window.starts_at <= now < window.ends_at:
            return _utc(window.starts_at), _utc(window.ends_at)
        return None
    tz = zone(window.timezone or "UTC")
    if window.kind == WEEKLY:
        return _weekly(window, now, tz)
    if window.kind == CRON:
        return _cron(window, now, tz)
    raise FreezeError(f"unknown kind of freeze window {window.kind!r}")


def _weekly(window, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    days = set(window.weekdays or [])
    if not days:
        raise FreezeError("a weekly window needs at least one weekday")
    start_time = window.start_time or time(0)
    end_time = window.end_time or time(0)
    local = now.astimezone(tz)
    for back in (0, 1):  # an occurrence that started today, or yesterday and runs past midnight
        day = local.date() - timedelta(days=back)
        if day.weekday() not in days:
            continue
        start = datetime.combine(day, start_time, tzinfo=tz)
        end_day = day if end_time > start_time else day + timedelta(days=1)
        end = datetime.combine(end_day, end_time, tzinfo=tz)
        if start <= now < end:
            return _utc(start), _utc(end)
    return None


def _cron(window, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    cron = Cron.parse(window.cron)
    minute = now.replace(second=0, microsecond=0)
    if window.duration:
        # the latest match in (now - duration, now] opens the occurrence containing now
        match = _search(cron, tz, minute, minute - window.duration + MINUTE, step=-1)
        if match is None:
            return None
        return match, match + window.duration
    if not cron.matches(minute.astimezone(tz)):
        return None
    start = minute
    while start - minute > -HORIZON and cron.matches((start - MINUTE).astimezone(tz)):
        start -= MINUTE
    end = _search(cron, tz, minute + MINUTE, minute + HORIZON, step=1, want=False)
    return start, end or minute + HORIZON


def _search(cron: Cron, tz, start: datetime, stop: datetime, *, step: int, want: bool = True):
    """The first minute from ``start`` towards ``stop`` (inclusive) whose match is ``want``,
    skipping whole days and hours that cannot match when looking for a match."""
    t = start
    while (t >= stop) if step < 0 else (t <= stop):
        local = t.astimezone(tz)
        if cron.matches(local) == want:
            return t
        nxt = t + step * MINUTE
        if want and not cron.day_matches(local):
            nxt = _jump(local, tz, step, whole_day=True)
        elif want and local.hour not in cron.hours:
            nxt = _jump(local, tz, step, whole_day=False)
        if (nxt >= t) if step < 0 else (nxt <= t):  # always make progress
            nxt = t + step * MINUTE
        t = nxt
    return None


def _jump(local: datetime, tz, step: int, *, whole_day: bool) -> datetime:
    """The first minute outside the current local day (or hour) in the direction of ``step``."""
    if whole_day:
        day: date = local.date() + (timedelta(days=1) if step > 0 else timedelta(0))
        edge = _utc(datetime.combine(day, time(0), tzinfo=tz))
    else:
        edge = _utc(local.replace(minute=0)) + (timedelta(hours=1) if step > 0 else timedelta(0))
    return edge if step > 0 else edge - MINUTE


def active_until(window, now: datetime) -> datetime | None:
    """When the freeze that ``window`` puts in force at ``now`` lifts (following occurrences that
    touch end to end, e.g. Saturday then Sunday), or None if it is not in force."""
    current = interval_at(window, now)
    if current is None:
        return None
    end = current[1]
    for _ in range(64):
        following = interval_at(window, end)
        if following is None or following[1] <= end:
            break
        end = following[1]
    return end


def validate(window) -> list[tuple[str, str]]:
    """Problems with a window's fields as (field, message); empty when it can be evaluated."""
    problems = []
    try:
        zone(window.timezone or "UTC")
    except FreezeError as exc:
        problems.append(("timezone", str(exc)))
    if window.kind == ONE_OFF:
        if window.starts_at is None:
            problems.append(("starts_at", "a one-off window needs a start"))
        if window.ends_at is None:
            problems.append(("ends_at", "a one-off window needs an end"))
        if window.starts_at and window.ends_at and window.ends_at <= window.starts_at:
            problems.append(("ends_at", "must be after the start"))
    elif window.kind == WEEKLY:
        days = window.weekdays
        if not days or not isinstance(days, list):
            problems.append(("weekdays", "list at least one weekday (0 = Monday … 6 = Sunday)"))
        elif any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in days):
            problems.append(("weekdays", "weekdays are numbers from 0 (Monday) to 6 (Sunday)"))
    elif window.kind == CRON:
        try:
            Cron.parse(window.cron)
        except FreezeError as exc:
            problems.append(("cron", str(exc)))
        if window.duration is not None and not (
            timedelta(0) < window.duration <= MAX_CRON_DURATION
        ):
            problems.append(("duration", "must be more than 0 and at most 7 days"))
    else:
        problems.append(("kind", f"must be one of {ONE_OFF}, {WEEKLY}, {CRON}"))
    return problems


def describe(window) -> str:
    """When the window applies, in words (for messages and pages)."""
    tz = window.timezone or "UTC"
    if window.kind == ONE_OFF:
        try:
            z = zone(tz)
        except FreezeError:
            z = UTC
        fmt = "%Y-%m-%d %H:%M"
        start = window.starts_at.astimezone(z).strftime(fmt) if window.starts_at else "?"
        end = window.ends_at.astimezone(z).strftime(fmt) if window.ends_at else "?"
        return f"from {start} to {end} ({tz})"
    if window.kind == WEEKLY:
        days = ", ".join(DAY_NAMES[d] for d in sorted(window.weekdays or []) if 0 <= d <= 6)
        start = (window.start_time or time(0)).strftime("%H:%M")
        end = (window.end_time or time(0)).strftime("%H:%M")
        hours = "all day" if start == end == "00:00" else f"{start}–{end}"
        return f"every {days} {hours} ({tz})"
    if window.kind == CRON:
        length = f" for {_duration(window.duration)}" if window.duration else ""
        return f"cron '{window.cron}'{length} ({tz})"
    return window.kind


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return " ".join(p for p in parts if p) or "0m"


def local_time(value: datetime, tz: str) -> str:
    """``value`` as ``2025-06-06 18:00 CEST`` in the window's time zone."""
    try:
        z = zone(tz or "UTC")
    except FreezeError:
        z = UTC
    return value.astimezone(z).strftime("%Y-%m-%d %H:%M %Z")
