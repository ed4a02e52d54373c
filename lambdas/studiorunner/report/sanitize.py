"""HTML from a notebook's outputs and markdown, made safe to open: no script can run.

nbconvert's own ``clean_html`` (bleach's eleven default tags plus a few) escapes headings,
paragraphs, images and pandas' ``<thead>``/``<th>``, so a sanitised page would show markup as
text. This is the same bleach, with an allow-list close to JupyterLab's sanitizer
(``@jupyterlab/apputils`` ``Sanitizer``): formatting, tables, lists, images; no ``script``,
``style``, ``iframe``, ``object``, ``form`` or event-handler attribute; ``href`` only to
http(s), mailto or an anchor on the page; ``src`` only to an inline ``data:image/…`` URI
(an image from the internet would be a request when the page is opened). The page's
Content-Security-Policy (``page.CSP``) is the second line: nothing may run even if
something slipped through.
"""

from __future__ import annotations

import re

import bleach
from bleach.css_sanitizer import ALLOWED_CSS_PROPERTIES, CSSSanitizer

from studiorunner.report import math

TAGS = frozenset({
    "a", "abbr", "acronym", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "cite", "code", "col",
    "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "h1",
    "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "label", "li", "mark", "ol", "p", "pre", "q",
    "rp", "rt", "ruby", "s", "samp", "small", "span", "strike", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
}) | math.TAGS
_COMMON = {"class", "id", "title", "lang", "dir", "align", "style"}
_PER_TAG = {
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign", "halign"},
    "th": {"colspan", "rowspan", "valign", "halign", "scope"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "ol": {"start", "type", "reversed"},
    "li": {"value"},
    "font": {"color", "size", "face"},
    "details": {"open"},
    "time": {"datetime"},
}
_SAFE_HREF = ("http://", "https://", "mailto:", "#")
_SAFE_IMAGES = ("data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/webp;",
                "data:image/svg+xml;")  # an SVG in an <img> runs no script
_CSS = CSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES)


def _allowed(tag: str, name: str, value: str) -> bool:
    if tag in math.TAGS and name in math.ATTRIBUTES:
        return name != "xmlns" or value == "http://www.w3.org/1998/Math/MathML"
    if name in _COMMON or name in _PER_TAG.get(tag, ()):
        if name == "href":
            return value.strip().lower().startswith(_SAFE_HREF)
        if name == "src":
            return value.strip().lower().startswith(_SAFE_IMAGES)
        return True
    return False


_CLEANER = bleach.Cleaner(tags=TAGS, attributes=_allowed, protocols={"http", "https", "mailto", "data"},
                          strip=True, strip_comments=True, css_sanitizer=_CSS)


# Elements whose content is code or a document of its own: removed with what they hold (bleach
# would keep their text). Cosmetic only: bleach below removes the elements themselves anyway.
_WITH_CONTENT = re.compile(r"<(script|style|iframe|object|embed|template|noscript|textarea|title)\b.*?</\1\s*>",
                           re.IGNORECASE | re.DOTALL)


def clean_html(element: str | bytes) -> str:
    """``element`` with only the allowed tags and attributes (nbconvert's ``clean_html`` filter's place)."""
    text = element.decode() if isinstance(element, bytes) else str(element)
    return _CLEANER.clean(_WITH_CONTENT.sub("", text))
