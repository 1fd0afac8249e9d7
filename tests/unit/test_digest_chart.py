"""The digest chart: a PNG of the asked size, drawn from neutral numbers, matplotlib loaded only to draw."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image

from workflows.digest.chart import ACTUAL_COLOUR, TARGET_COLOUR, ChartData, DailyTime, TierShare, render_chart

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIERS = [
    TierShare("L1 Frontline", 0.72, 0.80),
    TierShare("L2 Specialists", 0.21, 0.15),
    TierShare("L3 Engineering", 0.07, 0.05),
    TierShare("Vendor", 0.0, None),
]


def days(count: int, start: date = date(2026, 8, 25)) -> list[DailyTime]:
    """A quarter's worth of medians with quiet weekends: nothing resolved on Saturdays and Sundays."""
    out = []
    for n in range(count):
        day = start + timedelta(days=n)
        hours = None if day.weekday() >= 5 else 4 + (n * 7919 % 23)
        out.append(DailyTime(day, None if hours is None else hours * 3600.0))
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which the PNG format puts first, right after the signature."""
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def pixels_of(png: bytes, colour: str) -> int:
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for pixel in image.getdata() if pixel == rgb)


# fmt: off
CHART_CASES = [
    # tiers, days, width, height
    pytest.param([], [], 800, 500, id="nothing resolved at all"),
    pytest.param(TIERS, [DailyTime(date(2026, 11, 21), None)], 800, 500, id="a period with no resolved day"),
    pytest.param(TIERS, days(1), 800, 500, id="a single day"),
    pytest.param(TIERS, days(3, date(2026, 11, 20)), 800, 500, id="friday to monday"),
    pytest.param(TIERS, days(90), 800, 500, id="ninety days"),
    pytest.param(TIERS, days(90), 1200, 675, id="ninety days, larger"),
    pytest.param(TIERS[:1], days(7), 640, 360, id="one tier, small"),
]
# fmt: on


@pytest.mark.parametrize(("tiers", "series", "width", "height"), CHART_CASES)
def test_the_chart_is_a_png_of_the_asked_size_and_under_150_kb(
    tiers: list[TierShare], series: list[DailyTime], width: int, height: int
) -> None:
    png = render_chart(ChartData("daily-support · Fri 20 Nov → Mon 23 Nov", tiers, series), width=width, height=height)
    assert png.startswith(PNG_SIGNATURE)
    assert png_size(png) == (width, height)
    assert len(png) < 150_000


def test_the_bars_grow_with_the_share_resolved() -> None:
    low = render_chart(ChartData("mix", [TierShare("L1", 0.2, None)], []))
    high = render_chart(ChartData("mix", [TierShare("L1", 0.8, None)], []))
    assert pixels_of(high, ACTUAL_COLOUR) > 3 * pixels_of(low, ACTUAL_COLOUR) > 0


def test_a_target_is_drawn_only_for_tiers_that_have_one() -> None:
    without = render_chart(ChartData("mix", [TierShare("L1", 0.5, None)], []))
    with_target = render_chart(ChartData("mix", [TierShare("L1", 0.5, 0.8)], []))
    assert pixels_of(with_target, TARGET_COLOUR) > pixels_of(without, TARGET_COLOUR)


def test_importing_the_chart_module_does_not_load_matplotlib_and_drawing_never_loads_pyplot() -> None:
    script = (
        "import sys\n"
        "from workflows.digest.chart import ChartData, render_chart\n"
        "assert 'matplotlib' not in sys.modules, 'imported at module import'\n"
        "render_chart(ChartData('t', [], []))\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot keeps global state'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
