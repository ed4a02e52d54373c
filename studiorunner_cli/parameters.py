"""Parameters from the command line, as papermill takes them (``-p``, ``-r``, ``-f``, ``-y``).

``-p NAME VALUE``: papermill's ``_resolve_type``: ``True``/``False``/``None``, an int, a
float, else the string. ``-r NAME VALUE``: the string as given. ``-f FILE`` / ``-y TEXT``:
a YAML mapping, read as papermill reads it (``NoDatesSafeLoader``: a date or a timestamp such as
``run_date: 2026-11-22`` stays the string it is written as). Later flags win over earlier ones,
files first, as in papermill. Whether a name is a valid variable is the notebook's language's
question (``studiorunner.translators``), asked once the notebook is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """Bad command line: exit status 2, before anything starts."""


def resolve_type(value: str) -> Any:
    if value == "True":
        return True
    if value == "False":
        return False
    if value == "None":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _no_dates_loader():
    """papermill's ``iorw.NoDatesSafeLoader``: YAML's safe loader without its timestamp resolver."""
    import yaml

    class NoDatesSafeLoader(yaml.SafeLoader):
        yaml_implicit_resolvers = {
            k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
            for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

    return NoDatesSafeLoader


def _yaml_mapping(text: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.load(text, Loader=_no_dates_loader())  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise UsageError(f"{where} is not YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{where} must be a mapping of name: value, not a {type(data).__name__}")
    return data


def collect(files: Sequence[str], yamls: Sequence[str], typed: Sequence[Sequence[str]],
            raw: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The parameters, checked for what can be checked before anything starts."""
    params: dict[str, Any] = {}
    for name in files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read parameters file {name}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
        params.update(_yaml_mapping(text, name))
    for text in yamls:
        params.update(_yaml_mapping(text, "-y"))
    for name, value in typed:
        params[name] = resolve_type(value)
    for name, value in raw:
        params[name] = value
    for name in params:
        if not isinstance(name, str):  # YAML keys may be numbers, dates…: papermill would fail later
            raise UsageError(f"parameter name {name!r} is not text: quote it in the YAML")
    return params
