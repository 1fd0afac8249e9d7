"""Human durations as people write them in config and chat: 90s, 10m, 8h, 5d, 1h30m."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Parse `10m`, `8h`, `1h30m`; raise ValueError with a hint on anything else."""
    raw = text.strip().lower().replace(" ", "")
    if not raw or _PART.sub("", raw):
        raise ValueError(f"'{text}' is not a duration (use e.g. 90s, 10m, 8h, 5d, 1h30m)")
    total = timedelta()
    for amount, unit in _PART.findall(raw):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    return total


def format_duration(delta: timedelta) -> str:
    """Render a duration compactly: 1h 30m, 45m, 2d 4h, 30s."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if not any(parts):
        parts = [f"{secs}s"]
    return sign + " ".join(p for p in parts if p)
