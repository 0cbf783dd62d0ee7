"""Tolerance policies: the rules, their evaluation at every input, and the gate."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import numpy as np
import pytest
import scipy.special

from gelu_audit.audits.accuracy import (
    AuditReport,
    AuditSettings,
    audit_case,
    prepared_blocks,
    references_for,
    verdict,
)
from gelu_audit.audits.policies import (
    BENCHDNN,
    BUILTIN_POLICIES,
    FLT_EPSILON,
    TORCH_ASSERT_CLOSE,
    XNNPACK,
    Combine,
    Tolerance,
    policy_named,
    violation_ratios,
)
from gelu_audit.audits.stats import policy_breaks
from gelu_audit.audits.thresholds import Threshold, parse_thresholds
from gelu_audit.errors import UsageError
from gelu_audit.implementations.model import Implementation
from gelu_audit.numerics.formats import FP16, FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import exhaustive_inputs, parse_range, stratified_inputs
from gelu_audit.progress import SILENT
from gelu_audit.report.table import render_accuracy_table
from gelu_audit.report.text import format_share_estimate
from tests.cli.fuzzing import invoke
from tests.helpers import run_cli


def test_the_three_ways_of_combining_absolute_and_relative() -> None:
    y = np.array([0.0, 1e-6, 1.0, 100.0])
    x = np.zeros(4)
    assert np.allclose(Tolerance(1e-3, 1e-5).allowed(y, x), 1e-5 + 1e-3 * y)
    assert np.allclose(Tolerance(1e-3, 1e-5, Combine.MAX).allowed(y, x), np.maximum(1e-5, 1e-3 * y))
    switch = Tolerance(1e-3, 1e-4, Combine.SWITCH, switch=1e-5).allowed(y, x)
    assert np.allclose(switch, [1e-4, 1e-4, 1e-3, 0.1])
    # benchdnn's allowance where 1 + erf cancels: atol below the cutoff whatever |y| is
    tail = Tolerance(1e-3, 1e-4, Combine.SWITCH, 1e-5, absolute_below=-2.0)
    assert tail.allowed(np.array([1.0]), np.array([-3.0]))[0] == pytest.approx(1e-3)
    assert tail.allowed(np.array([1e-6]), np.array([-3.0]))[0] == pytest.approx(1e-4)


def test_benchdnn_cancellation_cutoff_is_where_two_phi_reaches_two_epsilon_over_trh() -> None:
    rule = BENCHDNN.rule("fp32", "erf")
    assert rule is not None and rule.absolute_below is not None
    # 1 + erf(x/√2) = 2Φ(x) ≤ 2ε/trh  ⇔  x ≤ Φ⁻¹(ε/trh)
    assert rule.absolute_below == pytest.approx(statistics.NormalDist().inv_cdf(FLT_EPSILON / 4e-6), abs=1e-9)
    tanh_rule = BENCHDNN.rule("fp32", "tanh")
    assert tanh_rule is not None and tanh_rule.rtol == 4e-5
    assert BENCHDNN.rule("fp16", "erf").rounded_reference  # type: ignore[union-attr]


def test_policies_have_a_rule_where_their_suite_tests() -> None:
    assert TORCH_ASSERT_CLOSE.rule("fp32", "erf") == Tolerance(1.3e-6, 1e-5)
    assert TORCH_ASSERT_CLOSE.rule("bf16", "tanh") == Tolerance(1.6e-2, 1e-5)
    assert XNNPACK.rule("fp64", "erf") is None  # XNNPACK has no fp64 GELU
    with pytest.raises(UsageError, match="unknown policy 'nope'"):
        policy_named("nope")


def _audit(function, fmt, inputs, policies=None):
    impl = Implementation("test-kernel", "numpy", ERF, function, "test double")
    settings = AuditSettings(dtypes=(fmt.name,), cache_dir=Path(os.environ["GELU_AUDIT_CACHE_DIR"]))
    references, _ = references_for(inputs, {ERF}, settings, SILENT)  # the session's cached tables
    kwargs = {} if policies is None else {"policies": policies}
    return audit_case(impl, "cpu", inputs, prepared_blocks(inputs, references, 5), 2.0, **kwargs)


def _exact_gelu(x: np.ndarray) -> np.ndarray:
    wide = x.astype(np.float64)
    return (0.5 * wide * scipy.special.erfc(-wide / np.sqrt(2))).astype(x.dtype)


def test_a_correctly_rounded_kernel_passes_every_policy_and_a_relative_error_breaks_them() -> None:
    inputs = exhaustive_inputs(FP16, parse_range("-8:8"))
    good = _audit(_exact_gelu, FP16, inputs)
    assert good.exact is not None
    assert {o.policy for o in good.exact.policies} == {"torch-assert-close", "benchdnn", "xnnpack"}
    assert all(o.passed for o in good.exact.policies)

    def off_by_three_tenths_of_a_percent(x: np.ndarray) -> np.ndarray:
        return (_exact_gelu(x).astype(np.float64) * 1.003).astype(x.dtype)

    bad = _audit(off_by_three_tenths_of_a_percent, FP16, inputs)
    assert bad.exact is not None
    torch_policy = next(o for o in bad.exact.policies if o.policy == "torch-assert-close")
    assert not torch_policy.passed and torch_policy.nonfinite == 0
    assert torch_policy.max_ratio > 1 and torch_policy.worst is not None
    # the worst input's ratio is its error over assert_close's allowance there
    worst = torch_policy.worst
    y = float(worst.exact)
    assert torch_policy.max_ratio == pytest.approx(abs(worst.got - y) / (1e-5 + 1e-3 * abs(y)), rel=1e-9)
    xnnpack = next(o for o in bad.exact.policies if o.policy == "xnnpack")
    assert xnnpack.passed  # 10 ε absolute, 5 ε relative: 0.3% (and a rounding) is inside 5 × 2^-10


def test_an_absolute_error_in_the_tail_is_what_the_field_tolerances_miss() -> None:
    """fp32: a kernel that flushes every |y| < 1e-6 to 0 is off by millions of ULP there, and
    passes all three suites' rules, whose absolute parts are 1e-5, 4e-6 and 1.2e-6."""
    inputs = stratified_inputs(FP32, 4000, seed=1)

    def flushing(x: np.ndarray) -> np.ndarray:
        y = _exact_gelu(x)
        return np.where(np.abs(y) < 1e-6, np.float32(0), y).astype(np.float32)

    case = _audit(flushing, FP32, inputs)
    assert case.exact is not None and case.exact.max_ulp > 1e6
    finite_breaks = {o.policy: o.violations - o.nonfinite for o in case.exact.policies}
    # assert_close: atol 1e-5; benchdnn: absolute 4e-6 where |y| ≤ 1e-5; XNNPACK: 10 ε ≈ 1.2e-6
    assert finite_breaks == {"torch-assert-close": 0, "benchdnn": 0, "xnnpack": 0}


