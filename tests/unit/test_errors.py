"""Errors carry their facts as typed attributes (issue 20 part 2.1)."""

from __future__ import annotations

from studiorunner.errors import JupyterHTTPError, JupyterUnavailable


def test_an_http_error_says_its_status_and_whether_it_timed_out():
    refused = JupyterHTTPError("GET api/status: HTTP 403", method="GET", path="api/status", status=403)
    assert refused.status == 403 and not refused.timed_out and refused.facts["status"] == 403
    waited = JupyterUnavailable("POST api/kernels: no answer", method="POST", path="api/kernels", timeout=True)
    assert waited.status is None and waited.timed_out
