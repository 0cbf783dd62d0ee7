"""Input sets: exhaustive enumeration, the stratified sample, ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gelu_audit.errors import UsageError
from gelu_audit.numerics.formats import BF16, FP16, FP32, FP64
from gelu_audit.numerics.inputs import exhaustive_inputs, parse_range, stratified_inputs


def test_exhaustive_fp16_has_every_pattern() -> None:
    inputs = exhaustive_inputs(FP16)
    assert len(inputs) == 65536 and len(np.unique(inputs.patterns)) == 65536
    assert "exhaustive, 65,536" in inputs.describe()


def test_exhaustive_range_filters_and_drops_nan() -> None:
    inputs = exhaustive_inputs(BF16, parse_range("-8:8"))
    assert inputs.values.min() == -8 and inputs.values.max() == 8
    assert not np.isnan(inputs.values).any()


@pytest.mark.parametrize("fmt", [FP32, FP64])
def test_stratified_covers_binades_signs_and_specials(fmt) -> None:
    inputs = stratified_inputs(fmt, 20000, seed=3)
    values = inputs.values
    finite = values[np.isfinite(values) & (values != 0)]
    exponents = set(np.frexp(np.abs(finite))[1].tolist())
    assert (finite < 0).sum() > 0.3 * len(finite) and (finite > 0).sum() > 0.3 * len(finite)
    span = fmt.emax - (fmt.emin - fmt.precision + 1)
    assert len(exponents) > (0.9 if fmt is FP32 else 0.4) * span  # fp64: a random half
    assert np.isnan(values).any() and np.isinf(values).any()
    assert fmt.smallest_subnormal in values and -fmt.largest_finite in values
    assert ((values > -12) & (values < -3)).sum() > 1000  # the negative tail, densely


def test_stratified_is_deterministic_per_seed() -> None:
    a = stratified_inputs(FP32, 5000, seed=1)
    b = stratified_inputs(FP32, 5000, seed=1)
    c = stratified_inputs(FP32, 5000, seed=2)
    assert np.array_equal(a.patterns, b.patterns)
    assert not np.array_equal(a.patterns, c.patterns)


def test_stratified_respects_range() -> None:
    inputs = stratified_inputs(FP32, 5000, value_range=parse_range("-10:0.5"))
    assert inputs.values.min() >= -10 and inputs.values.max() <= 0.5
    assert len(inputs) > 2000


@pytest.mark.parametrize("text", ["1:2:3", "a:b", "5:1", "3:3", "nan:1", "8"])
def test_malformed_ranges(text: str) -> None:
    with pytest.raises(UsageError, match="malformed range"):
        parse_range(text)


def test_open_ended_range() -> None:
    r = parse_range(":0")
    assert r.lo == -math.inf and r.hi == 0
