"""Duration histograms for the digest rollups: fixed buckets, mergeable, stored as Redis hash fields.

Every histogram shares one set of log-spaced buckets, so the per-day, per-tier histograms add up
field by field, and recording a duration is one `HINCRBY key <bucket(seconds)> 1` in the same atomic
commit as the state change. A digest merges O(days × tiers) small hashes instead of loading cases.

Bucket 0 holds durations under a second; bucket i (1 … LAST) holds [GROWTH**(i-1), GROWTH**i)
seconds; OVERFLOW holds 30 days and more. A quantile or mean is read back from each bucket's
representative value, which is within RELATIVE_ERROR of every duration in the bucket (the DDSketch
choice of bucket width and midpoint), and within half a second below one second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RELATIVE_ERROR = 0.05
GROWTH = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
MAX_SECONDS = 30 * 86400.0
LAST = math.ceil(math.log(MAX_SECONDS) / math.log(GROWTH))
OVERFLOW = LAST + 1
BUCKETS = OVERFLOW + 1  # 150: a full histogram is at most 150 small hash fields

_LOG_GROWTH = math.log(GROWTH)
_Count = str | bytes | int  # a hash field's value as redis-py returns it, or as to_fields() writes it


def bucket(seconds: float) -> int:
    """The bucket a duration falls in: the hash field to HINCRBY."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds ≥ 0, not {seconds!r}")
    if seconds < 1:
        return 0
    if seconds >= MAX_SECONDS:
        return OVERFLOW
    return min(LAST, 1 + math.floor(math.log(seconds) / _LOG_GROWTH))


def representative(index: int) -> float:
    """The value a bucket reports: the harmonic midpoint of its bounds, so the relative error is even."""
    if index == 0:
        return 0.5
    if index == OVERFLOW:
        return MAX_SECONDS  # "30 days or more": the floor of what the bucket holds
    if 1 <= index <= LAST:
        return 2 * GROWTH**index / (1 + GROWTH)
    raise ValueError(f"no histogram bucket {index} (there are {BUCKETS})")


class Histogram:
    """Counts of durations per bucket; only non-empty buckets are kept, so equal data compares equal."""

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self._counts: dict[int, int] = {}
        for index, times in (counts or {}).items():
            self._put(index, times)

    @classmethod
    def of(cls, durations: Iterable[float]) -> Histogram:
        """A histogram of these durations, in seconds."""
        histogram = cls()
        for seconds in durations:
            histogram.add(seconds)
        return histogram

    @classmethod
    def from_fields(cls, fields: Mapping[str, _Count] | Mapping[bytes, _Count]) -> Histogram:
        """Read back an HGETALL result (str or bytes) or `to_fields()`; refuses anything that is not a count."""
        counts: dict[int, int] = {}
        for key, value in fields.items():
            try:
                index = int(key)
                times = int(value)
            except ValueError:
                raise ValueError(f"histogram field {key!r}={value!r} is not a bucket count") from None
            counts[index] = counts.get(index, 0) + times
        return cls(counts)

    def to_fields(self) -> dict[str, int]:
        """{bucket: count} for the non-empty buckets, as Redis hash fields."""
        return {str(index): times for index, times in sorted(self._counts.items())}

    def add(self, seconds: float, times: int = 1) -> None:
        """Record a duration, in place (the in-memory twin of `HINCRBY key bucket(seconds) times`)."""
        index = bucket(seconds)
        self._put(index, self._counts.get(index, 0) + times)

    def merge(self, other: Histogram) -> Histogram:
        """A new histogram holding both; neither input changes."""
        merged = Histogram(self._counts)
        for index, times in other._counts.items():
            merged._put(index, merged._counts.get(index, 0) + times)
        return merged

    @property
    def count(self) -> int:
        return sum(self._counts.values())

    @property
    def mean(self) -> float | None:
        """The mean, within RELATIVE_ERROR (durations of 30 days or more count as 30 days); None if empty."""
        total = self.count
        if not total:
            return None
        return sum(representative(index) * times for index, times in self._counts.items()) / total

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (0.5 is p50, 0.9 is p90), within RELATIVE_ERROR; None if empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"a quantile is between 0 and 1, not {q!r}")
        total = self.count
        if not total:
            return None
        # Rounding first keeps 0.07 × 100 at rank 7 instead of the float 7.000000000000001 → 8.
        rank = max(1, math.ceil(round(q * total, 9)))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return representative(index)
        raise AssertionError("unreachable: the ranks add up to the count")  # pragma: no cover

    def _put(self, index: int, times: int) -> None:
        if not 0 <= index < BUCKETS:
            raise ValueError(f"no histogram bucket {index} (there are {BUCKETS})")
        if times < 0:
            raise ValueError(f"histogram bucket {index} cannot hold {times} durations")
        if times:
            self._counts[index] = times
        else:
            self._counts.pop(index, None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and self._counts == other._counts

    __hash__ = None  # type: ignore[assignment]  # mutable: compares by value, so not hashable

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, p50={self.quantile(0.5)}, p90={self.quantile(0.9)})"
