"""Durations: reading "500ms" / "1h30m" / numbers, and writing seconds back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (30, 30.0),
        (2.5, 2.5),
        ("30", 30.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1m30s500ms", 90.5),
        ("2d", 172800.0),
        (" 10S ", 10.0),
    ],
)
def test_parse_duration_reads_numbers_and_unit_strings(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "abc", "5x", "-5s", "s", "30m1h", "1h1h", "1 h", "5.s", True, None, [5], {"s": 1}],
)
def test_parse_duration_rejects_anything_else_saying_what_it_expected(value):
    with pytest.raises(ValueError, match=r"invalid duration .*expected .*'500ms'"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5, math.inf, math.nan])
def test_parse_duration_rejects_negative_and_non_finite_numbers(value):
    with pytest.raises(ValueError, match="finite number >= 0"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1, "1s"),
        (1.25, "1.25s"),
        (30, "30s"),
        (90, "1m30s"),
        (600, "10m"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "24h"),
        (3661.5, "1h1m1.5s"),
    ],
)
def test_format_duration_writes_the_short_form(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("value", [-1, math.inf, "5s", None, True])
def test_format_duration_rejects_what_is_not_a_duration(value):
    with pytest.raises(ValueError):
        format_duration(value)


@given(st.floats(min_value=0, max_value=10**7, allow_nan=False))
def test_format_duration_reads_back_to_within_a_millisecond(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=0.0005001)
