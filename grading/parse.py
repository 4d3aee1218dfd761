"""Reading a student's answer, in SymPy syntax or in LaTeX, by whitelist.

Raw text never reaches eval, exec, sympify or parse_expr. Both readers build the
SymPy expression themselves from a closed vocabulary (the problem's parameter
symbols, e, pi) and a closed set of functions, and refuse everything else.

SymPy syntax: `ast.parse(text, mode="eval")` gives a syntax tree only (nothing runs);
the walker accepts numbers, known names, + - * / ** (and ^), unary signs and calls
of whitelisted functions, and refuses attribute access, subscripts, lambdas,
comprehensions, strings, keywords and names beginning with `_`.

LaTeX: pylatexenc's LatexWalker reads the text into nodes (chars, groups, macros),
and a small recursive-descent parser turns the nodes into SymPy. We chose pylatexenc
over sympy.parsing.latex.parse_latex because (1) the ANTLR backend is tied to one
runtime version (sympy 1.14 needs antlr4-python3-runtime 4.11; 4.13 fails to import
its generated parser), and the Lark backend needs another dependency with its own
grammar quirks; (2) parse_latex reads `e` as a symbol, not Euler's number, does not
know the exam's spellings (\\hat{z}, \\sigma standing for the square root of
sigma2, \\epsilon_1) and accepts any macro name as a symbol; (3) with pylatexenc every
macro is an explicit node that our whitelist either translates or refuses, so
\\input, \\def, \\csname and friends are refused by name. pylatexenc is a pure-Python
reader: it expands nothing and opens no file.
"""
from __future__ import annotations

import ast
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Callable

import mpmath
import sympy as sp

from . import limits
from .limits import TimeLimit, time_limit


class Unreadable(ValueError):
    """The answer cannot be read (bad syntax, an unknown name, a refused construct)."""


# ------------------------------------------------------------------ vocabulary

def _log(*args):
    if len(args) == 2:
        return sp.log(args[0], args[1])
    return sp.log(args[0])


# name -> (function, allowed argument counts)
FUNCTIONS: dict[str, tuple[Callable, tuple[int, ...]]] = {
    "exp": (sp.exp, (1,)),
    "log": (_log, (1, 2)),
    "ln": (sp.log, (1,)),
    "log10": (lambda x: sp.log(x, 10), (1,)),
    "log2": (lambda x: sp.log(x, 2), (1,)),
    "sqrt": (sp.sqrt, (1,)),
    "sin": (sp.sin, (1,)),
    "cos": (sp.cos, (1,)),
    "tan": (sp.tan, (1,)),
    "sinh": (sp.sinh, (1,)),
    "cosh": (sp.cosh, (1,)),
    "tanh": (sp.tanh, (1,)),
    "abs": (sp.Abs, (1,)),
    "Abs": (sp.Abs, (1,)),
}

# LaTeX function macros (\ln, \log, ...) share the table; \log is the natural log, as
# SymPy prints it and as mathematicians read it; \log_{10} and \log_2 name their base.
LATEX_FUNCTIONS = {"exp", "log", "ln", "sin", "cos", "tan", "sinh", "cosh", "tanh"}

CONSTANTS = {"e": sp.E, "E": sp.E, "pi": sp.pi}

# Usual spellings of the contract's parameter names: (parameter, plain aliases, LaTeX spellings).
# `sigma` / \sigma is the standard deviation, the square root of the parameter sigma2.
SPELLINGS = {
    "eps": (("epsilon",), ("\\epsilon", "\\varepsilon", "\\epsilon_1", "\\epsilon_t",
                            "\\varepsilon_1", "\\varepsilon_t")),
    "zhat": (("z_hat",), ("\\hat{z}",)),
    "mu": ((), ("\\mu",)),
    "sigma2": ((), ()),
}


@dataclass
class Vocabulary:
    """What an answer may name: plain names and LaTeX spellings, each a SymPy expression."""

    names: dict[str, sp.Expr] = field(default_factory=dict)
    latex: dict[str, sp.Expr] = field(default_factory=dict)
    sums: bool = False  # \sum_{n=a}^{b} of a term free of n (audited sheets only)

    def known(self) -> str:
        shown = sorted(name for name in self.names if name not in CONSTANTS)
        return ", ".join(shown + ["e", "pi"])


