"""The sheets' figures as inline SVG, drawn from the same Figure.data as the TikZ pictures.

Each figure template of templates/figures/ has a function here that lays out the same
shapes (in cm, y up, as TikZ does) on a Canvas; templates/figures/figure.svg.j2 writes them.
Labels are our LaTeX, shown as MathML inside <foreignObject>. Every number is formatted to
two decimals, so the same data always gives the same bytes.
"""
from __future__ import annotations

import math
import re

from markupsafe import Markup

from . import html as sheet_html

PX_PER_CM = 40.0
PX_PER_PT = PX_PER_CM / 28.4527
MARGIN = 6.0  # px around everything drawn
WIDTHS = {"ultra thin": 0.1, "very thin": 0.2, "thin": 0.4, "semithick": 0.6, "thick": 0.8,
          "very thick": 1.2, "ultra thick": 1.6}
_COLOURS = {"black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0), "blue": (0, 0, 255),
            "green": (0, 255, 0), "gray": (128, 128, 128), "orange": (255, 128, 0)}
_POINT = re.compile(r"\(\s*(-?[0-9.]+)\s*,\s*(-?[0-9.]+)\s*\)")


def colour(name: str) -> str:
    """An xcolor expression of the figures (black!20, blue!70!black) as #rrggbb."""
    parts = name.strip().split("!")
    rgb = _COLOURS.get(parts[0], (0, 0, 0))
    rest = parts[1:]
    while rest:
        share = float(rest[0]) / 100
        other = _COLOURS.get(rest[1], (255, 255, 255)) if len(rest) > 1 else (255, 255, 255)
        rgb = tuple(share * a + (1 - share) * b for a, b in zip(rgb, other))
        rest = rest[2:]
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def number(value: float) -> str:
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def points(text: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in _POINT.findall(text)]


def label_width(latex: str) -> float:
    """An estimate of a label's width in px (for the picture's bounds only)."""
    visible = re.sub(r"\\(frac|hat|mathrm|text|operatorname|left|right|,|;)", "", latex)
    visible = re.sub(r"\\[A-Za-z]+", "x", visible)
    return 8.0 * len(re.sub(r"[{}$_^\\ ]", "", visible)) + 8.0


