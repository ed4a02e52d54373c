"""One timestamp form (studiorunner.timestamps), the one the kernel messages, outputs, gap notes and
command logs share."""

from __future__ import annotations

import datetime

from studiorunner.execution.gaps import iso
from studiorunner.execution.outputs import timestamp
from studiorunner.timestamps import utc_iso

PARIS = datetime.timezone(datetime.timedelta(hours=1))


def test_every_input_is_written_in_utc_with_a_z():
    moment = datetime.datetime(2026, 11, 22, 7, 0, 0, 5000, tzinfo=PARIS)
    assert utc_iso(moment) == "2026-11-22T06:00:00.005000Z"
    assert utc_iso(moment, timespec="milliseconds") == "2026-11-22T06:00:00.005Z"
    assert utc_iso(moment.replace(tzinfo=None) - datetime.timedelta(hours=1)) == "2026-11-22T06:00:00.005000Z"
    assert utc_iso(moment.timestamp(), timespec="seconds") == "2026-11-22T06:00:00Z"
    assert utc_iso().endswith("Z")


def test_the_old_formats_are_kept():
    # nbclient's output timestamps, and the gap note's seconds
    assert timestamp({"header": {"date": "2026-11-22T07:00:00.000001+01:00"}}) == "2026-11-22T06:00:00.000001Z"
    assert timestamp({"header": {"date": "2026-11-22T06:00:00"}}) == "2026-11-22T06:00:00.000000Z"
    assert iso(datetime.datetime(2026, 11, 22, 6, tzinfo=datetime.UTC).timestamp()) == "2026-11-22T06:00:00Z"
