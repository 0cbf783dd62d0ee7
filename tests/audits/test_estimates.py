"""Sample estimates: the stratified design, the estimators, and their coverage against the truth
of an exhaustive audit of the same fp32 range."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.audits.estimates import estimate, point_errors
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP32, FP64
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import _equal_shares, parse_range, stratified_inputs
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.mpmath_ziv import compute_references


def test_equal_shares_give_small_strata_all_they_hold_and_the_rest_to_others() -> None:
    assert _equal_shares(10, [1, 100, 100]) == [1, 4, 4]
    assert _equal_shares(6, [2, 2, 2]) == [2, 2, 2]
    assert _equal_shares(100, [3, 4]) == [3, 4]
    assert _equal_shares(2, [10, 10, 10]) == [1, 1, 1]  # at least one each


def test_strata_stand_for_every_finite_pattern_of_the_range() -> None:
    full = stratified_inputs(FP32, 20000, seed=0)
    assert full.stratum_sizes is not None and full.strata is not None
    assert int(full.stratum_sizes.sum()) == 2**32 - 2 * 2**23  # all but the inf/NaN exponent
    drawn = full.strata >= 0
    assert np.all(np.bincount(full.strata[drawn]) >= 1)  # every stratum drawn at least once
    ranged = stratified_inputs(FP32, 20000, seed=0, value_range=parse_range("1:2"))
    assert ranged.stratum_sizes is not None and int(ranged.stratum_sizes.sum()) == 2**23 + 1


def test_a_sample_that_cannot_cover_every_binade_supports_no_estimate() -> None:
    assert not stratified_inputs(FP64, 1000, seed=0).estimable
    assert stratified_inputs(FP64, 10000, seed=0).estimable


def test_a_census_is_estimated_exactly() -> None:
    errors = np.array([0.1, 0.2, 3.0, 0.4, 0.5, 9.0])
    correct = errors <= 0.5
    stratum = np.array([0, 0, 0, 1, 1, 1])
    sizes = np.array([3, 3])  # every pattern drawn: no sampling error
    found = estimate(errors, correct, stratum, sizes, tolerance=2.0)
    assert found.correctly_rounded.value == pytest.approx(4 / 6)
    assert found.mean_ulp.low == found.mean_ulp.value == found.mean_ulp.high == pytest.approx(13.2 / 6)
    assert found.over_tolerance.value == pytest.approx(2 / 6)
    assert found.p99_ulp.value == 9.0
    breaks = {"some-policy": np.array([False, True, True, False, False, True])}
    shares = estimate(errors, correct, stratum, sizes, 2.0, breaks).policy_breaks
    assert shares["some-policy"].value == pytest.approx(3 / 6)


def test_points_are_weighted_by_the_patterns_they_stand_for() -> None:
    # Stratum 0: 1,000 patterns, all correct; stratum 1: 10 patterns, none correct. Two points
    # each: the unweighted share would be 1/2, the population's is 1000/1010.
    errors = np.array([0.1, 0.2, 5.0, 6.0])
    stratum = np.array([0, 0, 1, 1])
    found = estimate(errors, errors <= 0.5, stratum, np.array([1000, 10]), tolerance=2.0)
    assert found.correctly_rounded.value == pytest.approx(1000 / 1010)


def test_a_non_finite_answer_leaves_the_population_as_exhaustive_statistics_do() -> None:
    errors = np.array([0.1, math.inf, 0.3, 5.0])
    found = estimate(errors, np.array([True, False, True, False]), np.array([0, 0, 0, 0]), np.array([4]), 2.0)
    assert found.points == 3
    assert found.correctly_rounded.value == pytest.approx(2 / 3)
    assert found.over_tolerance.value == pytest.approx(1 / 3)  # the non-finite answer is not counted


def _truth_and_lookup(lo: float, hi: float):
    """Every fp32 input in [lo, hi] (0 < lo): torch-gelu's error and correctness at each."""
    first, last = np.array([lo, hi], np.float32).view(np.uint32).tolist()
    patterns = np.arange(first, last + 1, dtype=np.uint32)
    x = patterns.view(np.float32).astype(np.float64)
    reference, _ = fast_references_of(ERF, FP32, x, lambda f, fmt, v: compute_references(f, fmt, v, 2))
    got = run_implementation(registry()["torch-gelu"], FP32, "cpu", patterns)
    errors, correct = point_errors(FP32, got, reference)
    return patterns, errors, correct


