"""papermill's parameter translators, one per kernel language, and each language's naming rules.

A run's ``parameters`` become source code in the notebook's own language: ``x = 1`` for
Python, ``x = 1`` / ``list(...)`` for R, ``x=1`` for bash, ``val x = 1`` for Scala… The
classes below write exactly what papermill 2.7's ``papermill/translators.py`` writes
(BSD-3-Clause, © nteract contributors; same class names, same methods, same registry), and
papermill's own ``papermill/tests/test_translators.py`` runs against this module
(``tests/unit/test_translators.py``). The translator is chosen as papermill chooses it: by
kernel name first (papermill's per-kernel overrides: ``pysparkkernel``, ``sparkkernel``,
``sparkrkernel``), then by the notebook's language.

Why not import papermill: ``import papermill.translators`` runs papermill's ``__init__``,
which imports nbclient, jupyter_client, pyzmq, tornado, tqdm, click and more; measured
(bench/README.md, "Parameters in every kernel language") that adds 2.7 MB of wheels to a
Lambda zip that has ~0.2 MB left of its 5 MB budget, and ~175 ms of CPU to Prepare's and
StartKernel's cold import on top of nbformat. This file is ~20 KB and imports only the
standard library.

What we add to papermill's classes: :meth:`Translator.name_problem` (the language's own rule
for a variable name: ``class`` is refused for Python, ``café`` accepted; ``my.var`` accepted
for R; bash names are ASCII), :meth:`Translator.value_problem` (a value the language's
translator cannot write, e.g. a dict for bash), and :meth:`Translator.assigned_names` (the
names a parameters cell assigns, for the "not defined in the parameters cell" warning).
One function, :func:`check_parameters`, applies them; every place that knows a notebook's
language calls it (the CLI before it starts anything, Prepare for an S3 notebook,
StartKernel for a notebook in the target's tree).

papermill formats Python cells with ``black`` when black is importable; we never do, which
is papermill's output on every machine without black, the Lambda runtime included.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import shlex
from collections.abc import Mapping
from typing import Any, NamedTuple

from studiorunner.errors import PayloadInvalid


class Parameter(NamedTuple):
    """One parameter of a notebook's parameters cell (papermill's ``models.Parameter``)."""

    name: str
    inferred_type_name: str  # "None" when unknown
    default: str  # the default's source text
    help: str  # the comment after it


# --- papermill's translators (papermill 2.7 translators.py), plus naming rules ------------


class Translator:
    """papermill's base translator: ``translate`` a value, ``assign`` it, ``codify`` a cell."""

    #: The language's name as people say it, for messages.
    language_name = "this language"
    #: A whole-name pattern of a valid variable name (None: any name papermill writes).
    NAME = re.compile(r"[^\W\d]\w*")
    #: Words the language reserves (compared as written, or lowercased when ``KEYWORDS_FOLD``).
    KEYWORDS: frozenset[str] = frozenset()
    KEYWORDS_FOLD = False
    #: ``^name`` of lines that assign a variable (None: the language's cells are not inspected).
    ASSIGNMENT: re.Pattern[str] | None = None

    @classmethod
    def translate_raw_str(cls, val):
        """Reusable by most interpreters"""
        return f"{val}"

    @classmethod
    def translate_escaped_str(cls, str_val):
        """Reusable by most interpreters"""
        if isinstance(str_val, str):
            str_val = str_val.encode("unicode_escape")
            str_val = str_val.decode("utf-8")
            str_val = str_val.replace('"', r"\"")
        return f'"{str_val}"'

    @classmethod
    def translate_str(cls, val):
        """Default behavior for translation"""
        return cls.translate_escaped_str(val)

    @classmethod
    def translate_none(cls, val):
        """Default behavior for translation"""
        return cls.translate_raw_str(val)

    @classmethod
    def translate_int(cls, val):
        """Default behavior for translation"""
        return cls.translate_raw_str(val)

    @classmethod
    def translate_float(cls, val):
        """Default behavior for translation"""
        return cls.translate_raw_str(val)

    @classmethod
    def translate_bool(cls, val):
        """Default behavior for translation"""
        return "true" if val else "false"

    @classmethod
    def translate_dict(cls, val):
        raise NotImplementedError(f"dict type translation not implemented for {cls}")

    @classmethod
    def translate_list(cls, val):
        raise NotImplementedError(f"list type translation not implemented for {cls}")

    @classmethod
    def translate(cls, val):
        """Translate each of the standard json/yaml types to appropriate objects."""
        if val is None:
            return cls.translate_none(val)
        elif isinstance(val, str):
            return cls.translate_str(val)
        # Needs to be before integer checks
        elif isinstance(val, bool):
            return cls.translate_bool(val)
        elif isinstance(val, int):
            return cls.translate_int(val)
        elif isinstance(val, float):
            return cls.translate_float(val)
        elif isinstance(val, dict):
            return cls.translate_dict(val)
        elif isinstance(val, list):
            return cls.translate_list(val)
        # Use this generic translation as a last resort
        return cls.translate_escaped_str(val)

    @classmethod
    def comment(cls, cmt_str):
        raise NotImplementedError(f"comment translation not implemented for {cls}")

    @classmethod
    def assign(cls, name, str_val):
        return f"{name} = {str_val}"

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        content = f"{cls.comment(comment)}\n"
        for name, val in parameters.items():
            content += f"{cls.assign(name, cls.translate(val))}\n"
        return content

    @classmethod
    def inspect(cls, parameters_cell):
        """The parameters a ``parameters`` cell defines, as papermill's ``--help-notebook`` shows them."""
        raise NotImplementedError(f"parameters introspection not implemented for {cls}")

    # --- ours ------------------------------------------------------------------------

    @classmethod
    def written_name(cls, name: str) -> str:
        """The variable the injected cell assigns for parameter ``name``."""
        return name

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Why ``name`` cannot be a variable in this language, or None."""
        written = cls.written_name(name)
        if not cls.NAME.fullmatch(written):
            return f"is not a valid {cls.language_name} variable name"
        if (written.lower() if cls.KEYWORDS_FOLD else written) in cls.KEYWORDS:
            return f"is a reserved word in {cls.language_name}"
        return None

    @classmethod
    def value_problem(cls, value: Any) -> str | None:
        """Why this translator cannot write ``value``, or None (papermill would raise or write bad code)."""
        try:
            cls.translate(value)
        except NotImplementedError:
            kinds: dict[type, str] = {dict: "an object (dict)", list: "a list"}
            kind = kinds.get(type(value), "null" if value is None else type(value).__name__)
            return f"is {kind}, which papermill's {cls.language_name} translator cannot write"
        return None

    @classmethod
    def assigned_names(cls, source: str) -> set[str] | None:
        """Names a parameters cell assigns (None: this language's cells are not inspected)."""
        if cls.ASSIGNMENT is None:
            return None
        return {m.group(1) for m in cls.ASSIGNMENT.finditer(source)}


class PythonTranslator(Translator):
    language_name = "Python"
    # Pattern to capture parameters within cell input
    PARAMETER_PATTERN = re.compile(
        r"^(?P<target>\w[\w_]*)\s*(:\s*[\"']?(?P<annotation>\w[\w_\[\],\s]*)[\"']?\s*)?=\s*(?P<value>.*?)(\s*#\s*(type:\s*(?P<type_comment>[^\s]*)\s*)?(?P<help>.*))?$"
    )

    @classmethod
    def translate_float(cls, val):
        if math.isfinite(val):
            return cls.translate_raw_str(val)
        elif math.isnan(val):
            return "float('nan')"
        elif val < 0:
            return "float('-inf')"
        else:
            return "float('inf')"

    @classmethod
    def translate_bool(cls, val):
        return cls.translate_raw_str(val)

    @classmethod
    def translate_dict(cls, val):
        escaped = ", ".join([f"{cls.translate_str(k)}: {cls.translate(v)}" for k, v in val.items()])
        return f"{{{escaped}}}"

    @classmethod
    def translate_list(cls, val):
        escaped = ", ".join([cls.translate(v) for v in val])
        return f"[{escaped}]"

    @classmethod
    def comment(cls, cmt_str):
        return f"# {cmt_str}".strip()

    @classmethod
    def inspect(cls, parameters_cell):
        """papermill's ``PythonTranslator.inspect``: name, type, default and help of each parameter."""
        params = []
        src = parameters_cell["source"]

        def flatten_accumulator(accumulator):
            """Flatten a multilines variable definition (comments kept only on the last line: the help)."""
            flat_string = ""
            for line in accumulator[:-1]:
                if "#" in line:
                    comment_pos = line.index("#")
                    flat_string += line[:comment_pos].strip()
                else:
                    flat_string += line.strip()
            if len(accumulator):
                flat_string += accumulator[-1].strip()
            return flat_string

        # Lists and dicts may span lines: group the lines between lines with an assignment.
        grouped_variable = []
        accumulator = []
        for line in src.splitlines():
            if len(line.strip()) == 0 or line.strip().startswith("#"):
                continue  # Skip blank and comment

            nequal = line.count("=")
            if nequal > 0:
                grouped_variable.append(flatten_accumulator(accumulator))
                accumulator = []
                if nequal > 1:  # papermill logs "Unable to parse line" and skips it
                    continue

            accumulator.append(line)
        grouped_variable.append(flatten_accumulator(accumulator))

        for definition in grouped_variable:
            if len(definition) == 0:
                continue

            match = re.match(cls.PARAMETER_PATTERN, definition)
            if match is not None:
                attr = match.groupdict()
                if attr["target"] is None:  # Fail to get variable name
                    continue

                type_name = str(attr["annotation"] or attr["type_comment"] or None)
                params.append(
                    Parameter(
                        name=attr["target"].strip(),
                        inferred_type_name=type_name.strip(),
                        default=str(attr["value"]).strip(),
                        help=str(attr["help"] or "").strip(),
                    )
                )

        return params

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        # Python's own rule: str.isidentifier() (Unicode letters too: 'café') and no keyword
        # ('class'); soft keywords ('match', 'type', '_') are fine as variables.
        if not name.isidentifier():
            return "is not a valid Python identifier"
        if keyword.iskeyword(name):
            return "is a Python keyword"
        return None

    @classmethod
    def assigned_names(cls, source: str) -> set[str] | None:
        return python_assigned_names(source)


class RTranslator(Translator):
    language_name = "R"
    # R's syntactic names: letters (Unicode ones too), digits, '.' and '_'; starting with a
    # letter, or a '.' not followed by a digit (R manual, ?make.names).
    NAME = re.compile(r"(?:[^\W\d_]|\.(?!\d))[\w.]*")
    KEYWORDS = frozenset({
        "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE", "FALSE", "NULL",
        "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_", "in", "...",
    })
    ASSIGNMENT = re.compile(r"^[ \t]*([.\w]+)[ \t]*(?:<<?-|=(?!=))", re.MULTILINE)

    @classmethod
    def translate_none(cls, val):
        return "NULL"

    @classmethod
    def translate_bool(cls, val):
        return "TRUE" if val else "FALSE"

    @classmethod
    def translate_dict(cls, val):
        escaped = ", ".join([f"{cls.translate_str(k)} = {cls.translate(v)}" for k, v in val.items()])
        return f"list({escaped})"

    @classmethod
    def translate_list(cls, val):
        escaped = ", ".join([cls.translate(v) for v in val])
        return f"list({escaped})"

    @classmethod
    def comment(cls, cmt_str):
        return f"# {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        # Leading '_' aren't legal R variable names -- so we drop them when injecting
        while name.startswith("_"):
            name = name[1:]
        return f"{name} = {str_val}"

    @classmethod
    def written_name(cls, name: str) -> str:
        return name.lstrip("_")

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        written = cls.written_name(name)
        if re.fullmatch(r"\.\.\d+", written):
            return "is a reserved word in R"
        return super().name_problem(name)


class ScalaTranslator(Translator):
    language_name = "Scala"
    NAME = re.compile(r"(?:[^\W\d]|\$)[\w$]*")  # '$' counts as a letter
    KEYWORDS = frozenset({
        "abstract", "case", "catch", "class", "def", "do", "else", "extends", "false", "final", "finally",
        "for", "forSome", "if", "implicit", "import", "lazy", "match", "new", "null", "object", "override",
        "package", "private", "protected", "return", "sealed", "super", "this", "throw", "trait", "try",
        "true", "type", "val", "var", "while", "with", "yield", "_", "enum", "export", "given", "then",
    })
    ASSIGNMENT = re.compile(r"^[ \t]*(?:(?:private|protected|lazy|final|implicit)[ \t]+)*(?:val|var)[ \t]+(\w+)",
                            re.MULTILINE)

    @classmethod
    def translate_int(cls, val):
        strval = cls.translate_raw_str(val)
        return f"{strval}L" if (val > 2147483647 or val < -2147483648) else strval

    @classmethod
    def translate_dict(cls, val):
        """Translate dicts to scala Maps"""
        escaped = ", ".join([f"{cls.translate_str(k)} -> {cls.translate(v)}" for k, v in val.items()])
        return f"Map({escaped})"

    @classmethod
    def translate_list(cls, val):
        """Translate list to scala Seq"""
        escaped = ", ".join([cls.translate(v) for v in val])
        return f"Seq({escaped})"

    @classmethod
    def comment(cls, cmt_str):
        return f"// {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        return f"val {name} = {str_val}"


class JuliaTranslator(Translator):
    language_name = "Julia"
    # Julia identifiers may end in (and contain) '!' after the first character.
    NAME = re.compile(r"[^\W\d][\w!]*")
    KEYWORDS = frozenset({
        "baremodule", "begin", "break", "catch", "const", "continue", "do", "else", "elseif", "end",
        "export", "false", "finally", "for", "function", "global", "if", "import", "let", "local", "macro",
        "module", "quote", "return", "struct", "true", "try", "using", "while", "public",
    })
    ASSIGNMENT = re.compile(r"^[ \t]*(?:(?:const|global|local)[ \t]+)?([\w!]+)[ \t]*(?:::[^=\n]*)?=(?!=)",
                            re.MULTILINE)

    @classmethod
    def translate_none(cls, val):
        return "nothing"

    @classmethod
    def translate_dict(cls, val):
        escaped = ", ".join([f"{cls.translate_str(k)} => {cls.translate(v)}" for k, v in val.items()])
        return f"Dict({escaped})"

    @classmethod
    def translate_list(cls, val):
        escaped = ", ".join([cls.translate(v) for v in val])
        return f"[{escaped}]"

    @classmethod
    def comment(cls, cmt_str):
        return f"# {cmt_str}".strip()


class MatlabTranslator(Translator):
    language_name = "MATLAB"
    NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")  # namelengthmax is 63
    KEYWORDS = frozenset({
        "break", "case", "catch", "classdef", "continue", "else", "elseif", "end", "for", "function", "global",
        "if", "otherwise", "parfor", "persistent", "return", "spmd", "switch", "try", "while",
    })
    ASSIGNMENT = re.compile(r"^[ \t]*(\w+)[ \t]*=(?!=)", re.MULTILINE)

    @classmethod
    def translate_escaped_str(cls, str_val):
        """Translate a string to an escaped Matlab string"""
        if isinstance(str_val, str):
            str_val = str_val.encode("unicode_escape")
            str_val = str_val.decode("utf-8")
            str_val = str_val.replace('"', '""')
        return f'"{str_val}"'

    @staticmethod
    def __translate_char_array(str_val):
        """Translates a string to a Matlab char array"""
        if isinstance(str_val, str):
            str_val = str_val.encode("unicode_escape")
            str_val = str_val.decode("utf-8")
            str_val = str_val.replace("'", "''")
        return f"'{str_val}'"

    @classmethod
    def translate_none(cls, val):
        return "NaN"

    @classmethod
    def translate_dict(cls, val):
        keys = ", ".join([f"{cls.__translate_char_array(k)}" for k, v in val.items()])
        vals = ", ".join([f"{cls.translate(v)}" for k, v in val.items()])
        return f"containers.Map({{{keys}}}, {{{vals}}})"

    @classmethod
    def translate_list(cls, val):
        escaped = ", ".join([cls.translate(v) for v in val])
        return f"{{{escaped}}}"

    @classmethod
    def comment(cls, cmt_str):
        return f"% {cmt_str}".strip()

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        content = f"{cls.comment(comment)}\n"
        for name, val in parameters.items():
            content += f"{cls.assign(name, cls.translate(val))};\n"
        return content


class CSharpTranslator(Translator):
    language_name = "C#"
    NAME = re.compile(r"@?[^\W\d]\w*")
    KEYWORDS = frozenset({
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const",
        "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit",
        "extern", "false", "finally", "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int",
        "interface", "internal", "is", "lock", "long", "namespace", "new", "null", "object", "operator", "out",
        "override", "params", "private", "protected", "public", "readonly", "ref", "return", "sbyte", "sealed",
        "short", "sizeof", "stackalloc", "static", "string", "struct", "switch", "this", "throw", "true", "try",
        "typeof", "uint", "ulong", "unchecked", "unsafe", "ushort", "using", "virtual", "void", "volatile",
        "while",
    })
    ASSIGNMENT = re.compile(r"^[ \t]*(?:var|[\w.<>\[\],?]+)[ \t]+@?(\w+)[ \t]*=(?!=)", re.MULTILINE)

    @classmethod
    def translate_none(cls, val):
        # Can't figure out how to do this as nullable
        raise NotImplementedError("Option type not implemented for C#.")

    @classmethod
    def translate_bool(cls, val):
        return "true" if val else "false"

    @classmethod
    def translate_int(cls, val):
        strval = cls.translate_raw_str(val)
        return f"{strval}L" if (val > 2147483647 or val < -2147483648) else strval

    @classmethod
    def translate_dict(cls, val):
        """Translate dicts to nontyped dictionary"""

        kvps = ", ".join([f"{{ {cls.translate_str(k)} , {cls.translate(v)} }}" for k, v in val.items()])
        return f"new Dictionary<string,Object>{{ {kvps} }}"

    @classmethod
    def translate_list(cls, val):
        """Translate list to array"""
        escaped = ", ".join([cls.translate(v) for v in val])
        return f"new [] {{ {escaped} }}"

    @classmethod
    def comment(cls, cmt_str):
        return f"// {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        return f"var {name} = {str_val};"


class FSharpTranslator(Translator):
    language_name = "F#"
    NAME = re.compile(r"[^\W\d][\w']*")
    KEYWORDS = frozenset({
        "abstract", "and", "as", "assert", "base", "begin", "class", "default", "delegate", "do", "done",
        "downcast", "downto", "elif", "else", "end", "exception", "extern", "false", "finally", "fixed", "for",
        "fun", "function", "global", "if", "in", "inherit", "inline", "interface", "internal", "lazy", "let",
        "match", "member", "module", "mutable", "namespace", "new", "not", "null", "of", "open", "or",
        "override", "private", "public", "rec", "return", "select", "sig", "static", "struct", "then", "to",
        "true", "try", "type", "upcast", "use", "val", "void", "when", "while", "with", "yield", "const",
    })
    ASSIGNMENT = re.compile(r"^[ \t]*let[ \t]+(?:mutable[ \t]+)?(\w+)", re.MULTILINE)

    @classmethod
    def translate_none(cls, val):
        return "None"

    @classmethod
    def translate_bool(cls, val):
        return "true" if val else "false"

    @classmethod
    def translate_int(cls, val):
        strval = cls.translate_raw_str(val)
        return f"{strval}L" if (val > 2147483647 or val < -2147483648) else strval

    @classmethod
    def translate_dict(cls, val):
        tuples = "; ".join([f"({cls.translate_str(k)}, {cls.translate(v)} :> IComparable)" for k, v in val.items()])
        return f"[ {tuples} ] |> Map.ofList"

    @classmethod
    def translate_list(cls, val):
        escaped = "; ".join([cls.translate(v) for v in val])
        return f"[ {escaped} ]"

    @classmethod
    def comment(cls, cmt_str):
        return f"(* {cmt_str} *)".strip()

    @classmethod
    def assign(cls, name, str_val):
        return f"let {name} = {str_val}"


class PowershellTranslator(Translator):
    language_name = "PowerShell"
    NAME = re.compile(r"\w+")
    # Automatic variables PowerShell refuses to overwrite (case-insensitive).
    KEYWORDS = frozenset({"true", "false", "null", "pid", "pshome", "host", "shellid", "executioncontext"})
    KEYWORDS_FOLD = True
    ASSIGNMENT = re.compile(r"^[ \t]*\$(\w+)[ \t]*=(?!=)", re.MULTILINE)

    @classmethod
    def translate_escaped_str(cls, str_val):
        """Translate a string to an escaped Matlab string"""
        if isinstance(str_val, str):
            str_val = str_val.encode("unicode_escape")
            str_val = str_val.decode("utf-8")
            str_val = str_val.replace('"', '`"')
        return f'"{str_val}"'

    @classmethod
    def translate_float(cls, val):
        if math.isfinite(val):
            return cls.translate_raw_str(val)
        elif math.isnan(val):
            return "[double]::NaN"
        elif val < 0:
            return "[double]::NegativeInfinity"
        else:
            return "[double]::PositiveInfinity"

    @classmethod
    def translate_none(cls, val):
        return "$Null"

    @classmethod
    def translate_bool(cls, val):
        return "$True" if val else "$False"

    @classmethod
    def translate_dict(cls, val):
        kvps = "\n ".join([f"{cls.translate_str(k)} = {cls.translate(v)}" for k, v in val.items()])
        return f"@{{{kvps}}}"

    @classmethod
    def translate_list(cls, val):
        escaped = ", ".join([cls.translate(v) for v in val])
        return f"@({escaped})"

    @classmethod
    def comment(cls, cmt_str):
        return f"# {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        return f"${name} = {str_val}"


class BashTranslator(Translator):
    language_name = "bash"
    NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # bash's legal_identifier: ASCII only
    # Variables bash keeps read-only: assigning one fails the cell.
    KEYWORDS = frozenset({"BASHOPTS", "BASH_VERSINFO", "EUID", "PPID", "SHELLOPTS", "UID"})
    ASSIGNMENT = re.compile(
        r"^[ \t]*(?:(?:export|readonly|local|declare(?:[ \t]+-\w+)*|typeset(?:[ \t]+-\w+)*)[ \t]+)?([A-Za-z_]\w*)\+?=",
        re.MULTILINE,
    )

    @classmethod
    def translate_none(cls, val):
        return ""

    @classmethod
    def translate_bool(cls, val):
        return "true" if val else "false"

    @classmethod
    def translate_escaped_str(cls, str_val):
        return shlex.quote(str(str_val))

    @classmethod
    def translate_list(cls, val):
        escaped = " ".join([cls.translate(v) for v in val])
        return f"({escaped})"

    @classmethod
    def comment(cls, cmt_str):
        return f"# {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        return f"{name}={str_val}"

    @classmethod
    def value_problem(cls, value: Any) -> str | None:
        problem = super().value_problem(value)
        if problem is None and isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
            return "is a list holding lists or objects; bash arrays hold only plain values"
        return problem


class PapermillTranslators:
    """papermill's registry: translators by kernel name or language."""

    def __init__(self):
        self._translators = {}

    def register(self, language, translator):
        self._translators[language] = translator

    def find_translator(self, kernel_name, language):
        if kernel_name in self._translators:
            return self._translators[kernel_name]
        elif language in self._translators:
            return self._translators[language]
        # Ours: a language spelled in another case ("r" for "R") or an old "python3".
        folded = {str(key).lower(): value for key, value in self._translators.items()}
        wanted = str(language or "").lower()
        if wanted in folded:
            return folded[wanted]
        if wanted.startswith("python"):
            return self._translators["python"]
        raise PayloadInvalid(
            f"No parameter translator for kernel {kernel_name!r} or language {language!r}: papermill injects "
            f"parameters only into {', '.join(sorted(LANGUAGES))} notebooks (and kernels "
            f"{', '.join(sorted(KERNEL_OVERRIDES))}); run it without parameters",
            kernel=kernel_name, language=language,
        )


#: Languages papermill registers, and its per-kernel overrides (papermill 2.7).
LANGUAGES = {
    "python": PythonTranslator, "R": RTranslator, "scala": ScalaTranslator, "julia": JuliaTranslator,
    "matlab": MatlabTranslator, ".net-csharp": CSharpTranslator, ".net-fsharp": FSharpTranslator,
    ".net-powershell": PowershellTranslator, "bash": BashTranslator,
}
KERNEL_OVERRIDES = {"pysparkkernel": PythonTranslator, "sparkkernel": ScalaTranslator, "sparkrkernel": RTranslator}

papermill_translators = PapermillTranslators()
for _key, _translator in {**LANGUAGES, **KERNEL_OVERRIDES}.items():
    papermill_translators.register(_key, _translator)


def translate_parameters(kernel_name, language, parameters, comment="Parameters"):
    return papermill_translators.find_translator(kernel_name, language).codify(parameters, comment)


# --- the one check of parameter names and values -----------------------------------------


def notebook_language(metadata: Mapping[str, Any]) -> str | None:
    """The notebook's language as papermill reads it: ``language_info.name``, else ``kernelspec.language``."""
    for key in ("language_info", "kernelspec"):
        section = metadata.get(key) or {}
        value = section.get("name" if key == "language_info" else "language") if isinstance(section, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return None


def check_parameters(parameters: Mapping[str, Any], *, kernel_name: str | None, language: str | None,
                     max_listed: int = 20) -> type[Translator]:
    """The translator for this kernel/language; PayloadInvalid naming every parameter it cannot write.

    Names follow the language's own rules (:meth:`Translator.name_problem`); values must be
    ones its translator writes as valid code (:meth:`Translator.value_problem`).
    """
    translator = papermill_translators.find_translator(kernel_name, language)
    problems: list[str] = []
    written: dict[str, str] = {}
    for name, value in parameters.items():
        if not isinstance(name, str):
            problems.append(f"parameter name {name!r} is not a string")
            continue
        if why := translator.name_problem(name):
            problems.append(f"parameter name {name!r} {why}")
        elif (other := written.setdefault(translator.written_name(name), name)) != name:
            problems.append(f"parameters {other!r} and {name!r} are both written as "
                            f"{translator.written_name(name)!r} in {translator.language_name}")
        if why := translator.value_problem(value):
            problems.append(f"parameter {name!r} {why}")
    if problems:
        listed = problems[:max_listed]
        more = f"; and {len(problems) - len(listed)} more problem(s)" if len(problems) > len(listed) else ""
        raise PayloadInvalid(
            f"Invalid parameters for this {translator.language_name} notebook: " + "; ".join(listed) + more,
            problems=listed, language=language, kernel=kernel_name,
        )
    return translator


PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list((cell.get("metadata") or {}).get("tags") or [])


def check_notebook_parameters(
    metadata: Mapping[str, Any], cells: list[Mapping[str, Any]], parameters: Mapping[str, Any], *,
    kernel_name: str | None = None, language: str | None = None,
) -> tuple[type[Translator], list[str]]:
    """The translator papermill would choose for this notebook, and the warnings injecting
    ``parameters`` gives; PayloadInvalid (:func:`check_parameters`) for what the language cannot take.

    On a notebook's plain JSON (``metadata``, ``cells``) or an nbformat node alike, so the CLI can
    ask before it imports nbformat. papermill's choice: the given kernel name, else the notebook's;
    the given language, else the notebook's (``language_info.name``, then ``kernelspec.language``),
    else Python.
    """
    if not isinstance(parameters, Mapping):
        raise PayloadInvalid("parameters must be a JSON object of name: value")
    spec = metadata.get("kernelspec") or {}
    kernel = kernel_name or (spec.get("name") if isinstance(spec, Mapping) else None)
    translator = check_parameters(parameters, kernel_name=kernel,
                                  language=language or notebook_language(metadata) or "python")
    warnings: list[str] = []
    param_cell = next((cell for cell in cells if PARAMETERS_TAG in _tags(cell)), None)
    if param_cell is None:
        # One warning says it all: every parameter is "undefined" here.
        warnings.append(
            "Input notebook does not contain a cell with tag 'parameters'; parameters were injected at the top"
        )
        return translator, warnings
    if param_cell.get("cell_type") != "code":  # a markdown or raw cell tagged by mistake
        warnings.append("The cell tagged 'parameters' is not a code cell; parameter names were not checked")
        return translator, warnings
    source = param_cell.get("source", "")
    known = translator.assigned_names("".join(source) if isinstance(source, list) else source)
    if known is not None:
        warnings.extend(
            f"Parameter '{name}' is not defined in the notebook's parameters cell"
            for name in parameters
            if translator.written_name(name) not in known
        )
    return translator, warnings


# --- which names a Python parameters cell defines -----------------------------------------


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
_PYTHON_ASSIGNMENT_LINE = re.compile(r"^\s*([^\W\d]\w*)\s*(?::[^=]*)?=(?!=)", re.MULTILINE)


def python_assigned_names(source: str) -> set[str]:
    """Names a Python cell assigns at notebook level.

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
        names |= set(_PYTHON_ASSIGNMENT_LINE.findall(source))
    return names
