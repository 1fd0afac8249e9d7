"""The digest chart as PNG bytes: tier mix against target, and p50 time to resolve per day.

It takes neutral numbers only (tier labels, shares, daily medians), never cases or customers, so
nothing private can reach the image. matplotlib is imported inside `render_chart`: it costs about a
second to import and most processes never draw. We use a `Figure` with the Agg canvas and never
pyplot, so no global figure state is shared and the caller may render in a worker thread, off the
event loop, as matplotlib recommends for servers.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DPI = 80  # the pixel size is what matters; a lower dpi means fewer points of text and lines to lay out
ACTUAL_COLOUR = "#1f77b4"  # blue: what happened
TARGET_COLOUR = "#b0b0b0"  # grey: what was planned
LINE_COLOUR = "#d95f02"  # orange: readable next to both, and for red-green colour blindness
_UNITS = ((2 * 3600.0, 60.0, "minutes"), (72 * 3600.0, 3600.0, "hours"), (math.inf, 86400.0, "days"))


@dataclass(frozen=True, slots=True)
class TierShare:
    """The share of resolved cases one tier resolved, and the share it should (`target_share`)."""

    tier: str
    share: float
    target: float | None = None


@dataclass(frozen=True, slots=True)
class DailyTime:
    """The median time to resolve for cases resolved that day; None when none were (a gap in the line)."""

    day: date
    p50_seconds: float | None


@dataclass(frozen=True, slots=True)
class ChartData:
    title: str
    tiers: Sequence[TierShare]
    days: Sequence[DailyTime]


def render_chart(data: ChartData, *, width: int = 720, height: int = 400) -> bytes:
    """Draw the digest chart, `width` × `height` pixels, as PNG bytes.

    Cheap on purpose (a weekly digest, text and chart, must build in under a second): fixed
    margins instead of the constrained layout solver, and a 64-colour palette PNG, which also
    keeps the image small enough for an inline Teams card (a few tens of KB instead of 50+).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    mix, times = figure.subplots(1, 2, width_ratios=(2, 3))
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.84, wspace=0.28)
    figure.suptitle(data.title, fontsize=13, fontweight="bold")
    _draw_tier_mix(mix, data.tiers)
    _draw_resolution_times(times, data.days)
    canvas.draw()  # type: ignore[no-untyped-call]
    pixels = canvas.buffer_rgba()  # type: ignore[no-untyped-call]
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), pixels, "raw", "RGBA", 0, 1)
    png = io.BytesIO()
    # A palette image: charts have few colours. No metadata, so the bytes depend only on the data.
    rgba.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(png, format="PNG", optimize=True)
    return png.getvalue()


def _draw_tier_mix(ax: Axes, tiers: Sequence[TierShare]) -> None:
    ax.set_title("Tier mix vs target", fontsize=11)
    ax.set_ylabel("share of resolved cases (%)")
    ax.set_xlabel("tier")
    if not tiers:
        _say_empty(ax, "no cases resolved")
        return
    width = 0.38
    places = range(len(tiers))
    actual = ax.bar(
        [p - width / 2 for p in places],
        [t.share * 100 for t in tiers],
        width,
        color=ACTUAL_COLOUR,
        label="resolved here",
    )
    ax.bar_label(actual, fmt="%.0f%%", fontsize=8, padding=2)
    targeted = [(p, t.target) for p, t in zip(places, tiers, strict=True) if t.target is not None]
    if targeted:
        ax.bar(
            [p + width / 2 for p, _ in targeted],
            [share * 100 for _, share in targeted],
            width,
            color=TARGET_COLOUR,
            label="target",
        )
    ax.set_xticks(list(places), [textwrap.fill(t.tier, 11) for t in tiers], fontsize=8)
    # Headroom above 100% keeps the legend clear of a full bar.
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))
    ax.legend(loc="upper center", ncols=2, fontsize=8, frameon=False)


def _draw_resolution_times(ax: Axes, days: Sequence[DailyTime]) -> None:
    ax.set_title("Median time to resolve, per day", fontsize=11)
    ax.set_xlabel("day resolved")
    known = [d.p50_seconds for d in days if d.p50_seconds is not None]
    scale, unit = next((s, u) for limit, s, u in _UNITS if max(known, default=0.0) < limit)
    ax.set_ylabel(f"p50 time to resolve ({unit})")
    if not known:
        _say_empty(ax, "no cases resolved in this period")
        return
    ordered = sorted(days, key=lambda d: d.day)
    first = ordered[0].day
    # Days as offsets from the first: a missing day leaves a gap, and no date converter is needed.
    offsets = [(d.day - first).days for d in ordered]
    values = [math.nan if d.p50_seconds is None else d.p50_seconds / scale for d in ordered]
    ax.plot(
        offsets,
        values,
        color=LINE_COLOUR,
        linewidth=2,
        marker="o",
        markersize=4 if len(ordered) <= 31 else 2.5,
        label="p50 time to resolve",
    )
    span = offsets[-1]
    step = max(1, math.ceil((span + 1) / 7))
    ticks = list(range(0, span + 1, step))
    labels = [_day_label(first + timedelta(days=t), short_span=span < 14) for t in ticks]
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_xlim(-0.5, span + 0.5)
    ax.set_ylim(0, max(v for v in values if not math.isnan(v)) * 1.25)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, frameon=False)


def _day_label(day: date, *, short_span: bool) -> str:
    return f"{day:%a} {day.day}" if short_span else f"{day.day} {day:%b}"


def _say_empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.set_xticks([])
    ax.set_yticks([])
