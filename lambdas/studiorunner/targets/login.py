"""Logging in to a target's Jupyter server with a presigned URL, and checking where it landed.

What real SageMaker answers (REAL-STUDIO L1–L8): the presigned URL is on the target's own
host (a space's, a Classic domain's, a notebook instance's); a good one sets the login
cookie and redirects under the Jupyter base URL; an expired, already used or invalid one
redirects to the AWS console's sign-in page on *another* host and ends in HTTP 200. So
the status code says nothing: where the login ended does.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from studiorunner.errors import LoginFailed
from studiorunner.jupyter.http import DEFAULT_TIMEOUT, RETRY_STATUSES, JupyterHTTP, new_session
from studiorunner.redact import quiet_secrets_in_logs, remember_secret

PRESIGNED_URL_SECONDS = 60  # the URL is used at once; the shorter it lives, the better
SESSION_SECONDS = 1800

_PROBABLY = (
    "AWS sends an expired, already used or invalid presigned URL to the console's sign-in page. "
    "Probably: the URL expired before it was used or was used twice, IAM refused it "
    "(sagemaker:CreatePresignedDomainUrl / CreatePresignedNotebookInstanceUrl for this user profile or "
    "instance; aws:SourceIp or aws:sourceVpce conditions), or the target names the wrong domain, space or host"
)


def _under(path: str, base_path: str) -> bool:
    base = base_path.rstrip("/")
    return not base or path == base or path.startswith(base + "/")


def presigned_login(
    url: str, target: str, *, base_path: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT
) -> JupyterHTTP:
    """GET the presigned URL with a fresh session; a client for the Jupyter server at the
    URL's host + ``base_path``, or LoginFailed saying where the login ended and why."""
    quiet_secrets_in_logs()
    remember_secret(parse_qs(urlsplit(url).query).get("token", [""])[0] or
                    parse_qs(urlsplit(url).query).get("authToken", [""])[0])
    session = new_session()
    try:
        response = session.get(url, timeout=timeout, allow_redirects=True)
    except Exception as exc:  # the exception text holds the presigned URL
        raise LoginFailed(f"Could not reach target {target!r} to log in ({type(exc).__name__})", target=target) from None
    asked, landed = urlsplit(url), urlsplit(response.url)
    where = f"{landed.scheme}://{landed.netloc}{landed.path}"  # never the query: it may hold the token
    if landed.netloc.lower() != asked.netloc.lower():
        raise LoginFailed(
            f"Logging in to target {target!r} ended on {where} (HTTP {response.status_code}), another host "
            f"than the target's ({asked.netloc}). {_PROBABLY}.",
            target=target, status=response.status_code, landed=where,
        )
    if not _under(landed.path, base_path):
        raise LoginFailed(
            f"Logging in to target {target!r} ended on {where} (HTTP {response.status_code}), not under "
            f"its Jupyter base URL {base_path}. {_PROBABLY}.",
            target=target, status=response.status_code, landed=where,
        )
    # A page under the base URL that answers 5xx is the app still starting: the caller's
    # readiness probe decides. Anything else >= 400 is a refusal.
    if response.status_code >= 400 and response.status_code not in RETRY_STATUSES:
        raise LoginFailed(
            f"Logging in to target {target!r} with a presigned URL answered {response.status_code} on {where}",
            target=target, status=response.status_code,
        )
    for cookie in session.cookies:  # the login cookies: as good as the token while they last
        remember_secret(cookie.value)
    return JupyterHTTP(f"{asked.scheme}://{asked.netloc}{base_path.rstrip('/')}", session)
