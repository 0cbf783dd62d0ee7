"""The accuracy core: ULP errors, statistics, domain, verdicts, and broken implementations."""

from __future__ import annotations

import math
import sys

import mpmath
import numpy as np
import pytest

from gelu_audit.audits.accuracy import (
    AuditSettings,
    CaseResult,
    audit_case,
    prepared_blocks,
    run_audit,
    verdict,
)
from gelu_audit.audits.stats import accurate_domain
from gelu_audit.audits.thresholds import Threshold
from gelu_audit.implementations.builtins import builtin_implementations
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP16, FP32, FP64
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import exhaustive_inputs, parse_range
from gelu_audit.numerics.ulp import (
    HISTOGRAM_EDGES,
    HISTOGRAM_LABELS,
    histogram_bins,
    nonfinite_mismatches,
    ordinal_distances,
    ulp_errors,
    wrong_sign_zeros,
)
from gelu_audit.references.mpmath_ziv import compute_references
from tests.helpers import session_cache_dir


def refs(fmt, xs, formula=ERF):
    return compute_references(formula, fmt, np.asarray(xs, dtype=np.float64))


def test_correctly_rounded_answer_is_within_half_an_ulp() -> None:
    xs = np.array([-3.0, -0.75, 0.1, 1.0, 2.5])
    ref = refs(FP32, xs)
    err = ulp_errors(FP32, ref.rounded, ref)
    assert (err <= 0.5).all()
    assert (ordinal_distances(FP32, ref.rounded, ref) == 0).all()


def test_one_representable_step_away() -> None:
    xs = np.array([1.0])
    ref = refs(FP32, xs)
    off = np.nextafter(np.float32(ref.rounded[0]), np.float32(10)).astype(np.float64)
    err = ulp_errors(FP32, np.array([off]), ref)[0]
    assert 0.5 < err < 1.5
    assert ordinal_distances(FP32, np.array([off]), ref)[0] == 1


def test_ulp_is_that_of_the_exact_values_binade() -> None:
    """GELU(2^k) lies just below 2^k: a result one step above 2^k is 2 ULP off, not 1."""
    ref = refs(FP16, [1024.0])
    err = ulp_errors(FP16, np.array([1025.0]), ref)[0]
    assert err == pytest.approx(2.0, abs=1e-6)


def test_zero_where_the_exact_value_is_a_normal_number() -> None:
    """Returning 0 for fp32 GELU(-5.6) is about 2^23 ULP off, the size the tool must show."""
    x = float(np.float32(-5.6))
    ref = refs(FP32, [x])
    err = ulp_errors(FP32, np.array([-0.0]), ref)[0]
    assert 2**23 <= err < 2**24


def test_subnormal_ulp_and_fp64_overflowing_error() -> None:
    ref = refs(FP64, [-38.0])  # GELU(-38) ≈ 1e-315: subnormal in fp64
    err = ulp_errors(FP64, np.array([-1.0]), ref)[0]
    assert math.isinf(err)  # 2^1074 ULP does not fit a float64; reported as inf, not wrapped


def test_nonfinite_mismatches_and_wrong_sign_zeros() -> None:
    xs = np.array([-math.inf, math.nan, math.inf, -7.0, -1.0])
    ref = refs(FP32, xs)
    got = np.array([math.nan, math.nan, math.inf, 0.0, -0.158655])
    assert nonfinite_mismatches(got, ref).tolist() == [True, False, False, False, False]
    assert wrong_sign_zeros(got, ref).tolist() == [False, False, False, True, False]
    assert np.isnan(ulp_errors(FP32, got, ref)[:3]).all()


def test_histogram_bins() -> None:
    errors = np.array([0, 0.3, 0.5, 0.7, 3, 1000, 1001])
    counts = dict(zip(HISTOGRAM_LABELS, np.bincount(histogram_bins(errors), minlength=len(HISTOGRAM_LABELS))))
    assert counts["0"] == 1 and counts["≤0.5"] == 2 and counts["≤1"] == 1
    assert counts["≤4"] == 1 and counts["≤1000"] == 1 and counts[">1000"] == 1


