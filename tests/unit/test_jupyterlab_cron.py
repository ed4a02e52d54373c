"""jupyter-scheduler's five-field cron (+ time zone) as EventBridge Scheduler's six fields:
the same fire times, checked with the schedules' own parser (aws-cron-expression-validator,
then their next fire times) against cronsim reading the Unix expression (cronsim is what the
package installs; croniter, which jupyter-scheduler pins to 1.4, rejects ranges that wrap
round, so those are given to the oracle spelled out)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from studiorunner_cli.schedules.expressions import parse
from studiorunner_jupyterlab.cron import CronUntranslatable, to_cron, to_eventbridge


@pytest.mark.parametrize(("unix", "eventbridge"), [
    ("0 6 * * *", "cron(0 6 * * ? *)"),                 # every day: day-of-week is the '?'
    ("0 6 * * 1-5", "cron(0 6 ? * MON-FRI *)"),         # Unix 1-5 is Monday-Friday (EventBridge's 2-6)
    ("0 0 * * 0", "cron(0 0 ? * SUN *)"),               # Unix 0 is Sunday (EventBridge's 1)
    ("0 0 * * 7", "cron(0 0 ? * SUN *)"),               # and so is Unix 7
    ("0 0 * * 6,0", "cron(0 0 ? * SUN,SAT *)"),
    ("15 10 * * sat-sun", "cron(15 10 ? * SUN,SAT *)"),    # a range past Saturday wraps round, as croniter 7 reads it
    ("30 9 1 * *", "cron(30 9 1 * ? *)"),               # a day of the month: day-of-week is the '?'
    ("0 12 1,15 */3 *", "cron(0 12 1,15 1,4,7,10 ? *)"),
    ("*/15 * * * *", "cron(0/15 * * * ? *)"),
    ("5 */6 * * *", "cron(5 0/6 * * ? *)"),
    ("0 6 * * 5#2", "cron(0 6 ? * 6#2 *)"),             # second Friday: '#' takes EventBridge's number
    ("0 6 * * 5L", "cron(0 6 ? * 6L *)"),               # last Friday
    ("0 6 L * *", "cron(0 6 L * ? *)"),
    ("0 8 * JAN,JUL MON", "cron(0 8 ? JAN,JUL MON *)"),
    ("@hourly", "cron(0 * * * ? *)"),
])
def test_each_schedule_has_its_eventbridge_expression(unix: str, eventbridge: str) -> None:
    assert to_eventbridge(unix) == eventbridge
    parse(eventbridge, "UTC")  # and EventBridge's syntax takes it (aws-cron-expression-validator)


FIRE_TIME_CASES = ["0 22-2 * * 5-1/2", "50-10/5 * * 11-2 *", "0 6 * * *", "0 6 * * 1-5", "0 0 * * 0", "0 0 * * 7", "45 23 * * 6,0", "*/20 8-10 * * 1",
                   "0 12 1,15 * *", "0 9 * 2 *", "0 2 * * 2-4", "10 */5 * * *", "0 6 * * 5#2", "30 1 L * *",
                   "0 3 * * sun", "0 0 29 2 *"]


#: Ranges that wrap round, as cron readers that take them read them (22-2: 22, 23, 0, 1, 2), spelled
#: out for the oracle, which (like croniter 1.4, jupyter-scheduler's) refuses them.
SPELLED_OUT = {"0 22-2 * * 5-1/2": "0 22,23,0,1,2 * * 5,0", "50-10/5 * * 11-2 *": "50,55,0,5,10 * * 11,12,1,2 *"}


def _cron_times(unix: str, start: datetime, count: int) -> list[datetime]:
    times = CronSim(SPELLED_OUT.get(unix, unix), start)
    return [next(times) for _ in range(count)]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York"])
@pytest.mark.parametrize("unix", FIRE_TIME_CASES)
def test_the_eventbridge_expression_fires_when_cron_would(unix: str, zone: str) -> None:
    # across the spring and autumn clock changes of both zones
    start = datetime(2027, 3, 1, tzinfo=ZoneInfo(zone))
    count = 12 if unix != "0 0 29 2 *" else 2
    expected = _cron_times(unix, start, count)
    got = parse(to_eventbridge(unix), zone).next_fire_times(count, after=start)
    assert [t.isoformat() for t in got] == [t.isoformat() for t in expected]


def test_last_friday_fires_on_the_last_friday() -> None:
    got = parse(to_eventbridge("0 6 * * 5L"), "UTC").next_fire_times(3, after=datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC")))
    assert [t.date().isoformat() for t in got] == ["2027-01-29", "2027-02-26", "2027-03-26"]


@pytest.mark.parametrize(("unix", "said"), [
    ("0 6 1 * 1", "names days of the month (1) and days of the week (1): cron runs it on either"),
    ("0 6 * * * 2027", "a schedule has five fields"),
    ("0 25 * * *", "hour 25 is outside 0-23"),
    ("0 6 * * 8", "day of the week 8 is outside 0-7"),
    ("every day", "a schedule has five fields"),
    ("x 6 * * *", "'x' is not a minute"),
])
def test_what_eventbridge_cannot_say_is_refused_with_why(unix: str, said: str) -> None:
    with pytest.raises(CronUntranslatable, match=None) as raised:
        to_eventbridge(unix)
    assert said in str(raised.value)


@pytest.mark.parametrize("unix", FIRE_TIME_CASES)
def test_an_eventbridge_cron_reads_back_as_the_same_schedule(unix: str) -> None:
    back = to_cron(to_eventbridge(unix))
    start = datetime(2027, 3, 1, tzinfo=ZoneInfo("UTC"))
    assert _cron_times(unix, start, 8) == _cron_times(back, start, 8)


def test_rate_at_and_yearly_crons_have_no_five_field_form() -> None:
    assert to_cron("rate(5 minutes)") is None
    assert to_cron("at(2027-01-01T06:00:00)") is None
    assert to_cron("cron(0 6 * * ? 2027)") is None
    assert to_cron("cron(0 6 15W * ? *)") is None
    assert to_cron("cron(0 6 ? * 2-6 *)") == "0 6 * * 1-5"
