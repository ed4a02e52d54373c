"""EventBridge Scheduler's expressions: what fires when (checked against calendars), and
what is refused with a message that says why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from studiorunner_cli.schedules.expressions import ExpressionInvalid, at, parse

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # a Wednesday


def _fires(expression: str, timezone: str = "UTC", count: int = 3) -> list[str]:
    return [t.strftime("%a %Y-%m-%d %H:%M %z") for t in parse(expression, timezone).next_fire_times(count, after=NOW)]


@pytest.mark.parametrize("expression, expected", [
    # Scheduler counts day-of-week 1-7 from Sunday: 2-6 is Monday to Friday.
    ("cron(0 6 ? * 2-6 *)", ["Thu 2026-07-02 06:00 +0000", "Fri 2026-07-03 06:00 +0000", "Mon 2026-07-06 06:00 +0000"]),
    ("cron(0 6 ? * MON-FRI *)", ["Thu 2026-07-02 06:00 +0000", "Fri 2026-07-03 06:00 +0000", "Mon 2026-07-06 06:00 +0000"]),
    ("cron(0 6 ? * 1 *)", ["Sun 2026-07-05 06:00 +0000", "Sun 2026-07-12 06:00 +0000", "Sun 2026-07-19 06:00 +0000"]),
    # 6L: the last Friday; 3#2: the second Tuesday; L alone in day-of-week: Saturday.
    ("cron(0 6 ? * 6L *)", ["Fri 2026-07-31 06:00 +0000", "Fri 2026-08-28 06:00 +0000", "Fri 2026-09-25 06:00 +0000"]),
    ("cron(0 6 ? * 3#2 *)", ["Tue 2026-07-14 06:00 +0000", "Tue 2026-08-11 06:00 +0000", "Tue 2026-09-08 06:00 +0000"]),
    ("cron(0 6 ? * L *)", ["Sat 2026-07-04 06:00 +0000", "Sat 2026-07-11 06:00 +0000", "Sat 2026-07-18 06:00 +0000"]),
    # L: the last day of the month; LW: its last weekday (31 October 2026 is a Saturday).
    ("cron(0 6 L * ? *)", ["Fri 2026-07-31 06:00 +0000", "Mon 2026-08-31 06:00 +0000", "Wed 2026-09-30 06:00 +0000"]),
    ("cron(0 6 LW 10 ? *)", ["Fri 2026-10-30 06:00 +0000", "Fri 2027-10-29 06:00 +0000", "Tue 2028-10-31 06:00 +0000"]),
    ("cron(0/20 12 * * ? *)", ["Wed 2026-07-01 12:20 +0000", "Wed 2026-07-01 12:40 +0000", "Thu 2026-07-02 12:00 +0000"]),
    ("cron(0 6 1 1 ? 2028-2029)", ["Sat 2028-01-01 06:00 +0000", "Mon 2029-01-01 06:00 +0000"]),
    ("cron(0 6 1 1 ? 2027/3)", ["Fri 2027-01-01 06:00 +0000", "Tue 2030-01-01 06:00 +0000", "Sat 2033-01-01 06:00 +0000"]),
    ("cron(0 6 1 1 ? 2026,2150)", ["Thu 2150-01-01 06:00 +0000"]),
    ("cron(0 6 29 2 ? *)", ["Tue 2028-02-29 06:00 +0000", "Sun 2032-02-29 06:00 +0000", "Fri 2036-02-29 06:00 +0000"]),
    ("rate(5 minutes)", ["Wed 2026-07-01 12:05 +0000", "Wed 2026-07-01 12:10 +0000", "Wed 2026-07-01 12:15 +0000"]),
    ("rate(1 day)", ["Thu 2026-07-02 12:00 +0000", "Fri 2026-07-03 12:00 +0000", "Sat 2026-07-04 12:00 +0000"]),
])
def test_next_fire_times(expression, expected):
    assert _fires(expression) == expected


def _paris(expression: str, after: datetime) -> list[str]:
    return [t.strftime("%d %H:%M %z") for t in parse(expression, "Europe/Paris").next_fire_times(3, after=after)]


def test_fire_times_are_in_the_schedules_time_zone_across_dst_changes_as_scheduler_does():
    # Summer time ends on 25 October 2026: 06:00 local every day, the offset changes...
    assert _paris("cron(0 6 * * ? *)", datetime(2026, 10, 23, 12, tzinfo=UTC)) == [
        "24 06:00 +0200", "25 06:00 +0100", "26 06:00 +0100"]
    # ...02:30 happens twice that night: Scheduler fires once, at the first.
    assert _paris("cron(30 2 * * ? *)", datetime(2026, 10, 23, 12, tzinfo=UTC)) == [
        "24 02:30 +0200", "25 02:30 +0200", "26 02:30 +0100"]
    # 02:30 does not exist on 29 March 2026: Scheduler skips that day.
    assert _paris("cron(30 2 * * ? *)", datetime(2026, 3, 27, 12, tzinfo=UTC)) == [
        "28 02:30 +0100", "30 02:30 +0200", "31 02:30 +0200"]


def test_at_fires_once_in_its_time_zone():
    assert _fires("at(2026-12-24T06:00:00)", "Europe/Paris") == ["Thu 2026-12-24 06:00 +0100"]
    assert at("2026-12-24T06:00") == "at(2026-12-24T06:00:00)"


def test_rate_counts_from_the_start():
    start = datetime(2026, 7, 1, 11, 58, tzinfo=UTC)
    fires = parse("rate(5 minutes)").next_fire_times(2, after=NOW, created=start)
    assert [t.strftime("%H:%M") for t in fires] == ["12:03", "12:08"]


@pytest.mark.parametrize("expression, timezone, message", [
    ("cron(0 6 * * * *)", "UTC", "question mark"),
    ("cron(0 6 ? * ? *)", "UTC", "question mark"),
    ("cron(0 6 * * ?)", "UTC", "six fields"),
    ("cron(0 25 * * ? *)", "UTC", "hour"),
    ("cron(0 6 ? * 3#1,6#3 *)", "UTC", "day-of-week"),
    ("cron(0 6 15W * ? *)", "UTC", "weekday nearest"),
    ("cron(0 6 * * ? 2020)", "UTC", "never fires"),
    ("cron(0 6 31 2 ? *)", "UTC", "day-of-month"),
    ("cron(0 6 H * ? *)", "UTC", "day-of-month"),
    ("rate(1 minutes)", "UTC", "1 minute"),
    ("rate(0 minutes)", "UTC", "whole number"),
    ("rate(5 weeks)", "UTC", "minute"),
    ("every day", "UTC", "'cron"),
    ("at(tomorrow)", "UTC", "date and time"),
    ("cron(0 6 * * ? *)", "Europe/Pariss", "IANA"),
    ("cron(0 6 * * ? *)", "../etc/passwd", "IANA"),
])
def test_refused(expression, timezone, message):
    with pytest.raises(ExpressionInvalid, match=message):
        parse(expression, timezone)