def vocabulary(symbols: dict[str, sp.Symbol], extra_latex: dict[str, sp.Expr] | None = None) -> Vocabulary:
    """The vocabulary of a problem whose scalar parameters are `symbols` (name -> Symbol)."""
    names: dict[str, sp.Expr] = dict(CONSTANTS)
    latex: dict[str, sp.Expr] = {"e": sp.E, "\\pi": sp.pi, "\\mathrm{e}": sp.E}
    for name, symbol in symbols.items():
        names[name] = symbol
        if len(name) == 1:
            latex[name] = symbol
        plain, spelled = SPELLINGS.get(name, ((), ()))
        for alias in plain:
            names[alias] = symbol
        for alias in spelled:
            latex[alias] = symbol
    if "sigma2" in symbols:
        names["sigma"] = sp.sqrt(symbols["sigma2"])
        latex["\\sigma"] = sp.sqrt(symbols["sigma2"])
    latex.update(extra_latex or {})
    return Vocabulary(names, latex)


@dataclass(frozen=True)
class Parsed:
    value: object          # a SymPy expression, or a list of them
    syntax: str            # "sympy" or "latex"

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)


# ----------------------------------------------------------- safe arithmetic

def _magnitude(number: sp.Number) -> float:
    """log10 |number|, without converting a huge number to a float."""
    if number == 0:
        return 0.0
    if number.is_Rational:
        p, q = abs(int(number.p)), int(number.q)
        return (p.bit_length() - q.bit_length()) * math.log10(2)
    return float(mpmath.log10(abs(mpmath.mpf(number._mpf_))))


def _check_size(value: sp.Expr) -> sp.Expr:
    if isinstance(value, sp.Rational) and not value.is_Integer or isinstance(value, sp.Integer):
        bits = abs(int(value.p)).bit_length() + int(value.q).bit_length()
        if bits * math.log10(2) > 2 * limits.MAX_RESULT_DIGITS:
            raise Unreadable(f"a number in the answer is too large (more than {limits.MAX_RESULT_DIGITS} digits)")
    return value


def power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """base**exponent, refused when the exponent or an exact result would be huge."""
    if exponent.is_Number:
        if abs(exponent) > limits.MAX_EXPONENT:
            raise Unreadable(f"exponent {_clip(str(exponent))} is too large (at most {limits.MAX_EXPONENT} in size)")
        if base.is_Number and base != 0:
            if abs(float(exponent)) * abs(_magnitude(base)) > limits.MAX_RESULT_DIGITS:
                raise Unreadable(f"a power in the answer is too large (more than {limits.MAX_RESULT_DIGITS} digits)")
    elif exponent.has(sp.Pow) and any(p.exp.free_symbols and p.base.is_Number and abs(p.base) > 1
                                      for p in exponent.atoms(sp.Pow)):
        # a tower such as 9**9**N: its value at N = 10 has billions of digits
        raise Unreadable("a tower of powers is too large to evaluate")
    return _check_size(sp.Pow(base, exponent))


def combine(op: str, left: sp.Expr, right: sp.Expr) -> sp.Expr:
    if op == "+":
        return _check_size(left + right)
    if op == "-":
        return _check_size(left - right)
    if op == "*":
        return _check_size(left * right)
    if op == "/":
        if right == 0:
            raise Unreadable("the answer divides by zero")
        return _check_size(left / right)
    if op == "^":
        return power(left, right)
    raise Unreadable(f"operator {op} is not allowed")


def apply_function(name: str, args: list) -> sp.Expr:
    function, counts = FUNCTIONS[name]
    if len(args) not in counts:
        wanted = " or ".join(str(c) for c in counts)
        raise Unreadable(f"{name}() takes {wanted} argument(s), got {len(args)}")
    if any(isinstance(arg, list) for arg in args):
        raise Unreadable(f"{name}() of a list is not allowed")
    return function(*args)


def number_from_text(text: str) -> sp.Expr:
    digits = sum(ch.isdigit() for ch in text)
    if digits > limits.MAX_DIGITS:
        raise Unreadable(f"number '{_clip(text)}' has too many digits (at most {limits.MAX_DIGITS})")
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > 300:
        raise Unreadable(f"number '{_clip(text)}' is out of range")
    if "." in text or exponent:
        return sp.Float(text, 30)
    return sp.Integer(int(text))


def _clip(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width] + "..."


# --------------------------------------------------------------- SymPy syntax

