"""jupyter-scheduler's schedules (Unix cron, five fields) as EventBridge Scheduler's, and back.

Unix cron: ``minute hour day-of-month month day-of-week``, day-of-week 0-7 with 0 and 7 both
Sunday (or SUN-SAT), and when both day fields are restricted a day matches if EITHER does.
EventBridge Scheduler: ``cron(minute hour day-of-month month day-of-week year)``, day-of-week
1-7 with 1 Sunday (or SUN-SAT), and exactly one of the day fields must be ``?``: it cannot say
"the 1st or a Monday", so such a schedule is refused rather than changed.

Each field is expanded to the set of values it names and written back plainly (ranges, lists,
``start/step``), so no step or range syntax needs to mean the same thing in both dialects;
days of the week are written as names (``MON-FRI``), which both read the same way.
"""

from __future__ import annotations

import re

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]  # Unix numbering: SUN=0
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class CronUntranslatable(ValueError):
    """A five-field cron expression that EventBridge Scheduler cannot express (or not cron at all)."""


_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of the month", 1, 31), ("month", 1, 12), ("day of the week", 0, 7))


def _number(text: str, field: str, low: int, high: int, names: list[str] | None, expression: str) -> int:
    token = text.upper()
    if names and token in names:
        return names.index(token) + (1 if field == "month" else 0)
    if not token.isdigit():
        raise CronUntranslatable(f"{expression!r}: {text!r} is not a {field}")
    value = int(token)
    if not low <= value <= high:
        raise CronUntranslatable(f"{expression!r}: {field} {value} is outside {low}-{high}")
    return value


def _values(field_text: str, field: str, low: int, high: int, expression: str) -> set[int]:
    """Every value a Unix cron field names (``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, ``a/n``, lists)."""
    names = MONTHS if field == "month" else DAYS if field == "day of the week" else None
    values: set[int] = set()
    for item in field_text.split(","):
        if not item:
            raise CronUntranslatable(f"{expression!r}: an empty item in the {field}")
        part, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronUntranslatable(f"{expression!r}: {item!r}: a step is a positive number")
            step = int(step_text)
        top = high if field != "day of the week" else 6
        if part in ("*", "?"):
            first, last = low, top
        elif "-" in part:
            a, _, b = part.partition("-")
            first, last = (_number(a, field, low, high, names, expression), _number(b, field, low, high, names, expression))
        else:
            first = _number(part, field, low, high, names, expression)
            last = top if step_text else first
        # a range that runs past the end wraps round, as croniter reads it (22-2: 22, 23, 0, 1, 2)
        sequence = list(range(first, last + 1)) if first <= last else list(range(first, top + 1)) + list(range(low, last + 1))
        values.update(sequence[::step])
    if field == "day of the week" and 7 in values:  # 7 is Sunday too
        values.discard(7)
        values.add(0)
    return values


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _written(values: set[int], low: int, high: int, name=str, *, steps: bool = False) -> str:
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if steps and len(ordered) > 2 and ordered[0] == low:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(low, high + 1, step)):
            return f"{low}/{step}"
    return ",".join(name(a) if a == b else f"{name(a)}-{name(b)}" if b > a + 1 else f"{name(a)},{name(b)}"
                    for a, b in _runs(ordered))


def to_eventbridge(schedule: str) -> str:
    """``0 6 * * 1-5`` → ``cron(0 6 ? * MON-FRI *)``; CronUntranslatable says why not."""
    expression = " ".join(str(schedule or "").split())
    expression = MACROS.get(expression.lower(), expression)
    fields = expression.split(" ")
    if len(fields) != 5:
        raise CronUntranslatable(f"{schedule!r}: a schedule has five fields (minute hour day-of-month month "
                                 f"day-of-week), as cron writes them")
    minute, hour, dom, month, dow = fields
    written = []
    for text, (field, low, high) in zip((minute, hour, month), (_FIELDS[0], _FIELDS[1], _FIELDS[3]), strict=True):
        name = (lambda v: MONTHS[v - 1]) if field == "month" and any(c.isalpha() for c in text) else str
        written.append(_written(_values(text, field, low, high, expression), low, high, name,
                                steps=field in ("minute", "hour")))
    minute_out, hour_out, month_out = written

    dom_any = dom in ("*", "?")
    dow_any = dow in ("*", "?")
    if not dom_any and not dow_any:
        raise CronUntranslatable(
            f"{schedule!r} names days of the month ({dom}) and days of the week ({dow}): cron runs it on "
            "either, and EventBridge Scheduler cannot; make it two job definitions, one for each")
    if dom_any:
        dom_out = "?" if not dow_any else "*"
    elif dom.upper() == "L":
        dom_out = "L"
    else:
        dom_out = _written(_values(dom, "day of the month", 1, 31, expression), 1, 31)
    if dow_any:
        dow_out = "?"
    else:
        dow_out = _day_of_week(dow, expression)
    return f"cron({minute_out} {hour_out} {dom_out} {month_out} {dow_out} *)"


_NTH = re.compile(r"^([0-7]|[A-Za-z]{3})#([1-5])$")
_LAST = re.compile(r"^([0-7]|[A-Za-z]{3})L$", re.I)


def _day_of_week(dow: str, expression: str) -> str:
    """Unix 0-7 (SUN=0 and 7) → names; ``5#2`` (second Friday) → ``6#2`` and ``5L`` (last
    Friday) → ``6L`` in EventBridge's 1-7 numbering (SUN=1), which these forms need."""
    for pattern, suffix in ((_NTH, "#"), (_LAST, "L")):
        match = pattern.match(dow)
        if match:
            day = _number(match.group(1), "day of the week", 0, 7, DAYS, expression) % 7
            return f"{day + 1}{suffix}{match.group(2) if suffix == '#' else ''}"
    values = _values(dow, "day of the week", 0, 7, expression)
    return _written(values, 0, 6, lambda v: DAYS[v])


def to_cron(expression: str) -> str | None:
    """EventBridge's ``cron(m h dom mon dow *)`` as jupyter-scheduler's five fields, when it has
    them (every year, no ``W``/``LW``); None for ``rate(…)``, ``at(…)`` and what has no such form."""
    match = re.fullmatch(r"cron\((.*)\)", (expression or "").strip())
    if not match:
        return None
    fields = match.group(1).split()
    if len(fields) != 6 or fields[5] != "*" or "W" in fields[2].upper():
        return None
    minute, hour, dom, month, dow, _ = fields
    dom = "*" if dom == "?" else dom
    if dow == "?":
        dow = "*"
    else:
        out = []
        for item in dow.split(","):
            nth = re.fullmatch(r"([1-7])([#L].*)?", item)
            if nth:
                out.append(f"{int(nth.group(1)) - 1}{nth.group(2) or ''}")
                continue
            span = re.fullmatch(r"([1-7])-([1-7])", item)
            if span:
                out.append(f"{int(span.group(1)) - 1}-{int(span.group(2)) - 1}")
                continue
            if item.upper() in DAYS or re.fullmatch(r"[A-Za-z]{3}-[A-Za-z]{3}", item) or item == "*":
                out.append(item.upper())
                continue
            return None
        dow = ",".join(out)
    if "/" in dom or "/" in dow:
        return None
    return f"{minute} {hour} {dom} {month} {dow}"
