"""Chart geometry for server-rendered inline SVG (templates/ui/_chart.html draws it).

No scripts and no inline styles (the Content-Security-Policy allows neither): a chart is a plain
object of coordinates and labels; colours come from `series-N` classes in console.css. Free of
Django so the geometry tests without a request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PALETTE_SIZE = 6
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 10, 24  # room for the y labels and the x labels


@dataclass
class Series:
    name: str
    values: Sequence[float | None]
    kind: str = "line"  # "line" or "bar"
    index: int = 0  # picks the colour: series-<index % PALETTE_SIZE>

    @property
    def css(self) -> str:
        return f"series-{self.index % PALETTE_SIZE}"


@dataclass
class Point:
    x: float
    y: float
    label: str


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str


@dataclass
class DrawnSeries:
    name: str
    css: str
    kind: str
    segments: list[str] = field(default_factory=list)  # polyline points, broken where data is missing
    points: list[Point] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    gridlines: list[tuple[float, str]]
    xlabels: list[tuple[float, str]]
    series: list[DrawnSeries]
    reference: tuple[float, str] | None = None  # a dashed line, e.g. a target
    empty: bool = False


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above value (a readable axis maximum)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value * (1 - 1e-9):
            return candidate
    return 10 ** (exponent + 1)


# Tick steps that read well as durations (in hours): 5m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d, 2d, 3d, 1w...
HOUR_STEPS = (1 / 12, 0.25, 0.5, 1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 1440, 2880)


def nice_hours(value: float, ticks: int = 4) -> float:
    """An axis maximum in hours whose `ticks` steps are whole minutes, hours or days."""
    for step in HOUR_STEPS:
        if step * ticks >= value:
            return step * ticks
    return nice_ceiling(value)


def nice_count(value: float, ticks: int = 4) -> float:
    """An axis maximum for whole numbers: `ticks` steps of 1, 2 or 5 x 10^k."""
    step = 1
    while step * ticks < value:
        step = next(m * 10**e for e in range(12) for m in (1, 2, 5) if m * 10**e > step)
    return step * ticks


def nice_bytes(value: float, ticks: int = 4) -> float:
    """An axis maximum in bytes that is a round number of KB, MB, GB or TB."""
    unit = 1
    while value >= 1024 * unit and unit < 2**40:
        unit *= 1024
    return nice_ceiling(value / unit) * unit


def chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = 560,
    height: int = 180,
    reference: tuple[float, str] | None = None,
    y_max: float | None = None,
    nice: Callable[[float], float] = nice_ceiling,
    ticks: int = 4,
    label_every: int | None = None,
) -> Chart:
    """Lay out bars (grouped side by side) and lines over one x slot per label."""
    values = [v for s in series for v in s.values if v is not None]
    top = max([*values, reference[0] if reference else 0, 0])
    top = y_max if y_max is not None else nice(top)
    left, right, plot_top, bottom = LEFT, width - RIGHT, TOP, height - BOTTOM
    slots = max(len(labels), 1)
    slot = (right - left) / slots

    def y_of(value: float) -> float:
        return round(bottom - min(value, top) / top * (bottom - plot_top), 1)

    gridlines = [(y_of(top * i / ticks), fmt(top * i / ticks)) for i in range(ticks + 1)]
    every = label_every or max(1, math.ceil(slots / 8))
    xlabels = [(round(left + slot * (i + 0.5), 1), label) for i, label in enumerate(labels) if i % every == 0]
    bar_series = [s for s in series if s.kind == "bar"]
    group = slot * 0.8
    bar_width = group / max(len(bar_series), 1)
    drawn = []
    for s in series:
        d = DrawnSeries(s.name, s.css, s.kind)
        if s.kind == "bar":
            position = bar_series.index(s)
            for i, value in enumerate(s.values):
                if value is None:
                    continue
                x = left + slot * i + (slot - group) / 2 + bar_width * position
                y = y_of(value)
                d.bars.append(Bar(round(x, 1), y, round(max(bar_width - 1, 1), 1), round(bottom - y, 1), fmt(value)))
        else:
            run: list[str] = []
            for i, value in enumerate(s.values):
                if value is None:
                    if run:
                        d.segments.append(" ".join(run))
                    run = []
                    continue
                x, y = round(left + slot * (i + 0.5), 1), y_of(value)
                run.append(f"{x},{y}")
                d.points.append(Point(x, y, f"{labels[i]}: {fmt(value)}"))
            if run:
                d.segments.append(" ".join(run))
        drawn.append(d)
    ref = (y_of(reference[0]), reference[1]) if reference else None
    return Chart(width, height, left, right, plot_top, bottom, gridlines, xlabels, drawn, ref, empty=not values)


# --- Axis formats --------------------------------------------------------------------------------


def fmt_count(value: float) -> str:
    return f"{value:g}"


def fmt_percent(value: float) -> str:
    return f"{value:.0f}%"


def fmt_hours(value: float) -> str:
    """A duration given in hours, in the unit that reads best."""
    if value == 0:
        return "0"
    if value < 1:
        return f"{value * 60:.0f}m"
    if value < 24:
        return f"{value:.3g}h"
    return f"{value / 24:.3g}d"


def fmt_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.3g} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1024
    return f"{value:.3g} TB"