def test_histogram_bins_read_off_the_bits_are_the_search_over_the_edges() -> None:
    """The bins come from the float64's exponent; they must be 1 + how many edges lie strictly
    below each error (``searchsorted``), at every edge, on either side of it, at 0, the
    subnormals, the largest float64, +inf and NaN, and across the range."""
    edges = np.asarray(HISTOGRAM_EDGES)
    special = [0.0, -0.0, 5e-324, 2.0**-1022, 1e300, sys.float_info.max, math.inf, math.nan, -math.nan]
    errors = np.concatenate(
        [
            edges,
            np.nextafter(edges, 0),
            np.nextafter(edges, math.inf),
            special,
            np.arange(0, 0x7F800001, 997, dtype=np.uint64).astype(np.uint32).view(np.float32),
            np.random.default_rng(0).random(100_000) * np.exp2(np.arange(100_000) % 80 - 60),
        ]
    )
    searched = np.where(errors == 0, 0, np.searchsorted(edges, errors, side="left") + 1)
    assert histogram_bins(errors).tolist() == searched.tolist()


def test_accurate_domain() -> None:
    x = np.array([-5.0, -4.0, -3.0, -1.0, 0.0, 1.0, 2.0, np.inf])
    failing = np.array([True, True, False, False, False, False, True, True])
    d = accurate_domain(x, failing, 2.0)
    assert (d.lo, d.hi, d.failure_below, d.failure_above) == (-3.0, 1.0, -4.0, 2.0)
    assert not d.covers_all
    everything = accurate_domain(x, np.zeros_like(failing), 2.0)
    assert everything.covers_all and everything.lo == -5.0 and everything.hi == 2.0
    at_zero = accurate_domain(x, x == 0, 2.0)
    assert at_zero.lo is None


def numpy_impl(name: str, function) -> Implementation:
    return Implementation(name, "numpy", ERF, function, "test double")


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda x: 1 / 0, "raised ZeroDivisionError"),
        (lambda x: x[:-1], "returned shape"),
        (lambda x: x.astype(np.float64), "returned dtype float64"),
        (lambda x: x.tolist(), "returned list"),
    ],
)
def test_broken_implementations_are_reported_not_raised(function, message: str) -> None:
    inputs = exhaustive_inputs(FP16, parse_range("-1:1"))
    references = {"erf": refs(FP16, inputs.values)}
    case = audit_case(
        numpy_impl("broken", function), "cpu", inputs, prepared_blocks(inputs, references, 5), 2.0
    )
    assert case.status == "error" and message in case.error
    assert not verdict(case, None).passed


def test_garbage_output_is_measured() -> None:
    inputs = exhaustive_inputs(FP16, parse_range("-1:1"))
    references = {"erf": refs(FP16, inputs.values)}
    nan_impl = numpy_impl("nan", lambda x: np.full_like(x, np.nan))
    case = audit_case(nan_impl, "cpu", inputs, prepared_blocks(inputs, references, 5), 2.0)
    assert case.status == "ok" and case.nonfinite_count == len(inputs)
    assert not verdict(case, Threshold.gate(1e9)).passed


def test_gate_against_exact_or_formula() -> None:
    report = run_audit(
        AuditSettings(
            dtypes=("fp16",),
            implementations=("torch-gelu-tanh",),
            value_range=parse_range("-8:8"),
            cache_dir=session_cache_dir(),
        )
    )
    case = report.results[0]
    assert case.exact.max_ulp > 100 and case.own_formula.max_ulp < 4
    assert not verdict(case, Threshold.gate(4, "exact")).passed
    assert verdict(case, Threshold.gate(4, "formula")).passed


def test_numpy_erf_in_fp16_is_correctly_rounded() -> None:
    """float64 math.erf, rounded once, is correctly rounded for fp16 (a finding, and a check
    that the reference and the error arithmetic agree with an independent float64 path)."""
    report = run_audit(
        AuditSettings(
            dtypes=("fp16",),
            implementations=("numpy-erf",),
            value_range=parse_range("-10:10"),
            cache_dir=session_cache_dir(),
        )
    )
    stats = report.results[0].exact
    assert stats.correctly_rounded == 1.0 and stats.max_ulp <= 0.5


def test_every_implementation_runs_or_says_why_not() -> None:
    """The built-ins run on every dtype; a compiled or other-framework row that cannot run
    here (no compiler, not installed, no kernel for the dtype) is skipped with a reason."""
    report = run_audit(
        AuditSettings(samples=300, value_range=parse_range("-20:20"), cache_dir=session_cache_dir())
    )
    assert {c.status for c in report.results} == {"ok"}
    ran = {(c.implementation, c.dtype) for c in report.results}
    cpu_skips = {(s.implementation, s.dtype): s.reason for s in report.skipped if s.device == "cpu"}
    assert all(reason for reason in cpu_skips.values())
    assert ran.isdisjoint(cpu_skips) and len(ran) + len(cpu_skips) == len(registry()) * 4
    assert {
        (impl.name, d) for impl in builtin_implementations() for d in ("fp16", "bf16", "fp32", "fp64")
    } <= ran