def test_a_threshold_names_a_policy_or_sets_rtol_and_atol() -> None:
    (named,) = parse_thresholds([{"policy": "benchdnn"}], "pyproject.toml")
    assert named.policy_name == "benchdnn"
    (own,) = parse_thresholds([{"rtol": 1e-3, "atol": 0}], "pyproject.toml")
    assert own.policy_name == "rtol=0.001,atol=0"
    for bad, message in (
        ({"policy": "nope"}, "unknown policy"),
        ({"rtol": 1e-3}, "rtol and atol go together"),
        ({"rtol": -1, "atol": 0}, "rtol must be a non-negative number"),
        ({"policy": "xnnpack", "rtol": 1, "atol": 1}, "one policy"),
    ):
        with pytest.raises(UsageError, match=message):
            parse_thresholds([bad], "pyproject.toml")


def test_a_threshold_of_its_own_rtol_atol_is_evaluated_and_gates() -> None:
    threshold = Threshold(rtol=0.0, atol=1e-9)
    settings = AuditSettings(dtypes=("fp16",), thresholds=(threshold,))
    assert [p.name for p in settings.policies][-1] == "rtol=0,atol=1e-09"
    inputs = exhaustive_inputs(FP16, parse_range("1:2"))
    case = _audit(_exact_gelu, FP16, inputs, settings.policies)
    assert case.exact is not None
    outcome = next(o for o in case.exact.policies if o.policy == "rtol=0,atol=1e-09")
    assert not outcome.passed  # RN(y) is not within 1e-9 of y
    assert any("rtol=0,atol=1e-09" in reason for reason in threshold.failures(case))


