"""Issue 20 fault 7: a run at log level DEBUG, on every target kind, writes no secret it
handled into any log line: not the presigned URLs' tokens, not the login cookies, not a
`jupyter` target's token (fetched from Secrets Manager, whose DEBUG response log holds it),
not the AWS session token botocore signs with (a bytes header at DEBUG). Each record is
checked whole (message, arguments and extra keys), from every logger, every step."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import write_notebook

from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn
from studiorunner.jupyter.http import JupyterHTTP
from studiorunner.targets import login as login_module
from studiorunner.targets import notebook_instance, studio

SESSION_TOKEN = "FwoGZXIvYXdzSESSIONTOKENmarker0123456789abcdef"
SECRET_KEY = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEYmarker"


class _Everything(logging.Handler):
    """Keeps each record as the text a log sink could show: its message and every attribute."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The steps run in the state machine interpreter's threads; the test's own calls (the
        # local stack creating the secret, starting and polling the execution) in this one,
        # and moto's loggers speak for the AWS services, not for the Lambdas.
        if threading.current_thread() is threading.main_thread() or record.name.startswith("moto"):
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001
            message = str(record.msg)
        fields = {k: v for k, v in vars(record).items() if k not in ("msg", "args", "message")}
        self.lines.append(f"{record.name}: {message} {json.dumps(fields, default=repr)}")


@pytest.fixture
def debug_logs() -> Iterator[_Everything]:
    from studiorunner.steps import _runtime

    handler = _Everything()
    root = logging.getLogger()
    before = root.level, _runtime.logger.log_level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3", "s3transfer", "websocket", "studiorunner"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    _runtime.logger.setLevel("DEBUG")
    _runtime.logger.addHandler(handler)  # Powertools' own logger does not propagate
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        _runtime.logger.removeHandler(handler)
        root.setLevel(before[0])
        _runtime.logger.setLevel(before[1])
        for name in ("botocore", "boto3", "urllib3", "s3transfer", "websocket", "studiorunner"):
            logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.fixture
def handled(monkeypatch) -> set[str]:
    """Every presigned-URL token and login cookie value the run's steps handled."""
    secrets: set[str] = set()
    original = login_module.presigned_login

    def spy(url: str, *args: Any, **kwargs: Any) -> JupyterHTTP:
        secrets.add(url.split("token=", 1)[1].split("&", 1)[0] if "token=" in url.lower() else url)
        http = original(url, *args, **kwargs)
        secrets.update(c.value for c in http.session.cookies if c.value and len(c.value) >= 8)
        return http

    monkeypatch.setattr(studio, "presigned_login", spy)
    monkeypatch.setattr(notebook_instance, "presigned_login", spy)
    return secrets


@pytest.mark.parametrize("flavor", ["studio-space", "studio-classic", "notebook-instance", "jupyter"])
def test_no_secret_the_run_handled_is_in_any_debug_log_line(flavor, tmp_path: Path, debug_logs, handled) -> None:
    root = tmp_path / "home"
    root.mkdir()
    path = write_notebook(root, "n.ipynb", "print('hello')")
    options = {"legacy": True} if flavor == "studio-classic" else {}
    with StandIn(root=root, flavor=flavor, **options) as standin, \
            LocalStack(standin, extra_env={"AWS_SESSION_TOKEN": SESSION_TOKEN,
                                           "AWS_SECRET_ACCESS_KEY": SECRET_KEY}) as stack:
        execution = stack.run({"notebook": path, "commands": ["echo ok"]}, timeout=180)
        server_token = standin.token

    assert execution.succeeded, (execution.error, execution.cause)
    secrets = {SESSION_TOKEN, SECRET_KEY, *handled}
    if flavor == "jupyter":
        secrets.add(server_token)
    else:
        assert handled, "the run logged in with no presigned URL?"
    assert len(debug_logs.lines) > 100  # DEBUG was on: botocore and urllib3 spoke
    leaks = [(secret[:6] + "…", line[:300]) for line in debug_logs.lines for secret in secrets if secret in line]
    assert not leaks, leaks[:5]
