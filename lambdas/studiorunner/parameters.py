"""Papermill-compatible parameter injection.

A run's ``parameters`` become a new code cell tagged ``injected-parameters`` placed right
after the cell tagged ``parameters`` (or at the top when there is none), with exactly the
source papermill's Python translator writes, so existing papermill notebooks run unchanged
and papermill-aware tools find what they expect.

We re-implement papermill's translator instead of importing papermill: papermill drags in
click, tqdm, nbclient and more, none of which belongs in the Lambda bundle. The unit tests
compare our output with papermill's own translator byte for byte. (papermill formats the
cell with ``black`` when black happens to be installed; we never do, which is papermill's
output on every machine without black, the Lambda runtime included.)

Only Python kernels take parameters for now: papermill has translators for R, Julia, Scala,
.NET and bash, but the check that warns about parameters the notebook does not define is
Python-specific (``ast``), and Studio's kernels are Python; porting another translator is
a small, separate change.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from typing import Any

import nbformat
from nbformat import NotebookNode

from studiorunner.errors import PayloadInvalid
from studiorunner.notebook import cell_tags, ensure_cell_ids, json_safe

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
INJECTED_COMMENT = "Parameters"

_PYTHON_LANGUAGES = {"python", "python3"}


# --- papermill's PythonTranslator (papermill 2.7, translators.py), without black ------


def _translate_escaped_str(val: Any) -> str:
    if isinstance(val, str):
        val = val.encode("unicode_escape").decode("utf-8").replace('"', r"\"")
    return f'"{val}"'


def _translate_float(val: float) -> str:
    if math.isfinite(val):
        return f"{val}"
    if math.isnan(val):
        return "float('nan')"
    return "float('-inf')" if val < 0 else "float('inf')"


def translate_python(val: Any) -> str:
    """The Python literal papermill writes for ``val`` (same branches, same order)."""
    if val is None:
        return f"{val}"
    if isinstance(val, str):
        return _translate_escaped_str(val)
    if isinstance(val, bool):  # before int: bool is an int
        return f"{val}"
    if isinstance(val, int):
        return f"{val}"
    if isinstance(val, float):
        return _translate_float(val)
    if isinstance(val, dict):
        items = ", ".join(f"{_translate_escaped_str(k)}: {translate_python(v)}" for k, v in val.items())
        return f"{{{items}}}"
    if isinstance(val, list):
        return f"[{', '.join(translate_python(v) for v in val)}]"
    return _translate_escaped_str(val)  # papermill's last resort, e.g. a tuple


def python_parameters_source(parameters: dict[str, Any], comment: str = INJECTED_COMMENT) -> str:
    """The injected cell's source, as papermill's ``PythonTranslator.codify`` writes it."""
    content = f"{f'# {comment}'.strip()}\n"
    for name, val in parameters.items():
        content += f"{name} = {translate_python(val)}\n"
    return content


# --- which names the parameters cell defines ---------------------------------------------


class _AssignedNames(ast.NodeVisitor):
    """Names bound at module level (including inside if/for/try/with blocks).

    Function, class and lambda bodies and comprehensions have their own scopes, so
    names bound there are not notebook variables; the function or class name is.
    """

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.names.add(node.id)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        # ``x: int`` without a value declares the parameter; count it as defined.
        if isinstance(node.target, ast.Name):
            self.names.add(node.target.id)
        if node.value is not None:
            self.visit(node.value)

    def _bind_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.names.add(node.name)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _bind_def

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return None

    def _comprehension(self, node: ast.AST) -> None:
        # Only walrus targets escape a comprehension's scope.
        for sub in ast.walk(node):
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                self.names.add(sub.target.id)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def _imports(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.names.add(alias.asname or alias.name.split(".")[0])

    visit_Import = visit_ImportFrom = _imports


def _parse_leniently(source: str) -> ast.Module | None:
    """Parse ``source``, blanking lines that do not parse (IPython magics, typos).

    A parameters cell with one bad line (papermill's own ``complex_parameters`` notebook
    ends in ``= 2``) should still tell us the names its other lines define. Each retry
    blanks the line the SyntaxError points at; gives up (None) when that does not help.
    """
    lines = source.splitlines()
    for _ in range(len(lines) + 1):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as e:
            lineno = e.lineno
            if lineno is None or not 1 <= lineno <= len(lines) or not lines[lineno - 1].strip():
                return None
            lines[lineno - 1] = ""
        except ValueError:  # e.g. null bytes in the source
            return None
    return None


# ``name =`` or ``name: annotation =`` at the start of a line, not ``name ==``: what
# papermill's own inspection (PythonTranslator.PARAMETER_PATTERN) looks for.
_ASSIGNMENT_LINE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", re.MULTILINE)


def defined_names(source: str) -> set[str]:
    """Names the cell's code assigns at notebook level.

    With ``ast`` when the cell parses; when it does not (an IPython magic, a typo), the
    lines that parse plus every line that looks like an assignment, so one bad line
    does not turn every parameter into a false warning.
    """
    try:
        tree: ast.Module | None = ast.parse(source)
        clean = True
    except (SyntaxError, ValueError):
        tree, clean = _parse_leniently(source), False
    names: set[str] = set()
    if tree is not None:
        visitor = _AssignedNames()
        visitor.visit(tree)
        names = visitor.names
    if not clean:
        names |= set(_ASSIGNMENT_LINE.findall(source))
    return names


# --- injection ---------------------------------------------------------------------------


def _first_tagged(nb: NotebookNode, tag: str) -> int:
    return next((i for i, cell in enumerate(nb.cells) if tag in cell_tags(cell)), -1)


def _check_names(parameters: dict[str, Any]) -> None:
    for name in parameters:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise PayloadInvalid(
                f"Parameter name {name!r} is not a valid Python identifier",
                parameter=str(name),
            )


def inject_parameters(
    nb: NotebookNode, parameters: dict[str, Any], *, language: str = "python"
) -> list[str]:
    """Inject ``parameters`` as papermill does and return the warnings.

    - An existing ``injected-parameters`` cell is replaced in place; otherwise the new cell
      goes right after the first cell tagged ``parameters``, or at the top of the notebook.
    - With no parameters nothing is injected (papermill's behaviour too).
    - Warns (and still injects) for each parameter the ``parameters`` cell does not define,
      and when there is no ``parameters`` cell at all.
    - Records ``nb.metadata.papermill.parameters`` and replaces
      ``nb.metadata.studio_runner`` with ``{"warnings": [...]}``: call this before
      ``notebook.prepare_for_run``, which keeps those warnings in the run's record.

    Raises PayloadInvalid for a parameter name that is not a Python identifier, and for a
    non-Python notebook given parameters.
    """
    if not isinstance(parameters, dict):
        raise PayloadInvalid("parameters must be a JSON object of name: value")
    warnings: list[str] = []
    if parameters:
        if (language or "python").lower() not in _PYTHON_LANGUAGES:
            raise PayloadInvalid(
                f"Only Python notebooks take parameters for now; this notebook's language is {language!r}",
                language=language,
            )
        _check_names(parameters)

        param_index = _first_tagged(nb, PARAMETERS_TAG)
        known: set[str] | None = None
        if param_index < 0:
            # One warning says it all: every parameter is "undefined" here.
            warnings.append(
                "Input notebook does not contain a cell with tag 'parameters'; "
                "parameters were injected at the top"
            )
        else:
            param_cell = nb.cells[param_index]
            if param_cell.get("cell_type") == "code":
                known = defined_names(param_cell.get("source", ""))
            else:  # a markdown or raw cell tagged by mistake: nothing to check against
                warnings.append(
                    "The cell tagged 'parameters' is not a code cell; parameter names were not checked"
                )
        if known is not None:
            warnings.extend(
                f"Parameter '{name}' is not defined in the notebook's parameters cell"
                for name in parameters
                if name not in known
            )

        ensure_cell_ids(nb)  # the new cell has an id; a v4.4 notebook may not
        cell = nbformat.v4.new_code_cell(source=python_parameters_source(parameters))
        cell.metadata["tags"] = [INJECTED_TAG]
        injected_index = _first_tagged(nb, INJECTED_TAG)
        if injected_index >= 0:
            nb.cells[injected_index] = cell
        else:
            nb.cells.insert(param_index + 1, cell)  # index 0 when there is no parameters cell

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
