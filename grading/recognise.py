"""Tying a problem of an answer key to a family by what its statement says.

A problem is recognised from its content, never from its number: the score it defines
(pairwise products or agreements, on a ring or an open chain), the labels it allows,
the quantity it asks for (pseudo-likelihood, partition function, a reparameterised
sample...) and the parameters it fixes (the constant assignment, the coupling).

RECOGNISERS is the table: one small function per family, each returning a Match (family
and `-p` args), a NotModelled (the statement is of this kind but something is missing,
with the reason), or None (not this family). Adding a family is one function and one row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import derivations


@dataclass
class Statement:
    """What a part's question says: its own text, the text of a part it repeats, the problem's intro."""

    own: str
    referenced: str
    intro: str
    score: str = ""          # the score's right side, normalised ("Y[n]Y[n+1]" ...)
    variable: str = ""       # the assignment as the key spells it: "{\\cal Y}", "\\hat{x}"
    score_name: str = ""     # "s", "f"

    @property
    def text(self) -> str:
        return " ".join((self.intro, self.referenced, self.own))

    def says(self, *patterns: str) -> bool:
        return any(re.search(pattern, self.text, re.IGNORECASE) for pattern in patterns)

    def own_says(self, *patterns: str) -> bool:
        return any(re.search(pattern, self.own, re.IGNORECASE) for pattern in patterns)


@dataclass
class Match:
    family: str
    args: dict[str, str]
    engine: str = "derivation"        # "derivation": the family's steps; "sites": per-site enumeration
    site_model: dict = field(default_factory=dict)   # for "sites": labels, score kind, base, coupling

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.family}" + (f" ({shown})" if shown else "")


@dataclass
class NotModelled:
    reason: str


Recognition = Match | NotModelled | None


# ------------------------------------------------------------- normalising

def _squash(tex: str) -> str:
    t = re.sub(r"\\(?:left|right|bigl|bigr|big|Big)(?![A-Za-z])", "", tex)
    t = re.sub(r"\\[,;:! ]|~", " ", t)
    t = re.sub(r"\s+", "", t)
    t = re.sub(r"\{\\cal([A-Za-z])\}|\\cal([A-Za-z])|\\mathcal\{([A-Za-z])\}|\\mathcal([A-Za-z])",
               lambda m: next(g for g in m.groups() if g), t)
    return re.sub(r"\{Y\}_\{([^{}]+)\}|\{Y\}_(\w)", lambda m: "Y[" + (m.group(1) or m.group(2)) + "]", t)


_SCORE_DEFINITION = re.compile(r"^(?P<name>[a-zA-Z])(?:_\{?\\?\w+\}?)?\((?P<var>[^()=]+)\)=(?P<rhs>.*\\sum.*)$")


def find_score(maths: list[str]) -> tuple[str, str, str]:
    """(score name, variable, right side with the variable written Y) of the statement's score definition."""
    for math in maths:
        squashed = _squash(math)
        found = _SCORE_DEFINITION.match(squashed)
        if found and "[" in found.group("rhs") and found.group("name") not in "PpZ":
            variable = found.group("var")
            return found.group("name"), variable, found.group("rhs").replace(variable, "Y")
    return "", "", ""


def inline_maths(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"\$([^$]+)\$", text)]


# ------------------------------------------------------------- parameters

def labels_of(statement: Statement, variable: str) -> list[str] | None:
    """The labels a site may take: "is either -1, 0 or 1", "\\in \\{0,1\\}"."""
    found = re.search(r"either\s+(-?\d+(?:\s*,\s*-?\d+)*\s*,?\s*(?:or|and)\s*-?\d+)", statement.text)
    if found:
        return re.findall(r"-?\d+", found.group(1))
    for math in inline_maths(statement.text) + [statement.text]:
        squashed = _squash(math)
        found = re.search(r"\\in\\\{(-?\d+(?:,-?\d+)+)\\\}", squashed)
        if found:
            return found.group(1).split(",")
    return None


_WORD_LABELS = {"zeros": "0", "zeroes": "0", "ones": "1", "minus ones": "-1", "negative ones": "-1"}


