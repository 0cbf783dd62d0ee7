"""The Python API for a project's own test suite: ``gelu_audit.check(my_gelu, dtype="fp16", max_ulp=2)``.

One call audits one function on one dtype and device exactly as ``gelu-audit accuracy`` would
(same inputs, references, statistics), and raises :class:`AccuracyCheckError` (an
AssertionError, so pytest shows it as a test failure) with a readable account when a limit is
broken or the function fails; otherwise it returns the case's result for further assertions.
"""

from __future__ import annotations

from typing import Any

from gelu_audit.audits.accuracy import (
    AuditSettings,
    CaseResult,
    audit_case,
    prepared_blocks,
    references_for,
    verdict,
)
from gelu_audit.audits.policies import policy_named
from gelu_audit.audits.thresholds import Threshold
from gelu_audit.implementations.availability import unavailable_reason
from gelu_audit.implementations.devices import parse_device
from gelu_audit.implementations.plugins import DEFAULT_TIMEOUT_S, PluginOptions, implementation_from
from gelu_audit.numerics.formats import parse_format
from gelu_audit.numerics.formulas import ERF
from gelu_audit.numerics.inputs import default_inputs, parse_range, require_values_in
from gelu_audit.progress import SILENT
from gelu_audit.user_cache import default_cache_dir


class AccuracyCheckError(AssertionError):
    """The function broke a limit of :func:`check`, or raised / returned an invalid output."""


def check(
    function: Any,
    dtype: str = "fp32",
    *,
    max_ulp: float | None = None,
    against: str = "exact",
    formula: str = "erf",
    backend: str = "torch",
    device: str = "cpu",
    max_abs: float | None = None,
    domain: tuple[float, float] | None = None,
    domain_tolerance: float | None = None,
    samples: int | None = None,
    seed: int = 0,
    value_range: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    policy: str | None = None,
) -> CaseResult:
    """Audit ``function`` (a torch tensor → tensor GELU, or NumPy with ``backend="numpy"``).

    ``max_ulp`` (against the exact GELU, or its own ``formula`` with ``against="formula"``),
    ``max_abs`` and ``domain`` (an interval the accurate domain must cover) are the limits; with
    none of them the call only checks that the function runs and returns valid outputs.
    fp16/bf16 are exhaustive, fp32/fp64 a stratified sample (``samples``, ``seed``);
    ``value_range="-8:8"`` restricts the inputs. ``policy`` (e.g. ``"torch-assert-close"``)
    fails when any input breaks that tolerance policy (against ``against``).
    """
    fmt = parse_format(dtype)
    device = parse_device(device)
    name = getattr(function, "__qualname__", None) or repr(function)
    options = PluginOptions(formula=formula, backend=backend, timeout=timeout)
    impl = implementation_from(function, name, options, f"gelu_audit.check({name})")
    reason = unavailable_reason(impl, device, fmt)
    if reason:
        raise AccuracyCheckError(f"{name} cannot run on {device} in {fmt}: {reason}")
    settings = AuditSettings(
        dtypes=(fmt.name,),
        samples=samples,
        seed=seed,
        cache_dir=default_cache_dir(),
        value_range=parse_range(value_range) if value_range else None,
        gate=Threshold.gate(max_ulp, against) if max_ulp is not None else None,
        domain_tolerance=domain_tolerance,
    )
    require_values_in(fmt, settings.value_range)  # a check of no input would pass
    inputs = default_inputs(fmt, samples, seed, settings.value_range)
    references, _ = references_for(inputs, {ERF, impl.formula}, settings, SILENT)
    blocks = prepared_blocks(inputs, references, settings.top)
    case = audit_case(impl, device, inputs, blocks, settings.effective_domain_tolerance, settings.top)
    limits: tuple[Threshold, ...] = ()
    if max_abs is not None or domain is not None or policy is not None:
        interval = (float(domain[0]), float(domain[1])) if domain else None
        named = policy_named(policy).name if policy is not None else None
        limits = (Threshold(max_abs=max_abs, domain=interval, policy=named, against=against),)
    outcome = verdict(case, settings.gate, limits)
    if not outcome.passed:
        raise AccuracyCheckError(describe_failure(case, outcome.reasons, inputs.describe()))
    return case


def describe_failure(case: CaseResult, reasons: tuple[str, ...], inputs: str) -> str:
    """Several lines a test report can show: what failed, where, and what was expected."""
    lines = [f"gelu_audit.check: {case.implementation} on {case.device} in {case.dtype} failed:"]
    lines += [f"  - {reason}" for reason in reasons]
    if case.exact is not None and case.exact.worst:
        worst = case.exact.worst[0]
        lines.append(
            f"  worst input x = {worst.x!r} ({worst.x_hex}): got {worst.got!r}, "
            f"correctly rounded {worst.rounded!r}, {worst.ulp_error:.4g} ULP"
        )
        domain = case.exact.accurate_domain
        lines.append(
            f"  accurate domain (≤{domain.tolerance:g} ULP): {domain.interval_text()}; "
            f"{100 * case.exact.correctly_rounded:.2f}% correctly rounded"
        )
    lines.append(f"  inputs: {inputs}")
    return "\n".join(lines)
