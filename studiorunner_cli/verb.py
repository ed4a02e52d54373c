"""What every verb of ``studio-runner`` is made of: its flags, its typed options, its function.

A verb lives in a module of its own and exposes a ``Verb``; ``main.VERBS`` lists them, one
line each. Parsing stays at the edge: ``main`` parses the command line, builds the verb's
options dataclass from it (``options_from``) and calls ``verb.run(options)``, which returns
the exit status. A verb module must be cheap to import (no boto3, moto, jupyter_server or
nbformat at module level): usage errors are decided before any of them loads.

Adding a verb::

    @dataclass(frozen=True)
    class InspectOptions:
        notebook: str

    def _arguments(parser):
        parser.add_argument("notebook")

    def inspect(options: InspectOptions) -> int: ...

    VERB = Verb("inspect", "the notebook's parameters", _arguments, InspectOptions, inspect)

then one line in ``main.VERBS``. Raise ``UsageError`` for a bad command line (exit 2),
``RunsError`` for something the user must fix (exit 1, one line).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studiorunner import catalog

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
#: What the local stand-in can play (``--target`` with ``--local``, ``local up --target``).
TARGET_TYPES = catalog.TARGET_KIND_NAMES


class Parser(argparse.ArgumentParser):
    """argparse, exiting 2 with its one-line message on a usage error."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


@dataclass(frozen=True)
class Where:
    """Where the runs are: the deployed stack (default ``StudioRunner``) or the local stack."""

    local: bool = False
    stack: str | None = None
    profile: str | None = None
    region: str | None = None


def add_where(parser: argparse.ArgumentParser) -> None:
    """The ``Where`` flags, for a verb whose options have a ``where: Where`` field."""
    group = parser.add_argument_group("where the runs are")
    group.add_argument("--local", action="store_true",
                       help="the local stack: the `local up` one serving this folder if any, else one for this command")
    group.add_argument("--stack", default=None, help="the deployed stack's name (default: StudioRunner)")
    group.add_argument("--profile", help="AWS profile (default: the usual credentials)")
    group.add_argument("--region", help="AWS region (default: the profile's)")


@dataclass(frozen=True)
class Verb:
    """One verb: ``studio-runner NAME``."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]  # adds the verb's flags
    options: type  # a dataclass: built from the parsed flags by field name
    run: Callable[[Any], int]  # the verb itself: options in, exit status out


def options_from(namespace: argparse.Namespace, cls: type) -> Any:
    """``cls`` (a dataclass) from parsed flags: each field from the flag of the same ``dest``;
    a field typed as a dataclass (``where: Where``) is built the same way from the same flags."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError:  # a class defined in a function: its annotations' names are not global
        hints = {}
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        kind = hints.get(field.name, field.default_factory)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            values[field.name] = options_from(namespace, kind)
        elif hasattr(namespace, field.name):
            value = getattr(namespace, field.name)
            values[field.name] = tuple(tuple(v) if isinstance(v, list) else v for v in value) \
                if isinstance(value, list) else value
    return cls(**values)
