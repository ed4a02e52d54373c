"""EventBridge Scheduler's expressions and time zones: checked, and their next fire times.

Three kinds, as Scheduler takes them (``ScheduleExpression``):

- ``cron(minutes hours day-of-month month day-of-week year)``: six fields, one of the two
  day fields ``?``; day-of-week counts 1-7 from Sunday (SUN-SAT); ``L`` (the last day of the
  month, or ``6L`` the last Friday), ``LW`` (the last weekday), ``3#2`` (the second Tuesday).
  The grammar is checked with ``aws-cron-expression-validator`` (the EventBridge field table
  as regular expressions) and the fire times come from ``cronsim`` (Healthchecks.io's cron
  evaluator, no dependencies) on the first five fields, after a translation of the
  day-of-week numbers (cronsim counts 0-6 from Sunday, as Unix cron does); the year field,
  whose grammar the validator checked, is matched here. What cronsim cannot compute
  faithfully is refused with a message saying so: ``15W`` (the weekday nearest a day; ``LW``
  works), ``L-n`` in day-of-week. (croniter computes ``15W`` and years but not ``LW``, and
  jupyter-scheduler pins croniter 1.4, which has neither: cronsim keeps the two installable
  together.)
- ``rate(5 minutes)``, ``rate(1 hour)``, ``rate(1 day)``: a positive whole number and a unit
  (singular for 1, as Scheduler wants); fires every interval from the schedule's start.
- ``at(2026-12-24T06:00:00)``: once, in the schedule's time zone.

Time zones are IANA names checked with :mod:`zoneinfo` (the tzdata package where the
system has no database). Nothing here talks to AWS; the CLI, ``cdk synth`` (infra/config.py)
and the local stack's firing all use it, so they agree on what an expression means.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Kind = Literal["cron", "rate", "at"]

_WRAPPED = re.compile(r"^(?P<kind>cron|rate|at)\((?P<body>.*)\)$", re.DOTALL)
_RATE = re.compile(r"^(?P<value>[1-9][0-9]*) (?P<unit>minute|minutes|hour|hours|day|days)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_DOW_NAMES = {name: index + 1 for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
#: Scheduler's years.
_FIRST_YEAR, _LAST_YEAR = 1970, 2199


class ExpressionInvalid(ValueError):
    """An expression, a time zone or a start/end that Scheduler would refuse, or that we cannot
    compute faithfully; the message is one line a person can act on."""


def check_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``UTC``), else ExpressionInvalid."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ExpressionInvalid(f"{name!r} is not an IANA time zone like 'Europe/Paris'")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ExpressionInvalid(f"{name!r} is not an IANA time zone like 'Europe/Paris'") from exc


def cron(fields: str) -> str:
    """``0 6 * * ? *`` → ``cron(0 6 * * ? *)`` (already wrapped: as is)."""
    fields = " ".join(fields.split())
    return fields if fields.startswith("cron(") else f"cron({fields})"


def rate(text: str) -> str:
    """``5 minutes`` → ``rate(5 minutes)``."""
    text = " ".join(text.split())
    return text if text.startswith("rate(") else f"rate({text})"


def at(text: str) -> str:
    """``2026-12-24T06:00`` → ``at(2026-12-24T06:00:00)`` (seconds added, as Scheduler wants them)."""
    text = text.strip()
    if text.startswith("at(") and text.endswith(")"):
        text = text[3:-1]
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ExpressionInvalid(f"--at takes a date and time like 2026-12-24T06:00, got {text!r}") from exc
    if when.tzinfo is not None:
        raise ExpressionInvalid(f"--at {text!r}: give the time without an offset and the zone with --timezone")
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"


@dataclass(frozen=True)
class ScheduleExpression:
    """A checked expression in its time zone."""

    kind: Kind
    text: str  # as Scheduler takes it: cron(…), rate(…), at(…)
    timezone: str

    @property
    def body(self) -> str:
        return self.text[len(self.kind) + 1:-1]

    def next_fire_times(self, count: int = 3, *, after: datetime | None = None, start: datetime | None = None,
                        end: datetime | None = None, created: datetime | None = None) -> list[datetime]:
        """The next ``count`` times (aware, in the schedule's zone) strictly after ``after`` (now),
        within ``start``..``end``. A rate counts from ``start``, else from ``created``, else
        from ``after``."""
        zone = check_timezone(self.timezone)
        now = (after or datetime.now(UTC)).astimezone(zone)
        begin = max(now, start.astimezone(zone) - timedelta(microseconds=1)) if start else now
        times: list[datetime] = []
        if self.kind == "at":
            when = datetime.fromisoformat(self.body).replace(tzinfo=zone)
            times = [when] if when > begin else []
        elif self.kind == "rate":
            step = timedelta(seconds=_rate_seconds(self.body))
            anchor = (start or created or now).astimezone(zone)
            if anchor > begin:
                first = anchor
            else:
                first = anchor + step * ((begin - anchor) // step + 1)
            times = [first + step * i for i in range(count)]
        else:
            times = _cron_times(self.body, begin, count)
        if end is not None:
            times = [t for t in times if t <= end]
        return times[:count]


def parse(expression: str, timezone: str = "UTC") -> ScheduleExpression:
    """Check ``cron(…)``, ``rate(…)`` or ``at(…)`` in ``timezone``; raise ExpressionInvalid."""
    check_timezone(timezone)
    if not isinstance(expression, str):
        raise ExpressionInvalid(f"an expression is a string like 'cron(0 6 * * ? *)', got {expression!r}")
    match = _WRAPPED.match(expression.strip())
    if not match:
        raise ExpressionInvalid(f"{expression!r}: an expression is 'cron(…)', 'rate(…)' or 'at(…)'")
    kind, body = match.group("kind"), match.group("body").strip()
    if kind == "cron":
        body = " ".join(body.split())
        _check_cron(body)
    elif kind == "rate":
        _rate_seconds(body)
    else:
        body = at(body)[3:-1]
    return ScheduleExpression(kind=kind, text=f"{kind}({body})", timezone=timezone)  # type: ignore[arg-type]


def _rate_seconds(body: str) -> int:
    match = _RATE.match(" ".join(body.split()))
    if not match:
        raise ExpressionInvalid(f"rate({body}): a rate is a whole number and minute(s), hour(s) or day(s), "
                                "e.g. 'rate(5 minutes)', 'rate(1 day)'")
    value, unit = int(match.group("value")), match.group("unit")
    if (value == 1) != (not unit.endswith("s")):
        right = unit.rstrip("s") if value == 1 else unit.rstrip("s") + "s"
        raise ExpressionInvalid(f"rate({body}): Scheduler wants '{value} {right}' (singular only for 1)")
    return value * _UNIT_SECONDS[unit.rstrip("s")]


def _check_cron(body: str) -> None:
    from aws_cron_expression_validator.validator import AWSCronExpressionError, AWSCronExpressionValidator

    fields = body.split(" ")
    if len(fields) != 6:
        raise ExpressionInvalid(f"cron({body}): Scheduler's cron has six fields "
                                "(minutes hours day-of-month month day-of-week year), e.g. 'cron(0 6 * * ? *)'")
    try:
        AWSCronExpressionValidator.validate(body)
    except AWSCronExpressionError as exc:
        raise ExpressionInvalid(f"cron({body}): {exc}") from exc
    if fields[4].count("#") and "," in fields[4]:
        raise ExpressionInvalid(f"cron({body}): with '#' the day-of-week field holds one expression only")
    _cronsim_fields(body)  # refuses what cronsim cannot compute
    # A cron that never fires (31 February, a past year) is a mistake too.
    if not _cron_times(body, datetime.now(UTC), 1):
        raise ExpressionInvalid(f"cron({body}) never fires from now on")


def _cronsim_fields(body: str) -> str:
    """Scheduler's first five fields as cronsim takes them (``?`` → ``*``, day-of-week renumbered)."""
    minute, hour, dom, month, dow, _year = body.split(" ")
    if re.fullmatch(r"\d+W", dom.upper()):
        raise ExpressionInvalid(f"cron({body}): '{dom}' (the weekday nearest a day) cannot be computed here "
                                "(cronsim has only LW, the last weekday); use a day-of-week, or 'LW'")
    if re.search(r"L-", dow.upper()):
        raise ExpressionInvalid(f"cron({body}): 'L-n' in day-of-week is not supported")
    fields = " ".join((minute, hour, "*" if dom == "?" else dom, month, _unix_dow(dow, body)))
    from cronsim import CronSim, CronSimError

    try:
        CronSim(fields, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ExpressionInvalid(f"cron({body}): {exc}") from exc
    return fields


def _years(field: str) -> list[int]:
    """The years a (validated) year field names: ``*``, ``2027``, ``2027-2029``, ``*/2``, lists of them."""
    years: set[int] = set()
    for item in field.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = _FIRST_YEAR, _LAST_YEAR
        elif "-" in span:
            low, high = span.split("-", 1)
            first = _FIRST_YEAR if low == "*" else int(low)
            last = _LAST_YEAR if high == "*" else int(high)
        else:
            first = int(span)
            last = _LAST_YEAR if step else first
        years.update(range(first, last + 1, int(step) if step else 1))
    return sorted(years)


def _unix_dow(dow: str, body: str) -> str:
    """Day-of-week: Scheduler's 1-7 from Sunday → cronsim's 0-6 (``6L`` → ``5L``); ``L`` → Saturday."""
    if dow in ("?", "*"):
        return "*"
    text = re.sub(r"[A-Za-z]{3}", lambda m: str(_DOW_NAMES[m.group().upper()]) if m.group().upper() in _DOW_NAMES
                  else m.group(), dow)
    if text.upper() == "L":
        return "6"
    shifted = re.sub(r"(?<![#\d])([1-7])(?!\d)", lambda m: str(int(m.group(1)) - 1), text)
    if re.fullmatch(r"\dL", shifted, re.IGNORECASE):
        return shifted.upper()
    if "L" in shifted.upper():
        raise ExpressionInvalid(f"cron({body}): day-of-week {dow!r} is not supported")
    return shifted


def _cron_times(body: str, begin: datetime, count: int) -> list[datetime]:
    """Iterated in the zone's wall-clock time, then placed in the zone, as Scheduler does across
    daylight saving changes: a time that does not exist that day (spring) is skipped, a time that
    occurs twice (autumn) fires once, at its first occurrence. Years come from the sixth field."""
    from cronsim import CronSim

    zone = begin.tzinfo if begin.tzinfo is not None else UTC
    fields = _cronsim_fields(body)
    wall = begin.astimezone(zone).replace(tzinfo=None)
    times: list[datetime] = []
    for year in _years(body.split(" ")[5]):
        if year < wall.year or len(times) >= count:
            continue
        start = wall if year == wall.year else datetime(year, 1, 1) - timedelta(microseconds=1)
        for found in CronSim(fields, start):
            if found.year != year or len(times) >= count:
                break
            when = found.replace(tzinfo=zone)
            if when.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != found:
                continue  # skipped by the clock change
            if when > begin:
                times.append(when)
    return times