def assignment_of(statement: Statement, variable: str) -> str | None:
    """The constant assignment the part asks about: "Y[n] = 0 for all n", "the all ones assignment"."""
    for text in (statement.own, statement.referenced, statement.intro):
        for math in inline_maths(text):
            squashed = _squash(math).replace(variable, "Y") if variable else _squash(math)
            found = re.fullmatch(r"(?:\\hat\{?)?Y\}?\[[a-z]\]=(-?\d+)", squashed)
            if found:
                return found.group(1)
        found = re.search(r"all[- ](minus ones|negative ones|zeros|zeroes|ones)\b", text, re.IGNORECASE)
        if found:
            return _WORD_LABELS[found.group(1).lower()]
    return None


def coupling_of(score: str) -> str | None:
    """A numeric factor in front of the score: "2\\sum", "\\frac{1}{2}(...)"; "1" when none; None when symbolic."""
    scaled = re.match(r"^\\frac\{(-?\d*)(?:\(.*\)|[^()]*\\sum.*)\}\{(\d+)\}$", score)  # SymPy's \frac{3 (...)}{2}
    if scaled:
        numerator = scaled.group(1)
        return str(Fraction(int(numerator) if numerator not in ("", "-") else (-1 if numerator else 1),
                            int(scaled.group(2))))
    found = re.match(r"^\(?(-?\d+(?:\.\d+)?|\\frac\{(-?\d+)\}\{(\d+)\})", score)
    if found:
        if found.group(2):
            return str(Fraction(int(found.group(2)), int(found.group(3))))
        return str(Fraction(found.group(1)))
    top = score
    for _ in range(20):  # the top level only: drop bracketed and braced groups, innermost first
        top, count = re.subn(r"\[[^\[\]{}]*\]|\{[^{}\[\]]*\}", "", top)
        if not count:
            break
    if score.startswith("-(") or (score.startswith("-") and "-\\sum" in top and "+" not in top):
        return "-1"  # SymPy's -Y[0]Y[N-1] - \sum ...: every term negated
    if re.match(r"^\(?(?:J|\\beta|\\lambda|\\theta|w)(?![a-z])", score):
        return None
    return "1"


def size_of(statement: Statement) -> str | None:
    """A size the statement fixes: "$N = 5$", "a ring of $5$ sites"; None leaves N symbolic."""
    for text in (statement.own, statement.referenced, statement.intro):
        found = re.search(r"\$\s*N\s*=\s*(\d+)\s*\$|(?:ring|chain) of \$(\d+)\$ (?:sites|nodes)", text)
        if found:
            return found.group(1) or found.group(2)
    return None


def index_base(statement: Statement) -> int:
    """Sites counted from 1 ("numbered from $1$", a sum from i = 1) or from 0."""
    if re.search(r"numbered\s+from\s+\$?1\$?", statement.text) or re.search(r"\\sum_\{?[a-z]=1\}?", statement.score):
        return 1
    return 0


def _pairwise(score: str) -> bool:
    return bool(re.search(r"Y\[([a-z])\]Y\[\1\+1\]|Y\[([a-z])\+1\]Y\[\2\]", score))


def _agreement(score: str) -> bool:
    return bool(re.search(r"(?:\\bbone|\\mathbb\{?1\}?|\\mathbf\{?1\}?|\\one|\\delta|\\mathds\{?1\}?|1)"
                          r"[\[\(\{]Y\[([a-z])\]=Y\[\1\+1\][\]\)\}]", score))


def _ring(score: str) -> bool:
    return bool(re.search(r"Y\[N-1\]Y\[0\]|Y\[0\]Y\[N-1\]|Y\[N\]Y\[1\]|Y\[1\]Y\[N\]", score))


def _asks_pseudo_likelihood(statement: Statement) -> bool:
    return statement.says(r"pseud\w*[- ]?likelihood", r"\\tilde\{?P")


# ------------------------------------------------------------- recognisers

def _missing(family: str) -> NotModelled | None:
    if family not in derivations.FAMILIES:
        return NotModelled(f"family {family} not available")
    return None


def _constant_assignment(statement: Statement) -> str | NotModelled:
    assignment = assignment_of(statement, "Y")
    if assignment is None:
        return NotModelled("the statement fixes no constant assignment")
    return assignment


