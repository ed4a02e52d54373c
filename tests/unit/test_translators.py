"""papermill's own translator tests, run against ``studiorunner.translators``; then our naming rules.

The first half of this module is papermill's ``papermill/tests/test_translators.py`` (it
ships in papermill's wheel, which requirements-dev installs) with its three relative
imports pointed at our module: every test function in it is collected here as if written
here. papermill's ``PapermillException`` (no translator for a kernel) is our
``PayloadInvalid``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

from studiorunner import translators as ours
from studiorunner.errors import PayloadInvalid
from studiorunner.translators import (
    BashTranslator,
    PythonTranslator,
    RTranslator,
    check_parameters,
    notebook_language,
    papermill_translators,
)

_SPEC = importlib.util.find_spec("papermill.tests.test_translators")
PAPERMILL_SUITE = Path(_SPEC.origin) if _SPEC and _SPEC.origin else None
_REWRITES = {
    "from .. import translators\n": "from studiorunner import translators\n",
    "from ..exceptions import PapermillException\n":
        "from studiorunner.errors import PayloadInvalid as PapermillException\n",
    "from ..models import Parameter\n": "from studiorunner.translators import Parameter\n",
}


def _papermill_suite_source() -> str:
    source = PAPERMILL_SUITE.read_text(encoding="utf-8")
    for old, new in _REWRITES.items():
        assert source.count(old) == 1, f"papermill's test module changed: {old.strip()!r} not found once"
        source = source.replace(old, new)
    assert "from .." not in source and "import papermill" not in source, "an import still reaches papermill"
    return source


if PAPERMILL_SUITE is None:  # pragma: no cover - requirements-dev installs papermill
    @pytest.mark.skip(reason="papermill (requirements-dev.txt) is not installed: its translator tests are not here")
    def test_papermill_suite():
        pass
else:
    _before = set(globals())
    exec(compile(_papermill_suite_source(), str(PAPERMILL_SUITE), "exec"), globals())  # noqa: S102
    PAPERMILL_TESTS = sorted(name for name in set(globals()) - _before if name.startswith("test_"))


def test_the_papermill_suite_was_collected_and_uses_our_module():
    assert PAPERMILL_SUITE is not None
    assert len(PAPERMILL_TESTS) >= 39, PAPERMILL_TESTS  # 39 in papermill 2.7
    assert globals()["translators"] is ours
    assert "papermill.translators" not in sys.modules or sys.modules["papermill.translators"] is not ours


# --- ours: which translator, which names, which values -----------------------------------


@pytest.mark.parametrize("kernel, language, expected", [
    ("python3", "python", PythonTranslator),
    ("ir", "R", RTranslator),
    ("ir", "r", RTranslator),  # a lower-case spelling some tools write
    ("bash", "bash", BashTranslator),
    ("sparkrkernel", "python", RTranslator),  # papermill's per-kernel override wins
    ("pysparkkernel", "scala", PythonTranslator),
    ("python3", "python3", PythonTranslator),
])
def test_translator_by_kernel_then_language(kernel, language, expected):
    assert papermill_translators.find_translator(kernel, language) is expected


def test_a_language_without_a_translator_is_payload_invalid_naming_it():
    with pytest.raises(PayloadInvalid, match=r"No parameter translator for kernel 'javascript' or language "
                                             r"'javascript'.*R, bash.*run it without parameters"):
        check_parameters({"x": 1}, kernel_name="javascript", language="javascript")


@pytest.mark.parametrize("language, name", [
    ("python", "café"), ("python", "match"), ("python", "_private"),
    ("R", "my.var"), ("R", ".hidden"), ("R", "_x"), ("R", "café"),
    ("bash", "RUN_DATE"), ("bash", "_x"),
    ("julia", "done!"), ("scala", "total$"), ("matlab", "alpha_1"), (".net-csharp", "@class"),
    (".net-powershell", "ÿes"),
])
def test_names_each_language_accepts(language, name):
    assert check_parameters({name: 1}, kernel_name="k", language=language).name_problem(name) is None


@pytest.mark.parametrize("language, name, why", [
    ("python", "class", "is a Python keyword"),
    ("python", "1abc", "not a valid Python identifier"),
    ("python", "a-b", "not a valid Python identifier"),
    ("python", "", "not a valid Python identifier"),
    ("R", "if", "reserved word in R"),
    ("R", "TRUE", "reserved word in R"),
    ("R", ".2way", "not a valid R variable name"),
    ("R", "..1", "reserved word in R"),
    ("R", "___", "not a valid R variable name"),
    ("bash", "café", "not a valid bash variable name"),
    ("bash", "my.var", "not a valid bash variable name"),
    ("bash", "UID", "reserved word in bash"),
    ("scala", "val", "reserved word in Scala"),
    ("matlab", "_x", "not a valid MATLAB variable name"),
    ("matlab", "x" * 64, "not a valid MATLAB variable name"),
    (".net-csharp", "class", "reserved word in C#"),
    (".net-powershell", "True", "reserved word in PowerShell"),
])
def test_names_each_language_refuses(language, name, why):
    with pytest.raises(PayloadInvalid, match=why) as caught:
        check_parameters({name: 1}, kernel_name="k", language=language)
    assert repr(name) in caught.value.message


def test_every_problem_is_named_at_once():
    with pytest.raises(PayloadInvalid) as caught:
        check_parameters({"ok": 1, "class": 2, "for": 3, "fine": {"a": 1}}, kernel_name="python3", language="python")
    assert caught.value.facts["problems"] == [
        "parameter name 'class' is a Python keyword",
        "parameter name 'for' is a Python keyword",
    ]


@pytest.mark.parametrize("language, value, why", [
    ("bash", {"a": 1}, "is an object \\(dict\\), which papermill's bash translator cannot write"),
    ("bash", [[1, 2], 3], "bash arrays hold only plain values"),
    (".net-csharp", None, "is null, which papermill's C# translator cannot write"),
    (".net-csharp", [1, None], "is a list, which papermill's C# translator cannot write"),
])
def test_values_a_translator_cannot_write_are_refused(language, value, why):
    with pytest.raises(PayloadInvalid, match=why):
        check_parameters({"x": value}, kernel_name="k", language=language)


def test_r_names_that_collide_once_underscores_are_dropped():
    with pytest.raises(PayloadInvalid, match="'x' and '_x' are both written as 'x' in R"):
        check_parameters({"x": 1, "_x": 2}, kernel_name="ir", language="R")


@pytest.mark.parametrize("metadata, language", [
    ({"language_info": {"name": "R"}, "kernelspec": {"language": "python"}}, "R"),  # papermill's order
    ({"kernelspec": {"name": "bash", "language": "bash"}}, "bash"),
    ({}, None),
])
def test_notebook_language_as_papermill_reads_it(metadata, language):
    assert notebook_language(nbformat.from_dict(metadata)) == language


@pytest.mark.parametrize("translator, source, names", [
    (RTranslator, "alpha <- 0.5\nbeta = 'x'\nmy.list <<- list()\nif (a == 1) b <- 2\n", {"alpha", "beta", "my.list"}),
    (BashTranslator, "RUN_DATE=2026-01-01\nexport OUT=x\ndeclare -a ITEMS=(1 2)\nN+=1\necho $A\n",
     {"RUN_DATE", "OUT", "ITEMS", "N"}),
    (PythonTranslator, "a = 1\nb: int = 2\n", {"a", "b"}),
])
def test_assigned_names_per_language(translator, source, names):
    assert translator.assigned_names(source) == names
