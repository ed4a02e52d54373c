"""``studio-runner inspect NOTEBOOK``: the parameters cell's names, types, defaults and comments.

papermill's ``--help-notebook`` (``papermill/inspection.py``), printed as papermill prints it:

    Parameters inferred for notebook 'report.ipynb':
      region: str (default "eu")      the sales region
      alpha: Unknown type (default 0.5)

Python cells are read by papermill's own ``PythonTranslator.inspect`` (``studiorunner.translators``).
papermill cannot read other languages' cells ("does not support parameter introspection"); here
their assignment lines give the names, defaults and ``#`` comments (types unknown). Exit status 1
when the notebook has no cell tagged ``parameters`` (as papermill), 2 when it cannot be read.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from studiorunner_cli.parameters import UsageError
from studiorunner_cli.verb import Verb


@dataclass(frozen=True)
class InspectOptions:
    notebook: str
    kernel: str | None = None
    language: str | None = None


def _arguments(parser) -> None:
    parser.add_argument("notebook", help="a local .ipynb")
    parser.add_argument("-k", "--kernel", help="the kernel it will run on (default: the notebook's)")
    parser.add_argument("-l", "--language", help="the parameters' language (default: the notebook's)")


def _other_language(translator, source: str):
    """Name, default and comment of each assignment line, for a language papermill cannot inspect."""
    from studiorunner.translators import Parameter

    found = []
    for line in source.splitlines():
        match = translator.ASSIGNMENT.match(line) if translator.ASSIGNMENT else None
        if not match:
            continue
        rest = line[match.end():]
        if "=" not in match.group(0) and "<-" not in match.group(0):  # `val x: Int = 1`, `let x = 1`
            rest = re.sub(r"^[^=]*=", "", rest, count=1)
        default, _, comment = rest.partition("#")  # approximate: a '#' inside a string ends the default
        found.append(Parameter(match.group(1), "None", default.strip().rstrip(";"), comment.strip()))
    return found


def parameters_help(path: Path, kernel: str | None = None, shown: str | None = None,
                    language: str | None = None) -> tuple[int, list[str]]:
    """(exit status, lines) of papermill's ``--help-notebook`` for the notebook at ``path`` (named ``shown``)."""
    import nbformat

    from studiorunner.errors import PayloadInvalid
    from studiorunner.parameters import PARAMETERS_TAG
    from studiorunner.translators import PythonTranslator, notebook_language, papermill_translators

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - one line: not a file, not JSON, not a notebook
        raise UsageError(f"cannot read {path}: {exc}") from None
    lines = [f"Parameters inferred for notebook '{shown or path}':"]
    cell = next((c for c in nb.cells if PARAMETERS_TAG in (c.get("metadata", {}).get("tags") or [])), None)
    if cell is None:
        return 1, [*lines, "", "  No cell tagged 'parameters'"]
    spec = nb.metadata.get("kernelspec") or {}
    language = language or notebook_language(nb.metadata) or "python"
    try:
        translator = papermill_translators.find_translator(kernel or spec.get("name"), language)
    except PayloadInvalid as exc:
        return 0, [*lines, "", f"  {exc.message}"]
    if translator is PythonTranslator or issubclass(translator, PythonTranslator):
        params = translator.inspect(cell)
    else:
        params = _other_language(translator, cell.get("source", ""))
    if not params:
        return 0, [*lines, "", "  Can't infer anything about this notebook's parameters. "
                   "It may not have any parameter defined."]
    for param in params:  # papermill's layout, column for column
        type_repr = "Unknown type" if param.inferred_type_name == "None" else param.inferred_type_name
        definition = f"  {param.name}: {type_repr} (default {param.default})"
        if len(definition) > 30:
            lines.append(f"{definition}\n{34 * ' '}{param.help}" if param.help else definition)
        else:
            lines.append(f"{definition:<34}{param.help}")
    return 0, lines


def inspect_notebook(notebook: str, kernel: str | None = None, out: TextIO | None = None,
                     language: str | None = None) -> int:
    path = Path(notebook).expanduser()
    if not path.is_file():
        raise UsageError(f"no such notebook: {notebook}")
    status, lines = parameters_help(path, kernel, shown=notebook, language=language)
    print("\n".join(lines), file=out or sys.stdout)
    return status


def inspect(options: InspectOptions) -> int:
    return inspect_notebook(options.notebook, options.kernel, language=options.language)


VERB = Verb("inspect", "the notebook's parameters: names, types, defaults, comments (papermill's --help-notebook)",
            _arguments, InspectOptions, inspect)
