"""Duration histograms: quantiles within the bucket error, merge = union, Redis HINCRBY compatible."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.digest.stats import (
    BUCKETS,
    MAX_SECONDS,
    OVERFLOW,
    RELATIVE_ERROR,
    Histogram,
    bucket,
    representative,
)

DAY = 86400.0
# Durations as the rollups see them: sub-second to just under 30 days, biased to the minutes-to-days
# range where support cases live, plus exact bucket edges.
DURATIONS = st.one_of(
    st.floats(min_value=0, max_value=MAX_SECONDS, exclude_max=True, allow_nan=False),
    st.floats(min_value=60, max_value=5 * DAY),
    st.integers(min_value=0, max_value=int(MAX_SECONDS) - 1).map(float),
)
SAMPLES = st.lists(DURATIONS, min_size=1, max_size=300)
PERCENTS = st.integers(min_value=0, max_value=100)


def exact_quantile(samples: list[float], percent: int) -> float:
    """Nearest rank, computed with exact fractions: the k-th smallest with k = ceil(q·n), at least 1."""
    rank = max(1, math.ceil(Fraction(percent, 100) * len(samples)))
    return sorted(samples)[rank - 1]


def allowed_error(true: float) -> float:
    """The bucket error: RELATIVE_ERROR of the value, or half a second below one second."""
    return max(RELATIVE_ERROR * true * (1 + 1e-9), 0.5)


@settings(max_examples=300, deadline=None)
@given(samples=SAMPLES, percent=PERCENTS)
def test_quantiles_are_within_the_bucket_error_of_the_exact_quantile(samples: list[float], percent: int) -> None:
    estimate = Histogram.of(samples).quantile(percent / 100)
    true = exact_quantile(samples, percent)
    assert estimate is not None
    assert abs(estimate - true) <= allowed_error(true)


@settings(max_examples=200, deadline=None)
@given(first=st.lists(DURATIONS, max_size=100), second=st.lists(DURATIONS, max_size=100))
def test_merging_two_histograms_equals_the_histogram_of_the_union(first: list[float], second: list[float]) -> None:
    a, b = Histogram.of(first), Histogram.of(second)
    merged = a.merge(b)
    assert merged == Histogram.of(first + second)
    assert merged.count == len(first) + len(second)
    assert (a, b) == (Histogram.of(first), Histogram.of(second))  # the inputs are untouched


@settings(max_examples=200, deadline=None)
@given(samples=SAMPLES)
def test_the_mean_is_within_the_bucket_error_of_the_exact_mean(samples: list[float]) -> None:
    mean = Histogram.of(samples).mean
    assert mean is not None
    # Each value is off by at most its own bucket error, so the mean is off by at most their average.
    assert abs(mean - sum(samples) / len(samples)) <= sum(allowed_error(x) for x in samples) / len(samples)


@settings(max_examples=100, deadline=None)
@given(samples=st.lists(DURATIONS, max_size=200))
def test_incrementing_one_field_per_duration_builds_the_same_histogram(samples: list[float]) -> None:
    fields: dict[str, int] = {}
    for seconds in samples:  # what HINCRBY key <bucket> 1 does, one duration at a time
        field = str(bucket(seconds))
        fields[field] = fields.get(field, 0) + 1
    assert Histogram.from_fields(fields) == Histogram.of(samples)
    assert Histogram.from_fields(Histogram.of(samples).to_fields()) == Histogram.of(samples)


async def test_a_histogram_kept_with_hincrby_in_redis_reads_back_equal(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    samples = [0.3, 12, 45, 45, 600, 3600, 7200, 86400, 3 * DAY, 40 * DAY]
    key = "{" + prefix + "}:digest:ttr:2026-11-23:L1"
    for seconds in samples:
        await redis_client.hincrby(key, str(bucket(seconds)), 1)
    stored = await redis_client.hgetall(key)  # bytes keys and values
    assert Histogram.from_fields(stored) == Histogram.of(samples)
    assert len(stored) == len(Histogram.of(samples).to_fields()) == 9


def test_every_bucket_reports_a_value_within_the_error_of_both_its_edges() -> None:
    growth = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
    for index in range(1, OVERFLOW):
        low, high = max(1.0, growth ** (index - 1)), min(MAX_SECONDS, growth**index)
        assert bucket(low * (1 + 1e-12)) == index == bucket(high * (1 - 1e-12))
        value = representative(index)
        assert abs(value - low) <= RELATIVE_ERROR * low * (1 + 1e-9)
        assert abs(value - high) <= RELATIVE_ERROR * high * (1 + 1e-9)


SPREAD = [1.3**i for i in range(50)]  # 30% apart: each in its own bucket
# fmt: off
EDGE_CASES = [
    # durations, quantile asked, expected value
    pytest.param([], 0.5, None, id="an empty histogram has no median"),
    pytest.param([0.0, 0.2, 0.9], 0.5, 0.5, id="sub-second durations read as half a second"),
    pytest.param([40 * DAY, 90 * DAY], 0.9, MAX_SECONDS, id="thirty days or more reads as thirty days"),
    pytest.param([60.0] * 9 + [3600.0], 0.9, pytest.approx(60, rel=RELATIVE_ERROR), id="p90 of ten is the ninth"),
    pytest.param([60.0] * 9 + [3600.0], 1.0, pytest.approx(3600, rel=RELATIVE_ERROR), id="p100 is the largest"),
    pytest.param([5.0, 3600.0], 0.0, pytest.approx(5, rel=RELATIVE_ERROR), id="p0 is the smallest"),
    pytest.param(SPREAD, 0.14, pytest.approx(SPREAD[6], rel=RELATIVE_ERROR),
                 id="p14 of fifty is the seventh although 0.14 * 50 is 7.000000000000001 in floats"),
]
# fmt: on


@pytest.mark.parametrize(("samples", "q", "expected"), EDGE_CASES)
def test_quantile_edge_cases(samples: list[float], q: float, expected: object) -> None:
    assert Histogram.of(samples).quantile(q) == expected


def test_an_empty_histogram_has_no_mean_and_no_fields() -> None:
    empty = Histogram()
    assert (empty.count, empty.mean, empty.to_fields()) == (0, None, {})


def test_a_full_histogram_needs_at_most_150_fields() -> None:
    everything = Histogram.of(representative(index) for index in range(BUCKETS))
    assert len(everything.to_fields()) == BUCKETS == 150


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf], ids=["negative", "nan", "infinite"])
def test_a_duration_that_is_not_a_time_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds"):
        Histogram().add(seconds)


@pytest.mark.parametrize("q", [-0.1, 1.5], ids=["below zero", "above one"])
def test_a_quantile_outside_zero_to_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Histogram.of([1.0]).quantile(q)


@pytest.mark.parametrize(
    "fields",
    [{"x": "1"}, {"3": "many"}, {"999": 1}, {"-1": 1}, {"3": -2}],
    ids=["bad bucket", "bad count", "unknown bucket", "negative bucket", "negative count"],
)
def test_corrupt_stored_fields_are_refused(fields: dict[str, str | int]) -> None:
    with pytest.raises(ValueError, match="histogram"):
        Histogram.from_fields(fields)