_IMPLICIT_NUMBER = re.compile(r"(?<![\w.])((?>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?))\s*(?=[A-Za-z(])")
_IMPLICIT_PAREN = re.compile(r"\)\s*(?=[A-Za-z0-9(])")
_IMPLICIT_NAME = re.compile(r"\b([A-Za-z_]\w*)(\s+)(?=[A-Za-z_(\d])")
# "ln 2" for ln(2): a log of one bare number ending a term, as in "3/2 ln 2 - ln 3" (what follows
# a longer argument, "ln 2 x", stays ambiguous and unread, as before).
_BARE_LOG = re.compile(r"\b(ln|log)\s+(\d+(?:\.\d+)?)(?=\s*(?:$|[-+),]))")
_PYTHON_NODE_NAMES = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda expressions",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.Dict: "dictionaries", ast.Set: "sets",
    ast.Compare: "comparisons", ast.BoolOp: "boolean operators", ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignments", ast.Starred: "starred arguments", ast.JoinedStr: "strings",
    ast.Await: "await", ast.Yield: "yield", ast.Slice: "slices",
}


def parse_sympy_syntax(text: str, vocab: Vocabulary) -> Parsed:
    """A SymPy-syntax answer such as `N*log(1 + exp(-2) + exp(-4))` or `zhat + sqrt(sigma2)*eps`."""
    source = _prepare_plain(text)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as failure:
        raise Unreadable(f"cannot read '{_clip(text)}' as an expression ({type(failure).__name__})") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > limits.MAX_NODES:
        raise Unreadable(f"the answer is too complex ({nodes} parts; at most {limits.MAX_NODES})")
    body = tree.body
    if (isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == "Matrix"
            and len(body.args) == 1 and not body.keywords and isinstance(body.args[0], (ast.List, ast.Tuple))):
        body = body.args[0]  # Matrix([[0, 0], [0, 0]]), as SymPy prints a matrix: its rows
    if isinstance(body, (ast.Tuple, ast.List)):
        if not body.elts:
            raise Unreadable("the answer is an empty list")
        items = []
        for item in body.elts:  # one level of nesting, a matrix's rows, is read row by row
            if isinstance(item, (ast.Tuple, ast.List)):
                items.extend(_build(inner, vocab, source, 2) for inner in item.elts)
            else:
                items.append(_build(item, vocab, source, 1))
        if not items:
            raise Unreadable("the answer is an empty list")
        return Parsed(items, "sympy")
    return Parsed(_build(body, vocab, source, 0), "sympy")


def _prepare_plain(text: str) -> str:
    source = text.strip()
    source = source.replace("\u2212", "-").replace("\u00d7", "*").replace("\u00b7", "*")
    source = source.replace("{", "(").replace("}", ")").replace("^", "**")
    source = _BARE_LOG.sub(r"\1(\2)", source)
    source = _IMPLICIT_NUMBER.sub(r"\1*", source)
    source = _IMPLICIT_PAREN.sub(")*", source)
    # "N ln(3)": a space between a name and what follows multiplies, except after a function
    # name ("ln (3)") or a Python keyword (left for the walker to refuse).
    source = _IMPLICIT_NAME.sub(lambda m: m.group(1) + (m.group(2) if m.group(1) in FUNCTIONS or
                                                          keyword.iskeyword(m.group(1)) else "*"), source)
    return source


_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^", ast.BitXor: "^"}