def ring_pl(statement: Statement) -> Recognition:
    if not (_pairwise(statement.score) and _ring(statement.score) and _asks_pseudo_likelihood(statement)):
        return None
    return _pairwise_match("ring-pl", statement, default_labels="-1,0,1")


# An open chain's score, read term by term: c * \sum_n Y[n]Y[n+1] (a product score), c * \sum_n [Y[n] = Y[n+1]]
# (an agreement score, Kronecker delta or indicator) and h * \sum_n Y[n] (a field). Each sum is replaced by a
# symbol and what is left is read by the whitelist parser, so "2\sum ... + \frac{\sum ...}{2}" gives J = 2, h = 1/2.
_SUM = r"\\sum_(?:\{[^{}]*\}|\w)(?:\^(?:\{[^{}]*\}|\w))?\(?"
_PAIR = r"Y\[(?P<a>[a-z])\+1\]Y\[(?P=a)\]|Y\[(?P<b>[a-z])\]Y\[(?P=b)\+1\]"
_AGREE = (r"\\delta_\{Y\[(?P<c>[a-z])(?:\+1)?\],?Y\[(?P=c)(?:\+1)?\]\}"
          r"|(?:\\bbone|\\mathbb\{?1\}?|\\mathbf\{?1\}?|\\one|\\delta|\\mathds\{?1\}?|1)"
          r"[\[\(\{]Y\[(?P<d>[a-z])\]=Y\[(?P=d)\+1\][\]\)\}]")
_FIELD = r"Y\[(?P<e>[a-z])\](?!Y)"
_TERM = re.compile(_SUM + r"(?:(?P<pair>" + _PAIR + r")|(?P<agree>" + _AGREE + r")|(?P<field>" + _FIELD + r"))\)?")


@dataclass(frozen=True)
class ChainScore:
    kind: str          # "product" or "agreement"
    J: str
    h: str


def chain_score(score: str) -> ChainScore | NotModelled | None:
    """The open-chain score's kind, coupling and field; None when it is not a sum of such terms."""
    from .parse import Unreadable, parse_latex, vocabulary  # the whitelist reader: never eval
    import sympy as sp
    pair, agree, field_ = sp.Symbol("QP"), sp.Symbol("QA"), sp.Symbol("QH")
    kinds = set()

    def replace(match: re.Match) -> str:
        kind = "pair" if match.group("pair") else "agree" if match.group("agree") else "field"
        kinds.add(kind)
        return {"pair": " \\QP ", "agree": " \\QA ", "field": " \\QH "}[kind]

    rest = _TERM.sub(replace, score)
    if not kinds - {"field"}:
        return None
    if {"pair", "agree"} <= kinds:
        return NotModelled("the score mixes products and agreements of neighbours")
    if "Y[" in rest or "Y_" in rest:
        return NotModelled("the score has a term other than neighbour pairs and a field")
    try:
        parsed = parse_latex(rest, vocabulary({}, {"\\QP": pair, "\\QA": agree, "\\QH": field_}))
    except (Unreadable, TypeError, ValueError, ArithmeticError, RecursionError):
        return NotModelled("the coefficients of the score's sums cannot be read")
    if parsed.is_list:
        return NotModelled("the score is not one expression")
    expr = sp.expand(parsed.value)
    coefficient = {s: expr.coeff(s) for s in (pair, agree, field_)}
    leftover = sp.simplify(expr - sum(c * s for s, c in coefficient.items()))
    if leftover != 0 or any(not c.is_Rational for c in coefficient.values()):
        return NotModelled("the coupling or field in front of the score's sums is not a number")
    kind = "agreement" if "agree" in kinds else "product"
    if kind == "agreement" and coefficient[field_] != 0:
        return NotModelled("an agreement score with a field: no family has it")
    return ChainScore(kind, str(coefficient[agree if kind == "agreement" else pair]), str(coefficient[field_]))


def _asks_partition_function(statement: Statement) -> bool:
    own = statement.own_says(r"partition function")
    return own or (statement.says(r"partition function") and not _asks_pseudo_likelihood(statement))


