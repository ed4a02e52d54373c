"""Parameter injection must give what papermill gives, byte for byte."""

from __future__ import annotations

import copy
import json
import sys

import nbformat
import pytest
from papermill.parameterize import parameterize_notebook
from papermill.translators import PythonTranslator

from studiorunner import translators
from studiorunner.errors import PayloadInvalid
from studiorunner.notebook import prepare_for_run
from studiorunner.parameters import (
    check_injection,
    defined_names,
    inject_parameters,
    parse_cli_value,
    python_parameters_source,
    translate_python,
)
from studiorunner.store import notebook_from_bytes, notebook_to_bytes
from tests.peer_suites import peer_file


@pytest.fixture(autouse=True)
def _no_black(monkeypatch):
    """papermill formats with black when it is importable; we never do. Make the
    reference deterministic even if someone installs black into the venv."""
    monkeypatch.setitem(sys.modules, "black", None)


def load_peer(name: str) -> nbformat.NotebookNode:
    return nbformat.read(peer_file("papermill", name), as_version=4)


def papermill_reference(nb: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    ref = copy.deepcopy(nb)
    # what papermill's load_notebook_node adds before parameterising
    ref.metadata.setdefault("papermill", {})
    for cell in ref.cells:
        cell.metadata.setdefault("tags", [])
    return parameterize_notebook(ref, parameters, kernel_name="python3", language="python")


def shape(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """Each cell's type, source and tags: what injection may change."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


VALUES = {
    "count": 42,
    "negative": -7,
    "big": 2**70,
    "ratio": 0.1,
    "small": 1e-05,
    "huge": 1.5e300,
    "true": True,
    "false": False,
    "none": None,
    "text": "Hello",
    "empty": "",
    "quotes": 'say "hi" and \'bye\'',
    "newlines": "line one\nline two\r\n\ttabbed",
    "backslash": "C:\\temp\\new",
    "unicode": "café ☕ 日本",
    "date": "2026-11-22",
    "items": [1, "two", 3.0, None, True],
    "empty_list": [],
    "mapping": {"a": 1, "b": "x", "c": None},
    "nested": {"rows": [{"id": 1, "tags": ["x", 'y"z']}], "deep": {"deeper": {"n": -0.5}}},
    "nan": float("nan"),
    "inf": float("inf"),
    "neg_inf": float("-inf"),
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_each_value_is_translated_exactly_as_papermill(name):
    value = VALUES[name]
    assert translate_python(value) == PythonTranslator.translate(value)
    assert python_parameters_source({name: value}) == PythonTranslator.codify({name: value})


def test_whole_cell_source_matches_papermill_and_round_trips_in_python():
    source = python_parameters_source(VALUES)
    assert source == PythonTranslator.codify(VALUES)
    assert source.startswith("# Parameters\n")

    namespace: dict = {}
    exec(source, namespace)  # what the kernel will do with it
    for name, value in VALUES.items():
        if isinstance(value, float) and value != value:  # nan
            assert namespace[name] != namespace[name]
        else:
            assert namespace[name] == value, name


def test_simple_execute_gets_papermills_cell_right_after_the_parameters_cell():
    nb = load_peer("simple_execute.ipynb")
    expected = papermill_reference(nb, {"msg": "Hello"})

    warnings = inject_parameters(nb, {"msg": "Hello"})

    assert warnings == []
    assert shape(nb) == shape(expected)
    assert nb.cells[0].metadata.tags == ["parameters"]
    assert nb.cells[1].source == '# Parameters\nmsg = "Hello"\n'
    assert nb.cells[1].metadata.tags == ["injected-parameters"]
    assert nb.cells[2].source.endswith("print(msg)")
    assert nb.metadata.papermill.parameters == {"msg": "Hello"}
    assert nb.metadata.studio_runner.warnings == []


def test_complex_parameters_cell_with_a_broken_line_still_tells_defined_names():
    nb = load_peer("complex_parameters.ipynb")
    params = {"msg": "Hi", "a": 3.5, "b": ["x"], "c": {"k": 1}, "d": True, "e": 1}
    expected = papermill_reference(nb, params)

    warnings = inject_parameters(nb, params)

    assert shape(nb) == shape(expected)
    assert nb.cells[1].source == PythonTranslator.codify(params)
    # The cell ends in "= 2" (a syntax error); the other lines define msg, a, b, c, d.
    assert warnings == ["Parameter 'e' is not defined in the notebook's parameters cell"]
    assert nb.metadata.studio_runner.warnings == warnings


def test_no_parameters_cell_injects_at_the_top_with_one_warning():
    nb = load_peer("no_parameters.ipynb")
    expected = papermill_reference(nb, {"msg": "Hello"})

    warnings = inject_parameters(nb, {"msg": "Hello"})

    assert shape(nb) == shape(expected)
    assert nb.cells[0].metadata.tags == ["injected-parameters"]
    assert nb.cells[0].source == '# Parameters\nmsg = "Hello"\n'
    assert nb.cells[1].source == "msg = None"
    assert len(warnings) == 1 and "does not contain a cell with tag 'parameters'" in warnings[0]


def test_second_injection_replaces_the_injected_cell_like_papermill():
    nb = load_peer("simple_execute.ipynb")
    inject_parameters(nb, {"msg": "first"})
    expected = papermill_reference(nb, {"msg": "second"})

    inject_parameters(nb, {"msg": "second"})

    assert shape(nb) == shape(expected)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert [c.source for c in injected] == ['# Parameters\nmsg = "second"\n']


def test_v4_4_notebook_is_upgraded_so_the_new_cell_id_is_valid():
    nb = load_peer("simple_execute.ipynb")
    assert nb.nbformat_minor == 4
    inject_parameters(nb, {"msg": "Hello"})
    assert nb.nbformat_minor == 5
    assert all("id" in cell for cell in nb.cells)
    nbformat.validate(nb)
    # and it survives a save/load
    again = notebook_from_bytes(notebook_to_bytes(nb), source="test")
    assert again.cells[1].source == '# Parameters\nmsg = "Hello"\n'


def test_undefined_parameter_warns_and_is_still_injected():
    nb = load_peer("simple_execute.ipynb")
    warnings = inject_parameters(nb, {"msg": "Hello", "colour": "blue"})
    assert warnings == ["Parameter 'colour' is not defined in the notebook's parameters cell"]
    assert 'colour = "blue"' in nb.cells[1].source


def test_unparseable_parameters_cell_falls_back_to_assignment_lines():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = (1,\ny: int = 3\n", metadata={"tags": ["parameters"]})]
    assert inject_parameters(nb, {"x": 2, "y": 4, "z": 5}) == [
        "Parameter 'z' is not defined in the notebook's parameters cell"
    ]
    assert nb.cells[1].source == "# Parameters\nx = 2\ny = 4\nz = 5\n"


def test_parameters_cell_that_is_not_code_warns_once_instead_of_guessing():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x = 1", metadata={"tags": ["parameters"]})]
    assert inject_parameters(nb, {"x": 2}) == [
        "The cell tagged 'parameters' is not a code cell; parameter names were not checked"
    ]
    assert nb.cells[1].source == "# Parameters\nx = 2\n"


@pytest.mark.parametrize(
    "source, names",
    [
        ("a = 1\nb: int = 2\nc: str\n", {"a", "b", "c"}),
        ("x, (y, z) = 1, (2, 3)\n[w] = [4]\n", {"x", "y", "z", "w"}),
        ("if True:\n    p = 1\nelse:\n    q = 2\n", {"p", "q"}),
        ("%matplotlib inline\nalpha = 0.5\n", {"alpha"}),
        ("def f(inner=1):\n    local = 2\nsquares = [i * i for i in range(3)]\n", {"f", "squares"}),
        ("import os.path\nfrom math import pi as PI\n", {"os", "PI"}),
        ("total += 1\n", {"total"}),
        ("x = (1,\n  2\ny = 3\n", {"x", "y"}),  # unclosed bracket: assignment lines still count
        ("a == 1\n", set()),
    ],
)
def test_defined_names(source, names):
    assert defined_names(source) == names


@pytest.mark.parametrize("bad, why", [("1abc", "not a valid Python identifier"),
                                      ("with space", "not a valid Python identifier"),
                                      ("class", "is a Python keyword"), ("a-b", "not a valid Python identifier"),
                                      ("", "not a valid Python identifier")])
def test_parameter_names_must_be_python_identifiers_in_a_python_notebook(bad, why):
    nb = load_peer("simple_execute.ipynb")
    with pytest.raises(PayloadInvalid, match=why):
        inject_parameters(nb, {bad: 1})
    assert len(nb.cells) == 3  # nothing injected


def test_a_unicode_identifier_is_a_python_parameter_as_in_papermill():
    nb = load_peer("simple_execute.ipynb")
    expected = papermill_reference(nb, {"café": 1})
    inject_parameters(nb, {"café": 1})
    assert shape(nb) == shape(expected)
    assert nb.cells[1].source == "# Parameters\ncafé = 1\n"


def _in_language(nb: nbformat.NotebookNode, kernel: str, language: str, source: str) -> nbformat.NotebookNode:
    nb.metadata["kernelspec"] = {"name": kernel, "language": language, "display_name": kernel}
    nb.metadata["language_info"] = {"name": language}
    nb.cells[0].source = source
    return nb


@pytest.mark.parametrize("kernel, language, source, params, injected, warnings", [
    ("ir", "R", "msg <- NULL\nn = 1\n", {"msg": "Hi", "n": 3, "flags": [True, None], "_x": {"a": 1.5}},
     '# Parameters\nmsg = "Hi"\nn = 3\nflags = list(TRUE, NULL)\nx = list("a" = 1.5)\n',
     ["Parameter 'flags' is not defined in the notebook's parameters cell",
      "Parameter '_x' is not defined in the notebook's parameters cell"]),
    ("bash", "bash", "msg=\nexport N=1\n", {"msg": "it's $HOME", "N": 2, "ok": False, "items": ["a b", 1]},
     "# Parameters\nmsg='it'\"'\"'s $HOME'\nN=2\nok=false\nitems=('a b' 1)\n",
     ["Parameter 'ok' is not defined in the notebook's parameters cell",
      "Parameter 'items' is not defined in the notebook's parameters cell"]),
    ("julia-1.10", "julia", "msg = nothing\n", {"msg": "Hi", "d": {"k": [1]}},
     '# Parameters\nmsg = "Hi"\nd = Dict("k" => [1])\n',
     ["Parameter 'd' is not defined in the notebook's parameters cell"]),
    ("sparkrkernel", "python", "", {"x": True}, "# Parameters\nx = TRUE\n", []),  # papermill's per-kernel override
])
def test_other_languages_get_papermills_cell(kernel, language, source, params, injected, warnings):
    nb = _in_language(load_peer("simple_execute.ipynb"), kernel, language, source)
    ref = copy.deepcopy(nb)
    ref.metadata.setdefault("papermill", {})
    for cell in ref.cells:
        cell.metadata.setdefault("tags", [])
    expected = parameterize_notebook(ref, params)  # papermill reads kernel and language from the notebook

    got = inject_parameters(nb, params)

    assert shape(nb) == shape(expected)
    assert nb.cells[1].source == injected
    if source:
        assert got == warnings


def test_a_language_papermill_has_no_translator_for_is_refused_without_parameters_it_is_fine():
    nb = _in_language(load_peer("simple_execute.ipynb"), "javascript", "javascript", "let msg = null")
    with pytest.raises(PayloadInvalid, match="No parameter translator for kernel 'javascript'"):
        inject_parameters(nb, {"x": 1})
    assert len(nb.cells) == 3
    assert inject_parameters(nb, {}) == []


def test_the_language_given_wins_over_the_notebooks_metadata():
    nb = load_peer("simple_execute.ipynb")  # a Python notebook…
    inject_parameters(nb, {"x": True}, kernel_name="ir", language="R")  # …run on an R kernel
    assert nb.cells[1].source == "# Parameters\nx = TRUE\n"


def test_check_injection_changes_nothing_and_gives_the_warnings():
    nb = load_peer("simple_execute.ipynb")
    before = copy.deepcopy(nb)
    translator, warnings = check_injection(nb, {"msg": 1, "other": 2})
    assert translator is translators.PythonTranslator
    assert warnings == ["Parameter 'other' is not defined in the notebook's parameters cell"]
    assert nb == before


def test_no_parameters_injects_nothing_like_papermill():
    nb = load_peer("simple_execute.ipynb")
    assert inject_parameters(nb, {}) == []
    assert len(nb.cells) == 3
    assert nb.metadata.papermill.parameters == {}


def test_warnings_survive_prepare_for_run_but_a_previous_runs_do_not():
    nb = load_peer("simple_execute.ipynb")
    inject_parameters(nb, {"msg": "x", "extra": 1})
    prepare_for_run(nb, run_id="r1", input_path="a.ipynb", output_uri="s3://b/k",
                    parameters={"msg": "x", "extra": 1}, kernel_name="python3")
    assert nb.metadata.studio_runner.warnings == [
        "Parameter 'extra' is not defined in the notebook's parameters cell"
    ]
    # Re-running that output notebook without parameters: the old warning is gone.
    prepare_for_run(nb, run_id="r2", input_path="a.ipynb", output_uri="s3://b/k2",
                    parameters={}, kernel_name="python3")
    assert nb.metadata.studio_runner.warnings == []


def test_nan_parameter_is_recorded_as_strict_json():
    nb = load_peer("simple_execute.ipynb")
    inject_parameters(nb, {"msg": float("nan")})
    assert "msg = float('nan')" in nb.cells[1].source
    text = notebook_to_bytes(nb).decode()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.mark.parametrize(
    "text, value",
    [
        ("3", 3),
        ("0.5", 0.5),
        ("true", True),
        ("null", None),
        ('"quoted"', "quoted"),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("2026-11-22", "2026-11-22"),
        ("hello world", "hello world"),
        ("", ""),
        ("True", "True"),  # JSON, not Python: stays a string
    ],
)
def test_parse_cli_value(text, value):
    assert parse_cli_value(text) == value