class Canvas:
    """Shapes in cm with y up, kept as SVG elements in px with y down, and their bounds."""

    def __init__(self) -> None:
        self.shapes: list[dict] = []
        self.low = [math.inf, math.inf]
        self.high = [-math.inf, -math.inf]

    def _px(self, x: float, y: float, spread: float = 0.0) -> tuple[float, float]:
        px, py = x * PX_PER_CM, -y * PX_PER_CM
        self.low = [min(self.low[0], px - spread), min(self.low[1], py - spread)]
        self.high = [max(self.high[0], px + spread), max(self.high[1], py + spread)]
        return px, py

    def _stroke(self, width_pt: float, stroke: str, dash: tuple | None) -> dict:
        style = {"stroke": colour(stroke), "stroke-width": number(width_pt * PX_PER_PT)}
        if dash:
            style["stroke-dasharray"] = " ".join(number(d * PX_PER_PT) for d in dash)
        return style

    def line(self, x1, y1, x2, y2, width_pt=0.4, stroke="black", dash=None, arrow=False) -> None:
        half = width_pt * PX_PER_PT / 2
        a, b = self._px(x1, y1, half), self._px(x2, y2, half)
        self.shapes.append({"kind": "line", "x1": number(a[0]), "y1": number(a[1]), "x2": number(b[0]),
                            "y2": number(b[1]), **self._stroke(width_pt, stroke, dash)})
        if arrow:
            self.arrow_tip(a, b, width_pt, stroke)

    def arrow_tip(self, start, end, width_pt, stroke) -> None:
        """A filled tip at `end`, pointing from `start` (px)."""
        dx, dy = end[0] - start[0], end[1] - start[1]
        length = math.hypot(dx, dy)
        if length == 0:
            return
        ux, uy = dx / length, dy / length
        size = (2.5 + 2.5 * width_pt) * PX_PER_PT
        back = (end[0] - ux * size, end[1] - uy * size)
        corners = [end, (back[0] - uy * size * 0.45, back[1] + ux * size * 0.45),
                   (back[0] + uy * size * 0.45, back[1] - ux * size * 0.45)]
        self.shapes.append({"kind": "polygon", "points": " ".join(f"{number(x)},{number(y)}" for x, y in corners),
                            "fill": colour(stroke), "stroke": "none"})

    def circle(self, x, y, radius_cm, fill="none", stroke="black", width_pt=0.4) -> None:
        r = radius_cm * PX_PER_CM
        cx, cy = self._px(x, y, r + width_pt * PX_PER_PT / 2)
        shape = {"kind": "circle", "cx": number(cx), "cy": number(cy), "r": number(r),
                 "fill": colour(fill) if fill != "none" else "none"}
        shape.update(self._stroke(width_pt, stroke, None) if stroke != "none" else {"stroke": "none"})
        self.shapes.append(shape)

    def polygon(self, corners, fill="none", stroke="none", width_pt=0.4, closed=True, dash=None) -> None:
        pxs = [self._px(x, y, width_pt * PX_PER_PT / 2) for x, y in corners]
        shape = {"kind": "polygon" if closed else "polyline",
                 "points": " ".join(f"{number(x)},{number(y)}" for x, y in pxs),
                 "fill": colour(fill) if fill != "none" else "none"}
        shape.update(self._stroke(width_pt, stroke, dash) if stroke != "none" else {"stroke": "none"})
        self.shapes.append(shape)

    def label(self, x, y, content: Markup, source: str, anchor: str = "11", size: float = 14.0,
              stroke: str = "black") -> None:
        """A label placed as TikZ's \\derivelabel{XY} places it: X = 0 left edge, 1 centre,
        2 right edge at the point; Y = 0 bottom, 1 centre, 2 top at the point."""
        width, height = label_width(source) * size / 14.0 + 0.6 * size, 2.2 * size + 6
        px, py = x * PX_PER_CM, -y * PX_PER_CM
        left = px - width * int(anchor[0]) / 2
        top = py - height * (2 - int(anchor[1])) / 2
        self._px(left / PX_PER_CM, -top / PX_PER_CM)
        self._px((left + width) / PX_PER_CM, -(top + height) / PX_PER_CM)
        justify = ("flex-start", "center", "flex-end")[int(anchor[0])]
        align = ("flex-end", "center", "flex-start")[int(anchor[1])]
        self.shapes.append({"kind": "label", "x": number(left), "y": number(top), "width": number(width),
                            "height": number(height), "justify": justify, "align": align,
                            "size": number(size), "colour": colour(stroke), "content": content})

    def math_label(self, x, y, latex: str, anchor="11", size=14.0, stroke="black") -> None:
        self.label(x, y, sheet_html.inline_math(latex), latex, anchor, size, stroke)

    def prose_label(self, x, y, text: str, anchor="11", size=14.0, stroke="black") -> None:
        self.label(x, y, sheet_html.prose(text), text, anchor, size, stroke)

    def svg(self, caption: str) -> Markup:
        left, top = self.low[0] - MARGIN, self.low[1] - MARGIN
        width, height = self.high[0] - self.low[0] + 2 * MARGIN, self.high[1] - self.low[1] + 2 * MARGIN
        template = sheet_html.HTML.get_template("figures/figure.svg.j2")
        return Markup(template.render(shapes=self.shapes, caption=caption,
                                      view=" ".join(number(v) for v in (left, top, width, height)),
                                      width=number(width), height=number(height)))


# ------------------------------------------------------------------ figures