def _asks_pl(statement: Statement) -> bool:
    """The part asks for a pseudo-likelihood: its own text says so, or (silent) the text around it does."""
    if statement.own_says(r"partition function") and not statement.own_says(r"pseud\w*[- ]?likelihood",
                                                                            r"\\tilde\{?P"):
        return False
    return _asks_pseudo_likelihood(statement)


def chain_pl(statement: Statement) -> Recognition:
    if _ring(statement.score) or not _asks_pl(statement):
        return None
    score = chain_score(statement.score)
    if score is None or (isinstance(score, ChainScore) and score.kind != "product"):
        return None
    if isinstance(score, NotModelled):
        return score
    return _pairwise_match("chain-pl", statement, default_labels="-1,1", score=score)


def chain_z(statement: Statement) -> Recognition:
    if _ring(statement.score) or not _asks_partition_function(statement) or _asks_pl(statement):
        return None
    score = chain_score(statement.score)
    if score is None or (isinstance(score, ChainScore) and score.kind != "product"):
        return None
    if isinstance(score, NotModelled):
        return score
    return _pairwise_match("chain-z", statement, default_labels="-1,1", with_assignment=False, score=score)


def _pairwise_match(family: str, statement: Statement, default_labels: str, with_assignment: bool = True,
                    score: ChainScore | None = None):
    missing = _missing(family)
    if missing:
        return missing
    labels = labels_of(statement, statement.variable)
    coupling = score.J if score else coupling_of(statement.score)
    if coupling is None:
        return NotModelled("the coupling in front of the score's sum is not a number")
    args = {"labels": ",".join(labels) if labels else default_labels, "J": coupling}
    if score is not None and score.h != "0":
        args["h"] = score.h
    size = size_of(statement)
    if size:
        args["N"] = size
    if not with_assignment:  # Z needs no labeling: checked against the family's own derivation
        return Match(family, args, "derivation")
    assignment = _constant_assignment(statement)
    if isinstance(assignment, NotModelled):
        return assignment
    if assignment not in args["labels"].split(","):
        return NotModelled(f"the assignment {assignment} is not one of the labels {args['labels']}")
    args["assignment"] = assignment
    engine = "derivation" if family == "ring-pl" else "sites"
    model = {"labels": args["labels"].split(","), "score": "ring" if family.startswith("ring") else "product",
             "J": args["J"], "h": args.get("h", "0"), "base": index_base(statement)}
    return Match(family, args, engine, model)


def potts_chain_pl(statement: Statement) -> Recognition:
    if _ring(statement.score) or not _asks_pl(statement):
        return None
    score = chain_score(statement.score)
    if score is None and _agreement(statement.score):
        return NotModelled("an agreement score whose coupling cannot be read")
    if score is None or (isinstance(score, ChainScore) and score.kind != "agreement"):
        return None
    if isinstance(score, NotModelled):
        return score
    missing = _missing("potts-chain-pl")
    if missing:
        return missing
    labels = labels_of(statement, statement.variable) or ["0", "1"]
    if labels != [str(k) for k in range(len(labels))]:
        return NotModelled(f"potts-chain-pl colours are 0..K-1, the statement's labels are {','.join(labels)}")
    assignment = _constant_assignment(statement)
    if isinstance(assignment, NotModelled):
        return assignment
    if assignment not in labels:
        return NotModelled(f"the assignment {assignment} is not one of the colours {','.join(labels)}")
    args = {"K": str(len(labels)), "J": score.J, "assignment": assignment}
    size = size_of(statement)
    if size:
        args["N"] = size
    return Match("potts-chain-pl", args, "sites",
                 {"labels": labels, "score": "agreement", "J": score.J, "base": index_base(statement)})


SPELLINGS = {  # how keys write a family's parameters, squashed
    "zhat": (r"\hat{z}", r"\hatz"), "sigma2": (r"\sigma^{2}", r"\sigma^2"), "eps": (r"\epsilon", r"\varepsilon"),
}