@pytest.mark.slow
def test_sampled_estimates_cover_the_exhaustive_truth_about_95_percent_of_the_time() -> None:
    """torch-gelu on fp32 [1.5, 3] (8.4M inputs, two binades): the truth is computed at every
    input; 80 seeds of a 2,000-point sample each give intervals for the CR share and p99."""
    lo, hi = 1.5, 3.0
    patterns, errors, correct = _truth_and_lookup(lo, hi)
    finite = np.isfinite(errors)
    true_cr = float(correct[finite].mean())
    ranked = np.sort(errors[finite])
    true_p99 = float(ranked[math.ceil(0.99 * len(ranked)) - 1])
    value_range = parse_range(f"{lo}:{hi}")

    # The truth is what `--exhaustive` reports for the range. F.gelu's vector body and its scalar
    # tail differ (x = 3.0 is the last input here: a tail element in one call, not in chunks),
    # so the streamed audit, which calls it chunk by chunk, may differ at a point or two.
    exhaustive = (
        run_audit(
            AuditSettings(
                dtypes=("fp32",), implementations=("torch-gelu",), exhaustive=True, value_range=value_range
            )
        )
        .results[0]
        .exact
    )
    assert exhaustive is not None and exhaustive.finite_points == len(ranked)
    assert abs(exhaustive.correctly_rounded - true_cr) * len(ranked) <= 2
    assert true_p99 <= exhaustive.p99_ulp <= true_p99 * (1 + 2**-6)  # the sketch's bin edge above it

    # The audit itself, end to end, gives what the estimator gives on the looked-up truth.
    report = run_audit(
        AuditSettings(
            dtypes=("fp32",), implementations=("torch-gelu",), samples=2000, value_range=value_range
        )
    )
    audited = report.results[0].exact
    assert audited is not None and audited.estimates is not None
    sample = stratified_inputs(FP32, 2000, seed=0, value_range=value_range)
    at = np.searchsorted(patterns, sample.patterns)
    assert sample.strata is not None and sample.stratum_sizes is not None
    assert dataclasses.replace(audited.estimates, policy_breaks={}) == estimate(
        errors[at], correct[at], sample.strata, sample.stratum_sizes, audited.estimates.tolerance
    )  # the policies' shares are tested in test_policies.py
    assert set(audited.estimates.policy_breaks) == {o.policy for o in audited.policies}

    seeds = 80
    misses_cr = misses_p99 = 0
    for seed in range(seeds):
        sample = stratified_inputs(FP32, 2000, seed=seed, value_range=value_range)
        assert sample.strata is not None and sample.stratum_sizes is not None
        at = np.searchsorted(patterns, sample.patterns)
        found = estimate(errors[at], correct[at], sample.strata, sample.stratum_sizes, 2.0)
        misses_cr += not found.correctly_rounded.covers(true_cr)
        misses_p99 += not found.p99_ulp.covers(true_p99)
        assert found.correctly_rounded.high - found.correctly_rounded.low < 0.1  # informative
    # 95% coverage misses 4 of 80 on average; more than 10 has probability < 0.3%.
    assert misses_cr <= 10, f"CR share: {misses_cr} of {seeds} intervals miss {true_cr}"
    assert misses_p99 <= 10, f"p99: {misses_p99} of {seeds} intervals miss {true_p99}"
