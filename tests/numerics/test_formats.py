"""Float formats: names, bit patterns, ordinals, ulp and exact rounding at their edges."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from gelu_audit.errors import UsageError
from gelu_audit.numerics.formats import (
    BF16,
    FORMATS,
    FP16,
    FP32,
    FP64,
    all_patterns,
    hex_pattern,
    ordinals,
    parse_format,
    patterns_to_values,
    round_mpf,
    ulp_exponent,
    values_to_patterns,
)


@pytest.mark.parametrize(
    "alias, name",
    [
        ("fp16", "fp16"),
        ("half", "fp16"),
        ("float16", "fp16"),
        ("f16", "fp16"),
        ("bf16", "bf16"),
        ("bfloat16", "bf16"),
        ("BFloat16", "bf16"),
        ("fp32", "fp32"),
        ("float", "fp32"),
        ("float32", "fp32"),
        ("f32", "fp32"),
        ("torch.float32", "fp32"),
        ("fp64", "fp64"),
        ("double", "fp64"),
        ("float64", "fp64"),
        ("f64", "fp64"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert parse_format(alias).name == name


def test_unknown_dtype_names_the_choices() -> None:
    with pytest.raises(UsageError, match=r"unknown dtype 'fp8'.*bf16"):
        parse_format("fp8")


@pytest.mark.parametrize("fmt", [FP16, BF16])
def test_every_16bit_pattern_round_trips(fmt) -> None:
    patterns = all_patterns(fmt)
    values = patterns_to_values(fmt, patterns)
    finite = ~np.isnan(values)
    assert np.array_equal(values_to_patterns(fmt, values[finite]), patterns[finite])
    assert np.isnan(values).sum() == (2 * (2**fmt.mantissa_bits - 1))


@pytest.mark.parametrize("fmt", list(FORMATS.values()))
def test_format_constants_match_numpy(fmt) -> None:
    info = np.finfo(np.float32 if fmt is BF16 else fmt.numpy_dtype())
    if fmt is BF16:
        assert fmt.largest_finite == float(np.float32(3.3895313892515355e38))
        assert fmt.smallest_subnormal == 2.0**-133
    else:
        assert fmt.largest_finite == float(info.max)
        assert fmt.smallest_normal == float(info.smallest_normal)
        assert fmt.smallest_subnormal == float(info.smallest_subnormal)


def test_ordinals_count_representable_numbers() -> None:
    values = patterns_to_values(FP16, all_patterns(FP16))
    finite = np.sort(values[np.isfinite(values)])
    ords = ordinals(FP16, finite)
    steps = np.diff(ords)
    assert set(steps.tolist()) <= {0, 1}  # consecutive floats: 1; -0 then +0: 0
    assert ordinals(FP16, np.array([0.0, -0.0])).tolist() == [0, 0]
    assert ordinals(FP16, np.array([-(2.0**-24), 2.0**-24])).tolist() == [-1, 1]


@pytest.mark.parametrize(
    "fmt, binade, expected",
    [
        (FP32, 0, -23),
        (FP32, -126, -149),
        (FP32, -140, -149),
        (FP16, 0, -10),
        (FP16, -20, -24),
        (BF16, 0, -7),
        (BF16, -130, -133),
        (FP64, 0, -52),
        (FP64, -1074, -1074),
    ],
)
def test_ulp_exponent(fmt, binade: int, expected: int) -> None:
    assert ulp_exponent(fmt, binade) == expected


def mp(value: str | float) -> mpmath.mpf:
    with mpmath.workprec(300):
        if value == "2^-1075·(1+2^-200)":
            return mpmath.ldexp(mpmath.mpf(2**200 + 1), -1275)
        return mpmath.mpf(value)


@pytest.mark.parametrize(
    "fmt, value, expected",
    [
        (FP16, 1 + 2.0**-11, 1.0),  # tie, to even (down)
        (FP16, 1 + 3 * 2.0**-11, 1 + 2.0**-9),  # tie, to even (up)
        (FP16, 1 + 2.0**-11 + 2.0**-40, 1 + 2.0**-10),  # just above the tie
        (FP16, 2.0**-25, 0.0),  # half the smallest subnormal: to even, 0
        (FP16, 2.0**-25 + 2.0**-60, 2.0**-24),  # just above: the smallest subnormal
        (FP16, -(2.0**-25), -0.0),  # sign kept on underflow
        (FP16, 3 * 2.0**-25, 2.0**-23),  # subnormal tie to even
        (FP16, 65519.99, 65504.0),  # below the overflow threshold
        (FP16, 65520.0, math.inf),  # the threshold itself overflows (tie to even)
        (FP16, -1e10, -math.inf),
        (BF16, 1 + 2.0**-8, 1.0),
        (BF16, 2.0**-134, 0.0),
        (FP32, 2.0**-150 * 3, 2.0**-148),
        (FP64, 2.0**-1075, 0.0),
        (FP64, "2^-1075·(1+2^-200)", 2.0**-1074),  # above the midpoint by 2^-200 relative
        (FP32, 0.0, 0.0),
    ],
)
def test_round_mpf_edges(fmt, value, expected: float) -> None:
    result = round_mpf(fmt, mp(value))
    assert result == expected and math.copysign(1, result) == math.copysign(1, expected)


def test_round_mpf_specials() -> None:
    assert math.isnan(round_mpf(FP16, mpmath.mpf("nan")))
    assert round_mpf(FP32, mpmath.mpf("-inf")) == -math.inf
    # (mpmath has no signed zero: the reference handles x = ±0 before rounding anything)
    # far below the smallest subnormal, without building huge integers
    assert round_mpf(FP32, mpmath.ldexp(mpmath.mpf(-1), -(10**9))) == 0.0


@pytest.mark.parametrize("fmt, dtype", [(FP16, np.float16), (FP32, np.float32)])
def test_round_mpf_agrees_with_hardware_conversion(fmt, dtype) -> None:
    """A second method: NumPy's float64 → float16/float32 casts are correctly rounded."""
    rng = np.random.default_rng(1)
    exponents = rng.integers(-160 if fmt is FP32 else -30, 20, size=4000)
    values = rng.uniform(-2, 2, size=4000) * np.ldexp(1.0, exponents)
    with np.errstate(over="ignore"):
        expected = values.astype(dtype).astype(np.float64)
    got = np.array([round_mpf(fmt, mpmath.mpf(v)) for v in values.tolist()])
    assert np.array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))


def test_hex_pattern_width() -> None:
    assert hex_pattern(FP16, -2.0) == "0xc000"
    assert hex_pattern(BF16, 1.0) == "0x3f80"
    assert hex_pattern(FP32, 1.0) == "0x3f800000"
    assert hex_pattern(FP64, -0.0) == "0x8000000000000000"