def ring(data: dict, canvas: Canvas) -> None:
    """templates/figures/ring.tex.j2: sites on a circle of 1.6 cm, each joined to the next."""
    sites = data["sites"]
    radius = 0.35
    centres = [(1.6 * math.cos(math.radians(s["angle"])), 1.6 * math.sin(math.radians(s["angle"])))
               for s in sites]
    if len(sites) == 1:  # one site: its loop edge, to the right
        x, y = centres[0]
        canvas.circle(x + radius + 0.25, y, 0.28)
    for index, (x, y) in enumerate(centres):
        if len(sites) > 1:
            nx, ny = centres[(index + 1) % len(sites)]
            length = math.hypot(nx - x, ny - y)
            ux, uy = (nx - x) / length, (ny - y) / length
            canvas.line(x + ux * radius, y + uy * radius, nx - ux * radius, ny - uy * radius)
    for site, (x, y) in zip(sites, centres):
        fill = "black!20" if site["focus"] else ("black!7" if site["neighbour"] else "white")
        canvas.circle(x, y, radius, fill=fill, width_pt=1.2 if site["focus"] else 0.4)
        canvas.math_label(x, y, site["label"])
        angle = math.radians(site["angle"])
        canvas.math_label(2.272 * math.cos(angle), 2.272 * math.sin(angle), site["name"], size=10.0)
    if data.get("symbolic"):
        canvas.prose_label(0, 0, "$N$ sites", size=10.0)


def cdf(data: dict, canvas: Canvas) -> None:
    """templates/figures/cdf.tex.j2: the staircase of cumulative sums, the noise line, the word."""
    ux, uy = float(data["unit"]), 5.0
    ax, end = float(data["axis_x"]), float(data["end_x"])
    canvas.line(ax * ux, 0, end * ux, 0, arrow=True)
    canvas.math_label(end * ux, 0, "i", "02")
    canvas.line(ax * ux, 0, ax * ux, 1.12 * uy, arrow=True)
    canvas.math_label(ax * ux, 1.12 * uy, "C_i", "10")
    for tick in data["ticks"]:
        y = float(tick["y"]) * uy
        canvas.line((ax - 0.08) * ux, y, (ax + 0.08) * ux, y)
        canvas.math_label((ax + 0.08) * ux - 0.2, y, tick["label"], "21", 13.0)
    canvas.line(ax * ux, 0, 0, 0, width_pt=0.8)
    for word in data["words"]:
        x, low, high, following = (float(word[k]) for k in ("x", "low", "high", "next"))
        canvas.math_label(x * ux, 0, word["label"], "12", 13.0)
        if word["positive"]:
            if word["chosen"]:
                canvas.line(x * ux, low * uy, x * ux, high * uy, width_pt=2.2, stroke="red!75!black")
            else:
                canvas.line(x * ux, low * uy, x * ux, high * uy, width_pt=0.8, stroke="black!45")
        canvas.line(x * ux, high * uy, following * ux, high * uy, width_pt=0.8)
        canvas.circle(x * ux, high * uy, 1.6 / 28.4527, fill="black", stroke="none")
    canvas.line(ax * ux, float(data["chosen_low"]) * uy, ax * ux, float(data["chosen_high"]) * uy,
                width_pt=2.2, stroke="red!75!black")
    eps, word_x = float(data["eps"]) * uy, float(data["word_x"]) * ux
    canvas.line(ax * ux, eps, word_x, eps, width_pt=0.8, stroke="blue!70!black", dash=(3, 3))
    canvas.line(word_x, eps, word_x, 0, width_pt=0.8, stroke="blue!70!black", dash=(3, 3), arrow=True)
    canvas.line(word_x, eps, end * ux, eps, stroke="blue!70!black", dash=(0.4, 2))
    canvas.math_label(end * ux, eps, r"\epsilon = " + data["eps_label"], "01", 13.0, "blue!70!black")
    canvas.math_label(word_x, -0.45, r"\hat{w} = " + str(data["word"]), "12", 13.0, "red!75!black")


