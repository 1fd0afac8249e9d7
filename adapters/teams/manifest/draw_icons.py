"""Draw the two Teams app icons (run once; the PNGs are committed): `python -m adapters.teams.manifest.draw_icons`.

Teams wants a 192x192 full-colour icon and a 32x32 outline icon that is white on transparent.
The mark is three stacked tier bars with an arrow going up: escalation.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrow, FancyBboxPatch, Rectangle

HERE = Path(__file__).parent
ORANGE = "#D9480F"


def _mark(ax: Axes, colour: str, *, scale: float = 1.0) -> None:
    """Tier bars (L1 wide, L3 narrow) and an arrow up the right side."""
    for i, width in enumerate((0.50, 0.38, 0.26)):
        ax.add_patch(Rectangle((0.18, 0.22 + i * 0.2), width, 0.12, color=colour, linewidth=0))
    ax.add_patch(FancyArrow(0.80, 0.20, 0, 0.52, width=0.07 * scale, head_width=0.2 * scale,
                            head_length=0.16, length_includes_head=True, color=colour, linewidth=0))


def _figure(pixels: int) -> tuple[Figure, Axes]:
    fig = plt.figure(figsize=(pixels / 100, pixels / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return fig, ax


def draw(out: Path = HERE) -> None:
    fig, ax = _figure(192)
    ax.add_patch(FancyBboxPatch((0.02, 0.02), 0.96, 0.96, boxstyle="round,pad=0,rounding_size=0.16",
                                color=ORANGE, linewidth=0))
    _mark(ax, "white")
    fig.savefig(out / "color.png", dpi=100, transparent=True)
    plt.close(fig)

    fig, ax = _figure(32)
    _mark(ax, "white", scale=1.2)
    fig.savefig(out / "outline.png", dpi=100, transparent=True)
    plt.close(fig)


if __name__ == "__main__":
    draw()
