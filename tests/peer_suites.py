"""Where the peer projects' own test notebooks are (nbclient's, papermill's: see their README).

One place: ``../shared/peer-suites`` beside the checkout, or ``$STUDIO_RUNNER_PEER_SUITES``
(a git worktree elsewhere points it there). Absent, every test that reads them is skipped,
saying why: :func:`peer_file`, or the ``peer_suites`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PEER_SUITES = Path(os.environ.get("STUDIO_RUNNER_PEER_SUITES")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "peer-suites")
MISSING = (f"the peer suites are not at {PEER_SUITES} (../shared/peer-suites beside the checkout; "
           "set STUDIO_RUNNER_PEER_SUITES to read them from elsewhere)")


def require() -> Path:
    """The peer suites' folder, or skip the calling test with the reason."""
    if not PEER_SUITES.is_dir():
        pytest.skip(MISSING)
    return PEER_SUITES


def peer_file(suite: str, name: str) -> Path:
    """``<peer suites>/<suite>/<name>``, or skip the calling test with the reason."""
    return require() / suite / name
