"""Papermill-compatible parameter injection, in the notebook's own kernel language.

A run's ``parameters`` become a new code cell tagged ``injected-parameters`` placed right
after the cell tagged ``parameters`` (or at the top when there is none), with exactly the
source papermill's translator for the notebook's language writes (``studiorunner.translators``:
Python, R, Julia, Scala, MATLAB, C#, F#, PowerShell, bash), so existing papermill notebooks
run unchanged and papermill-aware tools find what they expect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import nbformat
from nbformat import NotebookNode

from studiorunner.errors import PayloadInvalid
from studiorunner.notebook import cell_tags, ensure_cell_ids, json_safe
from studiorunner.translators import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    PythonTranslator,
    Translator,
    check_notebook_parameters,
    python_assigned_names,
)

INJECTED_COMMENT = "Parameters"

#: The names a Python parameters cell assigns (kept under its old name).
defined_names = python_assigned_names


def translate_python(val: Any) -> str:
    """The Python literal papermill writes for ``val``."""
    return PythonTranslator.translate(val)


def python_parameters_source(parameters: dict[str, Any], comment: str = INJECTED_COMMENT) -> str:
    """The injected cell's source, as papermill's ``PythonTranslator.codify`` writes it (without black)."""
    return PythonTranslator.codify(parameters, comment)


# --- injection ---------------------------------------------------------------------------


def _first_tagged(nb: NotebookNode, tag: str) -> int:
    return next((i for i, cell in enumerate(nb.cells) if tag in cell_tags(cell)), -1)


def check_injection(
    nb: NotebookNode, parameters: Mapping[str, Any], *, kernel_name: str | None = None, language: str | None = None
) -> tuple[type[Translator], list[str]]:
    """The translator for the notebook and the warnings injecting ``parameters`` would give.

    Changes nothing. Raises PayloadInvalid naming every parameter the notebook's language
    cannot take (its own naming rules; a value its translator cannot write), or when the
    language has no translator. Everything that knows a notebook before its run starts
    (the CLI, Prepare) asks this (the CLI through ``translators.check_notebook_parameters``,
    on the notebook's JSON); :func:`inject_parameters` asks it again.
    """
    return check_notebook_parameters(nb.metadata, nb.cells, parameters, kernel_name=kernel_name, language=language)


def inject_parameters(
    nb: NotebookNode, parameters: dict[str, Any], *, kernel_name: str | None = None, language: str | None = None
) -> list[str]:
    """Inject ``parameters`` as papermill does and return the warnings.

    - The cell is written by the translator papermill would choose: by ``kernel_name`` (else
      the notebook's kernelspec name), then by ``language`` (else the notebook's).
    - An existing ``injected-parameters`` cell is replaced in place; otherwise the new cell
      goes right after the first cell tagged ``parameters``, or at the top of the notebook.
    - With no parameters nothing is injected (papermill's behaviour too).
    - Warns (and still injects) for each parameter the ``parameters`` cell does not define,
      and when there is no ``parameters`` cell at all.
    - Records ``nb.metadata.papermill.parameters`` and replaces
      ``nb.metadata.studio_runner`` with ``{"warnings": [...]}``: call this before
      ``notebook.prepare_for_run``, which keeps those warnings in the run's record.

    Raises PayloadInvalid as :func:`check_injection` does, before changing anything.
    """
    if not isinstance(parameters, dict):
        raise PayloadInvalid("parameters must be a JSON object of name: value")
    warnings: list[str] = []
    if parameters:
        translator, warnings = check_injection(nb, parameters, kernel_name=kernel_name, language=language)
        ensure_cell_ids(nb)  # the new cell has an id; a v4.4 notebook may not
        cell = nbformat.v4.new_code_cell(source=translator.codify(parameters, INJECTED_COMMENT))
        cell.metadata["tags"] = [INJECTED_TAG]
        injected_index = _first_tagged(nb, INJECTED_TAG)
        if injected_index >= 0:
            nb.cells[injected_index] = cell
        else:
            # right after the parameters cell; index 0 when there is none
            nb.cells.insert(_first_tagged(nb, PARAMETERS_TAG) + 1, cell)

    nb.metadata.setdefault("papermill", NotebookNode())["parameters"] = json_safe(parameters)
    nb.metadata["studio_runner"] = NotebookNode(warnings=list(warnings))
    return warnings


def parse_cli_value(text: str) -> Any:
    """A ``-p NAME=VALUE`` value: JSON where it parses as JSON (``3``, ``true``,
    ``[1, 2]``, ``"quoted"``), else the text itself (``2026-11-22``, ``hello``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text