def test_policy_gate_on_the_command_line() -> None:
    common = ["accuracy", "-d", "bf16", "--range", "-8:8", "--no-progress", "--policy", "torch-assert-close"]
    ok = invoke([*common, "-i", "numpy-erf"])
    assert ok.code == 0, ok.stdout + ok.stderr
    assert "tolerance policies" in ok.stdout and "pass (" in ok.stdout
    failing = invoke([*common, "-i", "numpy-tanh"])
    assert failing.code == 1
    assert "FAIL numpy-tanh cpu bf16: torch-assert-close:" in failing.stdout
    unknown = run_cli("accuracy", "-d", "bf16", "--policy", "nope")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "unknown policy 'nope'" in unknown.stderr


def _per_point_breaks(kernel, fmt, inputs) -> dict[str, tuple[Tolerance, int]]:
    """Each built-in policy with an erf rule for ``fmt``: the rule, and how many of ``kernel``'s
    finite answers over ``inputs`` break it, decided point by point (``policy_breaks``)."""
    settings = AuditSettings(dtypes=(fmt.name,), cache_dir=Path(os.environ["GELU_AUDIT_CACHE_DIR"]))
    references, _ = references_for(inputs, {ERF}, settings, SILENT)
    blocks = prepared_blocks(inputs, references, 5)[ERF.name]
    with np.errstate(invalid="ignore", over="ignore"):  # ±inf inputs, as the audit's own call meets them
        got = kernel(inputs.values.astype(fmt.numpy_dtype())).astype(np.float64)
    starts = np.cumsum([0] + [len(b.x) for b in blocks[:-1]])
    found = {}
    for policy in BUILTIN_POLICIES:
        rule = policy.rule(fmt.name, "erf")
        if rule is not None:
            flags = [policy_breaks(b, got[s : s + len(b.x)], rule) for s, b in zip(starts, blocks)]
            found[policy.name] = (rule, sum(int(f.sum()) for f in flags))
    return found


def test_a_sample_estimates_the_share_of_the_range_that_breaks_each_policy() -> None:
    """On a stratified sample the count of breaking inputs says nothing of the range's, so
    each policy gets an estimate, as the other shares do; its per-point decisions are the
    ones the tally counts, and the policy table shows the estimate."""
    inputs = stratified_inputs(FP32, 4000, seed=1)

    def three_tenths_of_a_percent_off(x: np.ndarray) -> np.ndarray:
        return (_exact_gelu(x).astype(np.float64) * 1.003).astype(np.float32)

    case = _audit(three_tenths_of_a_percent_off, FP32, inputs)
    stats = case.exact
    assert stats is not None and stats.estimates is not None
    shares = stats.estimates.policy_breaks
    assert set(shares) == {o.policy for o in stats.policies}
    point_by_point = _per_point_breaks(three_tenths_of_a_percent_off, FP32, inputs)
    for outcome in stats.policies:
        assert point_by_point[outcome.policy][1] == outcome.finite_breaks > 0
        share = shares[outcome.policy]
        assert 0 < share.low <= share.value <= share.high < 1
    torch_rule = shares["torch-assert-close"]
    settings = AuditSettings(dtypes=("fp32",), cache_dir=Path(os.environ["GELU_AUDIT_CACHE_DIR"]))
    report = AuditReport(settings, {"fp32": inputs}, {}, [case], [], 1.0, [verdict(case, None, ())])
    table = render_accuracy_table(report, color=False, details=True, width=200)
    found = next(o for o in stats.policies if o.policy == "torch-assert-close").finite_breaks
    assert f"{found:,} found, est. {format_share_estimate(torch_rule)} at x=" in table