def stated_values(statement: Statement, names: tuple[str, ...]) -> dict[str, str] | NotModelled:
    r"""`-p` texts for the parameters the part's own text fixes ("at $\hat{z} = \frac{1}{2}$, $\sigma^2 = 4$")."""
    from .parse import Unreadable, parse_latex, vocabulary  # the whitelist reader: never eval
    values = {}
    for math in inline_maths(statement.own):
        squashed = _squash(math)
        for name in names:
            for spelling in SPELLINGS.get(name, (name,)):
                if squashed.startswith(spelling + "=") and name not in values:
                    right = squashed[len(spelling) + 1:].rstrip(".,")
                    try:
                        parsed = parse_latex(right, vocabulary({}))
                    except (Unreadable, TypeError, ValueError, ArithmeticError, RecursionError):
                        return NotModelled(f"the value of {name} ({right}) cannot be read")
                    if parsed.is_list or not parsed.value.is_number or not parsed.value.is_rational:
                        return NotModelled(f"the value of {name} ({right}) is not an exact number")
                    values[name] = str(parsed.value)
    return values


def _vae_part(family: str, statement: Statement) -> Recognition:
    missing = _missing(family)
    if missing:
        return missing
    values = stated_values(statement, ("zhat", "sigma2", "eps"))
    if isinstance(values, NotModelled):
        return values
    return Match(family, values)


def vae_reparam(statement: Statement) -> Recognition:
    if not (statement.says(r"\bVAE", r"reparameteri") and statement.own_says(r"deterministic function")
            and statement.own_says(r"\\epsilon") and statement.own_says(r"\\sigma")):
        return None
    return _vae_part("vae-reparam", statement)


def vae_gradient(statement: Statement) -> Recognition:
    if not (statement.says(r"\bVAE") and statement.own_says(r"\bSGD\b", r"gradient", r"back-?propagat")
            and statement.own_says(r"continuous", r"reparameteri") and not statement.says(r"VQ", r"codebook")):
        return None
    return _vae_part("vae-gradient", statement)


def needs_numbers(family: str, *patterns: str, within: tuple[str, ...] = (), what: str = "") -> Callable:
    """A family whose statement is recognised but which needs numbers the statement leaves symbolic."""
    def recognise(statement: Statement) -> Recognition:
        if within and not statement.says(*within):
            return None
        if not statement.own_says(*patterns):
            return None
        return NotModelled(f"reads as {family}, but the statement fixes no numbers for {what}")
    recognise.__name__ = family.replace("-", "_")
    return recognise


@dataclass(frozen=True)
class Recogniser:
    family: str
    recognise: Callable[[Statement], Recognition]


RECOGNISERS: tuple[Recogniser, ...] = (
    Recogniser("ring-pl", ring_pl),
    Recogniser("potts-chain-pl", potts_chain_pl),
    Recogniser("chain-pl", chain_pl),
    Recogniser("chain-z", chain_z),
    Recogniser("vae-reparam", vae_reparam),
    Recogniser("vae-gradient", vae_gradient),
    Recogniser("vae-rate", needs_numbers("vae-rate", r"\brate\b", r"mutual information", within=(r"\bVAE",),
                                         what="the message weights, means and variances")),
    Recogniser("gan-first-word", needs_numbers("gan-first-word", r"first word", within=(r"\bGAN",),
                                               what="P and eps")),
    Recogniser("gan-next-word", needs_numbers("gan-next-word", r"w_\{?t\+1\}?", within=(r"\bGAN",),
                                              what="Q, w and eps")),
    Recogniser("gan-gradient", needs_numbers("gan-gradient", r"back-?propagat", within=(r"\bGAN",),
                                             what="P and eps")),
    Recogniser("vq-gradient", needs_numbers("vq-gradient", r"discrete", within=(r"\bVAE", r"VQ"),
                                            what="the codebook and the encoder's output")),
)


def recognise(statement: Statement) -> Match | NotModelled:
    for recogniser in RECOGNISERS:
        found = recogniser.recognise(statement)
        if found is not None:
            return found
    return NotModelled(_nothing_matches(statement))


def _nothing_matches(statement: Statement) -> str:
    if statement.score:
        return "no family has this score (only pairwise products or agreements of neighbours on a ring or chain)"
    if statement.says(r"dynamic program"):
        return "a dynamic program with symbolic tables: no family evaluates it"
    return "the statement defines no score and asks for nothing a family derives"
