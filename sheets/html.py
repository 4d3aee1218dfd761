"""Render sheets as self-contained HTML: math as MathML, figures as inline SVG.

Every formula is SymPy's LaTeX (or the $...$ of our own prose), converted to MathML by
latex2mathml, so that browsers and screen readers show it natively: no script, no font,
nothing fetched. Everything else goes through Jinja's autoescape; only the MathML and the
SVG we make are marked safe.
"""
from __future__ import annotations

import functools
import html
import re

import jinja2
from latex2mathml.converter import convert
from markupsafe import Markup

from . import render

_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)
# The LaTeX escapes our prose uses outside math, shown as the characters they stand for.
_TEXT_ESCAPES = {r"\%": "%", r"\&": "&", r"\#": "#", r"\_": "_", r"\$": "$", r"\{": "{", r"\}": "}",
                 "~": "\u00a0", "---": "\u2014", "--": "\u2013", "``": "\u201c", "''": "\u201d"}
# latex2mathml writes a bare '&' for an unknown '&' (outside a matrix); HTML wants it escaped.
_BARE_AMPERSAND = re.compile(r"&(?!#x[0-9A-Fa-f]+;|#[0-9]+;|[A-Za-z][A-Za-z0-9]*;)")
# latex2mathml writes \ln as a bare <mi>ln</mi>, so "N \ln(3)" would run together as "Nln(3)".
# TeX sets a thin space before such an operator after a symbol, and nothing between it and
# its argument; MathML says the same with an <mspace> and the invisible function application.
_FUNCTION = re.compile(r"(</mi>|</mn>|</msub>|</msup>|</msubsup>|</mrow>)?<mi>(ln|log|exp|sin|cos|tan|det|arg)</mi>")


def _function_spacing(match: re.Match) -> str:
    before = match.group(1) or ""
    space = '<mspace width="0.1667em" />' if before else ""
    return f"{before}{space}<mi>{match.group(2)}</mi><mo>&#x02061;</mo>"


@functools.lru_cache(maxsize=8192)
def mathml(latex: str, display: bool = False) -> Markup:
    """One formula as a <math> element. Cached: the same formulas recur on every variant."""
    converted = convert(str(latex), display="block" if display else "inline")
    return Markup(_FUNCTION.sub(_function_spacing, _BARE_AMPERSAND.sub("&amp;", converted)))


def inline_math(latex: str) -> Markup:
    return mathml(str(latex), False)


def display_math(latex: str) -> Markup:
    return Markup('<div class="display">') + mathml(str(latex), True) + Markup("</div>")


def plain_text(text: str) -> Markup:
    """Prose outside math: our LaTeX escapes as characters, then HTML-escaped."""
    for escaped, char in _TEXT_ESCAPES.items():
        text = text.replace(escaped, char)
    return Markup.escape(text)


@functools.lru_cache(maxsize=8192)
def prose(text: str) -> Markup:
    """Our LaTeX-safe prose (math only inside $...$ or $$...$$) as HTML with MathML."""
    protected = str(text).replace(r"\$", "\0")
    pieces, position = [], 0
    for match in _MATH.finditer(protected):
        pieces.append(plain_text(protected[position:match.start()].replace("\0", r"\$")))
        if match.group(1) is not None:
            pieces.append(display_math(match.group(1).replace("\0", r"\$")))
        else:
            pieces.append(inline_math(match.group(2).replace("\0", r"\$")))
        position = match.end()
    pieces.append(plain_text(protected[position:].replace("\0", r"\$")))
    return Markup("").join(pieces)


def environment() -> jinja2.Environment:
    """Autoescaping and strict: a name a template does not get is an error, not an empty string."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(render.TEMPLATES)),
                             undefined=jinja2.StrictUndefined, autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             bytecode_cache=render.template_cache({"autoescape": "html"}))
    env.filters["math"] = inline_math
    env.filters["display_math"] = display_math
    env.filters["prose"] = prose
    return env


HTML = environment()


def figure_svg(derivation) -> Markup:
    from . import svg
    return svg.figure_svg(derivation.figure) if derivation.figure is not None else Markup("")


def render_html(sheet: render.SheetView, solutions: bool) -> str:
    return HTML.get_template("sheet.html.j2").render(sheet=sheet, solutions=solutions, figure_svg=figure_svg)


def render_solution(derivation) -> Markup:
    """The worked solution alone (steps, checks, answer), for Moodle's general feedback."""
    return Markup(HTML.get_template("solution.html.j2").render(d=derivation))


def escape_text(text: str) -> str:
    """Plain text for HTML written outside a template (Moodle's feedback)."""
    return html.escape(str(text), quote=True)
