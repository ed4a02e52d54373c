"""TeX math as MathML, rendered when the page is made (the page loads no MathJax).

Markdown math (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``, ``\\begin{equation}…``) and
``text/latex`` outputs become MathML via ``latex2mathml`` (pure Python), which browsers draw
natively (MathML Core: Chromium 109+, Firefox, Safari). What it cannot convert stays TeX
source, as nbconvert leaves it.
"""

from __future__ import annotations

import re

from latex2mathml.converter import convert
from nbconvert.filters.markdown_mistune import IPythonRenderer

#: MathML Core elements and attributes the sanitiser keeps (sanitize.py).
TAGS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac", "msqrt",
    "mroot", "munder", "mover", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
    "menclose", "merror", "semantics", "annotation", "mmultiscripts", "mprescripts", "none",
})
ATTRIBUTES = frozenset({
    "xmlns", "display", "mathvariant", "mathsize", "mathcolor", "mathbackground", "stretchy", "fence",
    "separator", "symmetric", "largeop", "movablelimits", "accent", "accentunder", "lspace", "rspace",
    "minsize", "maxsize", "form", "width", "height", "depth", "linethickness", "columnalign", "rowalign",
    "columnspacing", "rowspacing", "columnlines", "rowlines", "frame", "notation", "scriptlevel",
    "displaystyle", "encoding", "columnspan", "rowspan",
})
_DELIMITED = re.compile(r"^\s*(?:\$\$(?P<a>.*)\$\$|\$(?P<b>.*)\$|\\\[(?P<c>.*)\\\]|\\\((?P<d>.*)\\\))\s*$", re.DOTALL)


def to_mathml(tex: str, *, block: bool) -> str | None:
    """MathML for ``tex`` (without its delimiters), or None if it cannot be converted."""
    try:
        return convert(tex.strip(), display="block" if block else "inline")
    except Exception:  # noqa: BLE001 — any TeX latex2mathml does not know stays as source
        return None


def latex_output(text: str) -> str | None:
    """A ``text/latex`` output (``$$…$$`` or ``$…$``, as sympy and IPython.display.Math give) as MathML."""
    match = _DELIMITED.match(text)
    if not match:
        return None
    body = next(group for group in match.groups() if group is not None)
    return to_mathml(body, block=True)


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with math as MathML."""

    def block_math(self, body: str) -> str:
        return to_mathml(body, block=True) or super().block_math(body)

    def inline_math(self, body: str) -> str:
        return to_mathml(body, block=False) or super().inline_math(body)

    def latex_environment(self, name: str, body: str) -> str:
        return to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", block=True) or super().latex_environment(name, body)
