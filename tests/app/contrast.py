"""WCAG 2 contrast of a figure's hover labels (text colour against the label's background)."""

from __future__ import annotations

import re

NAMED = {"white": (255, 255, 255), "black": (0, 0, 0)}


def rgb(colour: str) -> tuple[float, float, float]:
    colour = colour.strip().lower()
    if colour in NAMED:
        return NAMED[colour]
    if colour.startswith("#"):
        digits = colour[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))
    values = [float(v) for v in re.findall(r"[\d.]+", colour)[:3]]
    return values[0], values[1], values[2]


def luminance(colour: str) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hover_contrasts(figure) -> list[float]:
    """The contrast of each trace's hover label, resolving trace → layout → template.

    A colour left unset fails: plotly then draws the text in the border or trace colour.
    So does a hover template's non-empty ``<extra>`` box, which plotly always writes in
    the trace's colour.
    """
    import re as _re
    layers = [figure.layout.hoverlabel]
    if figure.layout.template is not None and figure.layout.template.layout is not None:
        layers.append(figure.layout.template.layout.hoverlabel)
    result = []
    for trace in figure.data or [None]:
        chain = ([trace.hoverlabel] if trace is not None and hasattr(trace, "hoverlabel")
                 else []) + layers
        bg = next((label.bgcolor for label in chain if label.bgcolor), None)
        font = next((label.font.color for label in chain if label.font.color), None)
        assert isinstance(bg, str) and isinstance(font, str), (bg, font)
        template = getattr(trace, "hovertemplate", None) if trace is not None else None
        templates = [template] if isinstance(template, str) else list(template or [])
        for text in templates:
            assert not _re.search(r"<extra>[^<]", text), text
        result.append(contrast(font, bg))
    return result