def _build(node: ast.AST, vocab: Vocabulary, source: str, depth: int) -> sp.Expr:
    if depth > limits.MAX_DEPTH:
        raise Unreadable("the answer is nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise Unreadable(f"{type(node.value).__name__} values are not allowed; only numbers")
        segment = ast.get_source_segment(source, node) or repr(node.value)
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise Unreadable(f"number '{_clip(segment)}' is out of range")
        return number_from_text(segment)
    if isinstance(node, ast.Name):
        return _lookup_name(node.id, vocab)
    if isinstance(node, ast.BinOp):
        op = _BINARY.get(type(node.op))
        if op is None:
            raise Unreadable(f"operator {type(node.op).__name__} is not allowed; use + - * / ^")
        left = _build(node.left, vocab, source, depth + 1)
        right = _build(node.right, vocab, source, depth + 1)
        return combine(op, left, right)
    if isinstance(node, ast.UnaryOp):
        operand = _build(node.operand, vocab, source, depth + 1)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise Unreadable(f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise Unreadable("only calls of named functions are allowed, such as log(x) or sqrt(x)")
        name = node.func.id
        if name.startswith("_"):
            raise Unreadable(f"names beginning with '_' are not allowed ('{_clip(name)}')")
        if name not in FUNCTIONS:
            raise Unreadable(f"unknown function '{_clip(name)}'; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise Unreadable(f"keyword arguments are not allowed in {name}()")
        args = [_build(arg, vocab, source, depth + 1) for arg in node.args]
        return apply_function(name, args)
    if isinstance(node, (ast.Tuple, ast.List)):
        raise Unreadable("a list is allowed only as the whole answer, e.g. [1, 2]")
    described = _PYTHON_NODE_NAMES.get(type(node), f"Python construct {type(node).__name__}")
    raise Unreadable(f"{described} not allowed in an answer")


def _lookup_name(name: str, vocab: Vocabulary) -> sp.Expr:
    if name.startswith("_"):
        raise Unreadable(f"names beginning with '_' are not allowed ('{_clip(name)}')")
    if name in vocab.names:
        return vocab.names[name]
    if name in FUNCTIONS:
        raise Unreadable(f"function '{name}' needs an argument in parentheses, e.g. {name}(x)")
    raise Unreadable(f"unknown name '{_clip(name)}'; known: {vocab.known()}")


# ---------------------------------------------------------------------- LaTeX

# Macros that only space or size things.
_SKIP_MACROS = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "big", "Big",
                "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "limits"}
_TIMES_MACROS = {"cdot", "times"}
_TEXT_MACROS = {"text", "mathrm", "textrm", "mbox"}
_UNIT_WORDS = {"nats", "nat"}
_LATEX_TOKEN = re.compile(r"\s*(\d+\.?\d*|\.\d+|[A-Za-z]|[-+*/^_()\[\],=|!'<>:;.?~&@\"#$])")


@dataclass
class Tok:
    kind: str           # "num", "letter", "op", "group", "macro"
    text: str = ""
    nodes: list = field(default_factory=list)       # group content
    args: list = field(default_factory=list)        # macro arguments (pylatexenc nodes)
    glued: bool = False  # a letter directly after a letter, with no space


def parse_latex(text: str, vocab: Vocabulary) -> Parsed:
    """A LaTeX answer such as `N \\ln\\left(1 + e^{-2} + e^{-4}\\right)` or `\\hat{z} + \\sigma \\epsilon`."""
    source = text.strip()
    for opening, closing in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if source.startswith(opening) and source.endswith(closing) and len(source) >= len(opening) + len(closing):
            source = source[len(opening):len(source) - len(closing)].strip()
            break
    tokens = latex_tokens(source)
    parser = _LatexParser(tokens, vocab)
    value = parser.parse_top()
    return Parsed(value, "latex")


def latex_tokens(source: str) -> list[Tok]:
    from pylatexenc.latexwalker import LatexWalker, LatexWalkerError
    try:
        nodes, _, _ = LatexWalker(source, tolerant_parsing=False).get_latex_nodes()
    except (LatexWalkerError, RecursionError, IndexError, ValueError) as failure:
        raise Unreadable(f"cannot read the LaTeX '{_clip(source)}' ({_clip(str(failure), 60)})") from None
    return _flatten(nodes)


def _flatten(nodes) -> list[Tok]:
    from pylatexenc import latexwalker as lw
    tokens: list[Tok] = []
    for node in nodes or []:
        if node is None:
            continue
        if isinstance(node, lw.LatexCharsNode):
            tokens.extend(_char_tokens(node.chars))
        elif isinstance(node, lw.LatexGroupNode):
            if node.delimiters[0] != "{":
                tokens.extend(_char_tokens(node.delimiters[0]))
                tokens.extend(_flatten(node.nodelist))
                tokens.extend(_char_tokens(node.delimiters[1]))
            else:
                tokens.append(Tok("group", nodes=list(node.nodelist or [])))
        elif isinstance(node, lw.LatexMacroNode):
            name = node.macroname
            if name in _SKIP_MACROS:
                continue
            args = list(node.nodeargd.argnlist) if node.nodeargd is not None else []
            if name in _TEXT_MACROS and not (name == "mathrm" and _node_text(args) == "e"):
                words = _node_text(args).split()
                if words and all(word in _UNIT_WORDS for word in words):
                    continue  # "\text{nats}": a unit, not part of the value
                raise Unreadable(f"text \\{name}{{{_clip(_node_text(args), 20)}}} is not part of an expression")
            tokens.append(Tok("macro", name, args=args))
        elif isinstance(node, lw.LatexSpecialsNode):
            if node.specials_chars == "~":
                continue
            raise Unreadable(f"'{_clip(node.specials_chars)}' is not allowed in an expression")
        elif isinstance(node, lw.LatexEnvironmentNode):
            if node.environmentname in _MATRIX_ENVIRONMENTS:
                tokens.append(Tok("matrix", nodes=_matrix_cells(node.nodelist)))
                continue
            raise Unreadable(f"environments (\\begin{{{_clip(node.environmentname, 20)}}}) are not allowed")
        elif isinstance(node, lw.LatexCommentNode):
            raise Unreadable("TeX comments (%) are not allowed")
        elif isinstance(node, lw.LatexMathNode):
            raise Unreadable("nested math delimiters ($) are not allowed")
        else:
            raise Unreadable(f"{type(node).__name__} is not allowed in an expression")
    return tokens


_MATRIX_ENVIRONMENTS = {"matrix", "pmatrix", "bmatrix", "smallmatrix"}


def _matrix_cells(nodes) -> list[list[list]]:
    """Rows of cells of a matrix environment: & separates cells, \\\\ rows."""
    from pylatexenc import latexwalker as lw
    rows: list[list[list]] = [[[]]]
    for node in nodes or []:
        if isinstance(node, lw.LatexSpecialsNode) and node.specials_chars == "&":
            rows[-1].append([])
        elif isinstance(node, lw.LatexMacroNode) and node.macroname == "\\":
            rows.append([[]])
        else:
            rows[-1][-1].append(node)
    if rows and all(not cell for cell in rows[-1]):
        rows.pop()  # a trailing \\
    if len(rows) * max((len(row) for row in rows), default=0) > limits.MAX_NODES:
        raise Unreadable("the matrix is too large")
    return rows


def _char_tokens(chars: str) -> list[Tok]:
    tokens: list[Tok] = []
    position = 0
    previous_letter_end = -1
    while position < len(chars):
        match = _LATEX_TOKEN.match(chars, position)
        if not match:
            rest = chars[position:].strip()
            if not rest:
                break
            raise Unreadable(f"character '{_clip(rest[0])}' is not allowed in an expression")
        piece = match.group(1)
        start = match.start(1)
        if piece[0].isdigit() or (piece[0] == "." and len(piece) > 1):
            tokens.append(Tok("num", piece))
        elif piece.isalpha():
            tokens.append(Tok("letter", piece, glued=(start == previous_letter_end)))
            previous_letter_end = match.end(1)
        else:
            tokens.append(Tok("op", piece))
        position = match.end()
    return tokens


def _node_text(nodes) -> str:
    from pylatexenc import latexwalker as lw
    parts = []
    for node in nodes or []:
        if node is None:
            continue
        if isinstance(node, lw.LatexCharsNode):
            parts.append(node.chars)
        elif isinstance(node, lw.LatexGroupNode):
            parts.append(_node_text(node.nodelist))
        elif isinstance(node, lw.LatexMacroNode):
            parts.append("\\" + node.macroname)
        else:
            parts.append("?")
    return "".join(parts)


_FORBIDDEN_HINT = {"input", "include", "def", "edef", "gdef", "xdef", "let", "csname", "endcsname",
                   "newcommand", "renewcommand", "providecommand", "catcode", "write", "immediate",
                   "openout", "openin", "read", "expandafter", "usepackage", "documentclass"}


class _LatexParser:
    def __init__(self, tokens: list[Tok], vocab: Vocabulary, depth: int = 0):
        if depth > limits.MAX_DEPTH:
            raise Unreadable("the answer is nested too deeply")
        self.tokens = tokens
        self.position = 0
        self.vocab = vocab
        self.depth = depth

    # -- helpers
    def peek(self, offset: int = 0) -> Tok | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Tok:
        token = self.peek()
        if token is None:
            raise Unreadable("the expression ends too early")
        self.position += 1
        return token

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def at_macro(self, *names: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "macro" and token.text in names

    def expect_op(self, op: str) -> None:
        token = self.peek()
        if token is None or token.kind != "op" or token.text != op:
            found = "the end" if token is None else f"'{token.text or token.kind}'"
            raise Unreadable(f"expected '{op}' but found {found}")
        self.position += 1

    def sub(self, nodes) -> "_LatexParser":
        return _LatexParser(_flatten(nodes), self.vocab, self.depth + 1)

    def parse_nodes(self, nodes) -> sp.Expr:
        parser = self.sub(nodes if isinstance(nodes, list) else [nodes])
        value = parser.parse_expr()
        parser.finish()
        return value

    def arg_nodes(self, node):
        from pylatexenc import latexwalker as lw
        if node is None:
            raise Unreadable("a LaTeX command is missing its argument")
        if isinstance(node, lw.LatexGroupNode):
            return list(node.nodelist or [])
        return [node]

    def finish(self) -> None:
        token = self.peek()
        if token is not None:
            raise Unreadable(f"unexpected '{_clip(token.text or token.kind)}' in the expression")

    # -- grammar
    def parse_top(self):
        if not self.tokens:
            raise Unreadable("the answer is empty")
        matrix = self.whole_matrix()
        if matrix is not None:
            return matrix
        bracketed = self.bracketed_list()
        if bracketed is not None:
            return bracketed
        items = [self.parse_expr()]
        if self.at_op("="):  # "z = ...": the value is the right-hand side
            self.position += 1
            items = [self.parse_expr()]
        while self.at_op(","):
            self.position += 1
            items.append(self.parse_expr())
        self.finish()
        if len(items) == 1:
            value = items[0]
            return value
        return items

    def whole_matrix(self) -> list | None:
        """A matrix environment, alone or inside brackets, as the whole answer: its entries row by row."""
        matrices = [token for token in self.tokens if token.kind == "matrix"]
        if not matrices:
            return None
        wrappers = {("macro", "left"), ("macro", "right"), ("op", "("), ("op", ")"), ("op", "["), ("op", "]")}
        if len(matrices) > 1 or any(token.kind != "matrix" and (token.kind, token.text) not in wrappers
                                    for token in self.tokens):
            raise Unreadable("a matrix is allowed only as the whole answer")
        rows = matrices[0].nodes
        if len({len(row) for row in rows}) != 1:
            raise Unreadable("the rows of the matrix have different lengths")
        entries = [self.parse_nodes(cell) for row in rows for cell in row]
        self.position = len(self.tokens)
        return entries if len(entries) > 1 else entries[0]

    def bracketed_list(self) -> list | None:
        """`(a, b)`, `[a, b]` or `\\left(a, b\\right)` as the whole answer: a list; else None."""
        start = self.position
        left = self.at_macro("left")
        if left:
            self.position += 1
        if not self.at_op("(", "["):
            self.position = start
            return None
        closer = {"(": ")", "[": "]"}[self.take().text]
        try:
            items = [self.parse_expr()]
            while self.at_op(","):
                self.position += 1
                items.append(self.parse_expr())
            if left:
                if not self.at_macro("right"):
                    raise Unreadable("unbalanced")
                self.position += 1
            self.expect_op(closer)
        except Unreadable:
            self.position = start
            return None
        if len(items) < 2 or self.peek() is not None:
            self.position = start
            return None
        return items

    def parse_expr(self) -> sp.Expr:
        value = self.parse_term()
        while self.at_op("+", "-"):
            op = self.take().text
            value = combine(op, value, self.parse_term())
        return value

    def parse_term(self, stop_at_function: bool = False) -> sp.Expr:
        value = self.parse_unary()
        while True:
            if self.at_op("*") or self.at_macro(*_TIMES_MACROS):
                self.position += 1
                value = combine("*", value, self.parse_unary())
            elif self.at_op("/") or self.at_macro("div"):
                self.position += 1
                value = combine("/", value, self.parse_unary())
            elif self.starts_primary(stop_at_function):
                value = combine("*", value, self.parse_postfix())
            else:
                return value

    def parse_unary(self) -> sp.Expr:
        if self.at_op("-"):
            self.position += 1
            return -self.parse_unary()
        if self.at_op("+"):
            self.position += 1
            return self.parse_unary()
        return self.parse_postfix()

    def starts_primary(self, stop_at_function: bool = False) -> bool:
        token = self.peek()
        if token is None:
            return False
        if token.kind in ("num", "letter", "group"):
            if stop_at_function and token.kind == "letter" and self.letter_function() is not None:
                return False
            return True
        if token.kind == "op":
            return token.text in ("(", "[")
        if token.kind == "macro":
            if token.text in _TIMES_MACROS or token.text in ("div", "right"):
                return False
            if stop_at_function and token.text in LATEX_FUNCTIONS:
                return False
            return True
        return False

    def parse_postfix(self) -> sp.Expr:
        value = self.parse_primary()
        while self.at_op("^"):
            self.position += 1
            value = combine("^", value, self.parse_script())
        if self.at_op("!", "'"):
            raise Unreadable(f"'{self.peek().text}' is not allowed in an expression")
        return value

    def parse_script(self) -> sp.Expr:
        """The argument of ^: a group, one digit, one letter, one command, or a signed one of these."""
        token = self.take()
        if token.kind == "op" and token.text in "+-":
            inner = self.parse_script()
            return -inner if token.text == "-" else inner
        if token.kind == "group":
            return self.parse_nodes(token.nodes)
        if token.kind == "num":
            first = token.text[0] if token.text[0] != "." else token.text[:2]
            rest = token.text[len(first):]
            if rest:  # e^23 is e^2 times 3, as TeX reads it
                self.tokens.insert(self.position, Tok("num", rest))
            return number_from_text(first)
        self.position -= 1
        return self.parse_primary()

    def subscript_text(self) -> str:
        """The text of a subscript after `_`, as a canonical key part."""
        token = self.take()
        if token.kind == "group":
            return _node_text(token.nodes).replace(" ", "")
        if token.kind in ("num", "letter"):
            return token.text[0] if token.kind == "num" else token.text
        if token.kind == "macro":
            return "\\" + token.text
        raise Unreadable("a subscript is missing")

    def letter_run(self) -> str:
        letters = []
        index = self.position
        while index < len(self.tokens):
            token = self.tokens[index]
            if token.kind != "letter" or (letters and not token.glued):
                break
            letters.append(token.text)
            index += 1
        return "".join(letters)

    def letter_function(self) -> str | None:
        """A run of glued letters spelling a function name, such as `ln` typed without a backslash."""
        word = self.letter_run()
        return word if word in FUNCTIONS and len(word) > 1 else None

    def parse_primary(self) -> sp.Expr:
        token = self.peek()
        if token is None:
            raise Unreadable("the expression ends too early")
        if token.kind == "num":
            self.position += 1
            return number_from_text(token.text)
        if token.kind == "group":
            self.position += 1
            return self.parse_nodes(token.nodes)
        if token.kind == "op":
            if token.text == "(":
                self.position += 1
                value = self.parse_expr()
                self.expect_op(")")
                return value
            if token.text == "[":
                self.position += 1
                value = self.parse_expr()
                self.expect_op("]")
                return value
            raise Unreadable(f"unexpected '{token.text}' in the expression")
        if token.kind == "letter":
            word = self.letter_function()
            if word is not None:
                self.position += len(word)
                return self.parse_function(word)
            word = self.letter_run()
            if len(word) > 1 and word in self.vocab.names and word not in CONSTANTS:
                self.position += len(word)  # a parameter name typed out, such as `mu` or `zhat`
                return self.vocab.names[word]
            self.position += 1
            key = token.text
            if self.at_op("_"):
                self.position += 1
                key = f"{key}_{self.subscript_text()}"
            if key in self.vocab.latex:
                return self.vocab.latex[key]
            raise Unreadable(f"unknown symbol '{_clip(key)}'; known: {self.known_latex()}")
        if token.kind == "macro":
            return self.parse_macro()
        if token.kind == "matrix":
            raise Unreadable("a matrix is allowed only as the whole answer")
        raise Unreadable("unexpected input in the expression")

    def known_latex(self) -> str:
        return ", ".join(sorted(key for key in self.vocab.latex if not key.startswith("\\Q")))

    def parse_macro(self) -> sp.Expr:
        token = self.take()
        name = token.text
        if name == "left":
            opening = self.take()
            closers = {"(": ")", "[": "]", ".": None, "|": "|"}
            if opening.kind != "op" or opening.text not in closers:
                raise Unreadable("\\left must be followed by ( or [")
            value = self.parse_expr()
            if not self.at_macro("right"):
                raise Unreadable("\\left without a matching \\right")
            self.position += 1
            closing = self.take()
            if opening.text == "|":
                return sp.Abs(value)
            if closing.kind != "op" or closing.text != closers[opening.text]:
                raise Unreadable("\\left and \\right delimiters do not match")
            return value
        if name in ("frac", "dfrac", "tfrac"):
            if len(token.args) < 2:
                raise Unreadable("\\frac needs two arguments")
            numerator = self.parse_nodes(self.arg_nodes(token.args[-2]))
            denominator = self.parse_nodes(self.arg_nodes(token.args[-1]))
            return combine("/", numerator, denominator)
        if name == "sqrt":
            body = self.parse_nodes(self.arg_nodes(token.args[-1] if token.args else None))
            index_node = token.args[0] if len(token.args) == 2 else None
            if index_node is not None:
                index = self.parse_nodes(self.arg_nodes(index_node))
                if index == 0:
                    raise Unreadable("\\sqrt[0] is not allowed")
                return power(body, combine("/", sp.Integer(1), index))
            return sp.sqrt(body)
        if name in LATEX_FUNCTIONS:
            return self.parse_function(name)
        if name == "sum" and self.vocab.sums:
            return self.parse_sum()
        key = "\\" + name
        if token.args:
            key += "{" + "".join(_node_text(self.arg_nodes(arg)) for arg in token.args if arg is not None) + "}"
        if self.at_op("_"):
            save = self.position
            self.position += 1
            subscripted = f"{key}_{self.subscript_text()}"
            if subscripted in self.vocab.latex:
                return self.vocab.latex[subscripted]
            self.position = save
        if self.at_op("^") and f"{key}^2" in self.vocab.latex and self.peek(1) and self.peek(1).text == "2":
            self.position += 2
            return self.vocab.latex[f"{key}^2"]
        if key in self.vocab.latex:
            return self.vocab.latex[key]
        if name in _FORBIDDEN_HINT:
            raise Unreadable(f"TeX command \\{name} is not allowed")
        raise Unreadable(f"unknown TeX command {_clip(key, 30)}; known: {self.known_latex()}")

    def parse_sum(self) -> sp.Expr:
        """\\sum_{n=a}^{b} term, where the term does not depend on n: (b - a + 1) * term.

        The summation letter is not in the vocabulary, so a term that uses it cannot be read."""
        if not self.at_op("_"):
            raise Unreadable("\\sum needs bounds, e.g. \\sum_{n=0}^{N-1}")
        self.position += 1
        lower = self.take()
        text = _node_text(lower.nodes) if lower.kind == "group" else ""
        index, sep, start = text.partition("=")
        if not sep or not re.fullmatch(r"\s*[A-Za-z]\s*", index) or not self.at_op("^"):
            raise Unreadable("\\sum needs bounds, e.g. \\sum_{n=0}^{N-1}")
        first = _LatexParser(latex_tokens(start), self.vocab, self.depth + 1)
        low = first.parse_expr()
        first.finish()
        self.position += 1
        high = self.parse_script()
        term = self.parse_term()
        count = combine("+", combine("-", high, low), sp.Integer(1))
        return combine("*", count, term)

    def parse_function(self, name: str) -> sp.Expr:
        base = None
        if name == "log" and self.at_op("_"):
            self.position += 1
            base = self.parse_script()
        if self.at_op("^"):
            raise Unreadable(f"write powers of \\{name} as (\\{name} x)^k")
        if self.at_op("(") or self.at_macro("left") or (self.peek() is not None and self.peek().kind == "group"):
            # \log{\left(x\right)}^{2} is (log x)^2, as SymPy prints it: a power after the
            # bracketed argument applies to the function's value
            argument = self.parse_primary()
        else:
            argument = self.parse_term(stop_at_function=True)
        args = [argument] if base is None else [argument, base]
        return apply_function(name, args)


# --------------------------------------------------------------------- entry

def looks_like_latex(text: str) -> bool:
    return "\\" in text or "$" in text


def parse_answer(text: str, vocab: Vocabulary, seconds: float = limits.PARSE_SECONDS) -> Parsed:
    """Read an answer in SymPy syntax or LaTeX (anything with a backslash or $ is LaTeX)."""
    if not isinstance(text, str) or not text.strip():
        raise Unreadable("the answer is empty")
    if len(text) > limits.MAX_ANSWER_CHARS:
        raise Unreadable(f"the answer is too long ({len(text)} characters; at most {limits.MAX_ANSWER_CHARS})")
    if "\x00" in text:
        raise Unreadable("the answer contains a NUL character")
    try:
        with time_limit(seconds, "reading the answer"):
            if looks_like_latex(text):
                for name in re.findall(r"\\([A-Za-z@]+)", text):
                    if name in _FORBIDDEN_HINT:
                        raise Unreadable(f"TeX command \\{name} is not allowed")
                return parse_latex(_latex_rhs(text), vocab)
            return parse_sympy_syntax(_strip_lhs(text), vocab)
    except TimeLimit as slow:
        raise Unreadable(str(slow)) from None
    except RecursionError:
        raise Unreadable("the answer is nested too deeply") from None
    except (TypeError, ValueError, ArithmeticError, MemoryError) as failure:
        if isinstance(failure, Unreadable):
            raise
        raise Unreadable(f"cannot read '{_clip(text)}' ({_clip(str(failure) or type(failure).__name__, 60)})") from None


def _latex_rhs(text: str) -> str:
    """`-\\ln \\tilde{P}(\\mathcal{Y}) = N \\ln 3`: the value is what follows the last top-level '='."""
    depth, cut = 0, None
    for index, char in enumerate(text):
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
        elif char == "=" and depth == 0:
            cut = index
    return text[cut + 1:] if cut is not None else text


def _strip_lhs(text: str) -> str:
    """`z = zhat + ...` -> `zhat + ...`: one '=' (not '==') separates a left side to drop."""
    pieces = re.split(r"(?<![=<>!])=(?!=)", text)
    if len(pieces) == 2 and re.fullmatch(r"\s*[A-Za-z][\w]*(\([^()]*\))?\s*", pieces[0]):
        return pieces[1]
    return text