def test_per_point_breaks_are_the_tally_s_including_rounded_references_and_non_finite_answers() -> None:
    """fp16, where benchdnn compares with RN_T(y): a kernel 0.3% off with NaN at every 97th
    input breaks each policy at exactly the inputs its tally counts, NaNs apart."""
    inputs = exhaustive_inputs(FP16, parse_range("-8:8"))

    def off_with_holes(x: np.ndarray) -> np.ndarray:
        y = (_exact_gelu(x).astype(np.float64) * 1.003).astype(x.dtype)
        y[::97] = np.nan
        return y

    case = _audit(off_with_holes, FP16, inputs)
    assert case.exact is not None and case.nonfinite_count > 0
    point_by_point = _per_point_breaks(off_with_holes, FP16, inputs)
    rounded_rules = 0
    for outcome in case.exact.policies:
        rule, breaks = point_by_point[outcome.policy]
        rounded_rules += rule.rounded_reference and outcome.finite_breaks > 0
        assert breaks == outcome.finite_breaks
        assert outcome.nonfinite == case.nonfinite_count
    assert rounded_rules >= 1  # a rule against RN_T(y) that breaks: benchdnn's fp16 rule


def test_violation_ratios_without_errors_are_zero_even_where_nothing_is_allowed() -> None:
    """No error anywhere: every ratio is 0, with no allowance computed, including where the
    allowance is 0 (a relative rule at y = 0, where 0/0 would be NaN). One error: the
    ratios are computed, 0 where the error is, inf where it breaks a zero allowance."""
    magnitude = np.array([0.0, 1.0, 2.0])
    x = np.array([0.0, 1.0, 2.0])
    relative = Tolerance(1e-3, 0.0)
    assert violation_ratios(relative, np.zeros(3), magnitude, x).tolist() == [0.0, 0.0, 0.0]
    ratios = violation_ratios(relative, np.array([0.0, 0.0, 1e-3]), magnitude, x)
    assert ratios.tolist() == [0.0, 0.0, 0.5]
    assert violation_ratios(relative, np.array([1e-9, 0.0, 0.0]), magnitude, x)[0] == np.inf


def test_a_rule_that_allows_some_error_everywhere_gives_the_same_ratios_without_the_zero_fix() -> None:
    """Where ``allows_some_error_everywhere`` says so, the allowance is above 0 at the extreme
    |y| (0, float64's smallest subnormal, just above the switch, the largest float64) and x
    (either infinity, the absolute cut-off), so an error of 0 gives a ratio of 0 by itself; the
    ratios equal those with every zero error set to 0 point by point. Rules it must not vouch
    for: no absolute part, and a SWITCH whose relative part can round to 0."""
    rules = {
        p.rule(dtype, f)
        for p in BUILTIN_POLICIES
        for dtype in ("fp16", "bf16", "fp32", "fp64")
        for f in ("erf", "tanh", "sigmoid")
    }
    rules.discard(None)
    vouched = [rule for rule in rules if rule is not None and rule.allows_some_error_everywhere]
    assert len(vouched) >= 3
    assert not Tolerance(1e-3, 0.0).allows_some_error_everywhere
    assert not Tolerance(1e-300, 1e-6, Combine.SWITCH, switch=1e-300).allows_some_error_everywhere
    assert not Tolerance(
        1e-3, 1e-6, Combine.SWITCH
    ).allows_some_error_everywhere  # switch 0: rtol·|y| may be 0
    assert Tolerance(1e-3, 1e-6, Combine.MAX).allows_some_error_everywhere
    rng = np.random.default_rng(5)
    for rule in vouched:
        assert rule is not None
        edges = [0.0, 5e-324, np.nextafter(rule.switch, np.inf), 1e308]
        magnitude = np.concatenate([edges, rng.uniform(0, 4, 1000)])
        x = np.concatenate([[-np.inf, np.inf, rule.absolute_below or 0.0, 0.0], rng.uniform(-8, 8, 1000)])
        assert (rule.allowed(magnitude, x) > 0).all(), rule
        errors = np.where(rng.random(len(x)) < 0.5, 0.0, rng.uniform(0, 1e-5, len(x)))
        with np.errstate(divide="ignore", invalid="ignore"):
            fixed = errors / rule.allowed(magnitude, x)
        fixed[errors == 0] = 0.0
        assert np.array_equal(
            violation_ratios(rule, errors, magnitude, x).view(np.int64), fixed.view(np.int64)
        )