def codebook(data: dict, canvas: Canvas) -> None:
    """templates/figures/codebook.tex.j2: the codes, their cells in a box, zhat and its code."""
    for cell in data["cells"]:
        corners = points(cell["path"])
        if cell["chosen"]:
            canvas.polygon(corners, fill="black!12")
        canvas.polygon(corners, stroke="black!45")
    (x1, y1), (x2, y2) = points(data["box"])
    canvas.polygon([(x1, y1), (x1, y2), (x2, y2), (x2, y1)], stroke="black!60")
    (zx, zy), = points(data["zhat"])
    (cx, cy), = points(data["chosen"])
    canvas.line(zx, zy, cx, cy, width_pt=0.8, dash=(3, 3), arrow=(zx, zy) != (cx, cy))
    for code in data["codes"]:
        (x, y), = points(code["at"])
        if code["chosen"]:
            canvas.circle(x, y, 3.5 / 28.4527, fill="white", width_pt=1.2)
        else:
            canvas.circle(x, y, 2 / 28.4527, fill="black", stroke="none")
        canvas.math_label(x, y, code["label"], "00", 13.0)
    canvas.label(zx, zy, Markup("\u00d7"), "x", "11", 18.0)
    canvas.math_label(zx, zy, r"\hat{z}", "02", 13.0)


_ALIGN = {"above left": "20", "above right": "00", "above": "10", "below": "12", "left": "21",
          "right": "01", "below left": "22", "below right": "02"}


def tikz_style(style: str) -> tuple[float, tuple | None, str]:
    """A TikZ style such as "thick, dashed, blue!70!black" as (width pt, dash pt, colour)."""
    width, dash, stroke = 0.4, "solid", "black"
    for key in (part.strip() for part in style.split(",")):
        if key in WIDTHS:
            width = WIDTHS[key]
        elif key in ("dashed", "dotted", "solid"):
            dash = key
        elif key:
            stroke = key
    pattern = {"dashed": (3, 3), "dotted": (width, 2), "solid": None}[dash]
    return width, pattern, stroke


def mixture(data: dict, canvas: Canvas) -> None:
    """templates/figures/mixture.tex.j2: densities over z, marked points and a legend."""
    xend, yend = float(data["xend"]), float(data["yend"])
    canvas.line(0, 0, xend, 0, arrow=True)
    canvas.math_label(xend, 0, data["xlabel"], "02", 13.0)
    canvas.line(0, 0, 0, yend, arrow=True)
    canvas.math_label(0, yend, data["ylabel"], "10", 13.0)
    for tick in data["xticks"]:
        at = float(tick["at"])
        canvas.line(at, 0, at, -0.08)
        canvas.math_label(at, -0.08, tick["label"], "12", 11.0)
    for tick in data["yticks"]:
        at = float(tick["at"])
        canvas.line(0, at, -0.08, at)
        canvas.math_label(-0.08, at, tick["label"], "21", 11.0)
    for curve in data["curves"]:
        width, dash, stroke = tikz_style(curve["style"])
        canvas.polygon(points(curve["coords"]), stroke=stroke, width_pt=width, closed=False, dash=dash)
    for mark in data["markers"]:
        at, top = float(mark["at"]), float(mark["top"])
        canvas.line(at, 0, at, top, width_pt=0.8, stroke=mark["style"], dash=(0.8, 2))
        canvas.circle(at, top, 1.6 / 28.4527, fill=mark["style"], stroke="none")
        canvas.prose_label(at, top, mark["label"], _ALIGN[mark["anchor"]], 11.0, mark["style"])
    for curve in data["curves"]:
        width, dash, stroke = tikz_style(curve["style"])
        y = float(curve["legend_y"])
        canvas.line(float(curve["legend_x"]), y, float(curve["legend_x2"]), y, width, stroke, dash)
        canvas.prose_label(float(curve["legend_x2"]), y, curve["legend"], "01", 11.0)


FIGURES = {"ring": ring, "cdf": cdf, "codebook": codebook, "mixture": mixture}


def figure_svg(figure) -> Markup:
    """The figure as an inline <svg>; its caption is the picture's accessible name."""
    canvas = Canvas()
    FIGURES[figure.template](figure.data, canvas)
    caption = re.sub(r"\\[A-Za-z]+|[{}$\\]", "", figure.caption)
    return canvas.svg(" ".join(caption.split()))