def test_oneDNN_and_aten_paths_differ_in_fp32() -> None:
    """Contiguous fp32 CPU tensors go to oneDNN, with oneDNN off to ATen: different bits.

    How they differ depends on the CPU (docs/findings.md §3, §8–§9), that they differ does not.
    """
    from gelu_audit.numerics.formats import values_to_patterns

    patterns = values_to_patterns(FP32, np.linspace(-10, 10, 100_001))
    onednn = run_implementation(registry()["torch-gelu"], FP32, "cpu", patterns)
    aten = run_implementation(registry()["torch-gelu-aten"], FP32, "cpu", patterns)
    assert np.count_nonzero(onednn != aten) > 100


def test_case_result_has_no_stats_on_error() -> None:
    case = CaseResult("x", "numpy", "erf", "cpu", "fp16", status="error", error="boom")
    assert verdict(case, Threshold.gate(1)).reasons == ("error: boom",)


@pytest.mark.parametrize(
    "name, expression",
    [
        (
            "torch-tanh-pow",
            lambda x: (
                x / 2 * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)))
            ),
        ),
        (
            "torch-tanh-fast",
            lambda x: (
                x
                / 2
                * (1 + mpmath.tanh(mpmath.mpf("0.7978845608") * x * (1 + mpmath.mpf("0.044715") * x * x)))
            ),
        ),
        ("torch-gelu-clip10", lambda x: min(x / 2 * mpmath.erfc(-x / mpmath.sqrt(2)), 10)),
    ],
)
def test_variants_compute_their_documented_formula(name: str, expression) -> None:
    """In fp64 each variant is within a few ULP of its own formula evaluated at 50 digits
    (away from the negative tail, where every op-by-op form cancels: findings §4, §7)."""
    xs = np.array([-1.0, -0.3, 0.7, 2.0, 9.5, 12.0, 30.0])
    got = run_implementation(registry()[name], FP64, "cpu", xs.view(np.uint64))
    with mpmath.workdps(50):
        for x, y in zip(xs.tolist(), got.tolist()):
            exact = expression(mpmath.mpf(x))
            assert abs(y - exact) <= 16 * abs(exact) * 2.0**-52, (name, x, y, exact)


def test_truncated_constant_shows_against_the_tanh_formula() -> None:
    """0.7978845608 vs √(2/π): in fp64 the relative error 2.2e-12 of the constant is ~10^4 ULP,
    so against the tanh formula the accurate domain shrinks from (−1.4, ∞) to about ±0.005."""
    report = run_audit(
        AuditSettings(dtypes=("fp64",), samples=400, implementations=("torch-gelu-tanh", "torch-tanh-fast"))
    )
    exact_constant, truncated = report.results
    assert exact_constant.own_formula.accurate_domain.failure_above is None
    assert truncated.own_formula.accurate_domain.failure_above < 0.1


def test_the_flushed_tail_is_reported_apart_from_the_rest() -> None:
    """numpy-erf computes 0.5·x·(1 + erf(x/√2)) in float64: 1 + erf cancels and the answer is
    0 from about x = −8.4 down, where fp32 still holds GELU(x). That tail is counted and spanned
    apart, and the error over the other inputs is reported beside the overall maximum."""
    from gelu_audit.audits.accuracy import AuditSettings, run_audit
    from gelu_audit.numerics.inputs import ValueRange

    report = run_audit(
        AuditSettings(dtypes=("fp32",), implementations=("numpy-erf",), value_range=ValueRange(-20.0, 4.0))
    )
    stats = report.results[0].exact
    assert stats is not None
    flush = stats.flush_to_zero
    assert flush.count > 0 and flush.negative is not None
    assert flush.positive is None or flush.positive[1] < 2.0**-126  # GELU(2^-149) is a tie in float64 (§5)
    assert -9.0 < flush.negative[1] < -8.0 and flush.negative[0] < -14.0
    assert stats.max_ulp > stats.max_ulp_outside_flush > 0
    assert stats.worst_outside_flush is not None and stats.worst_outside_flush.got != 0
