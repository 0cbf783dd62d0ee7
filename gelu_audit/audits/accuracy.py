"""The accuracy audit: ULP errors against correctly rounded references, and what they add up to.

Pure computation: no printing, no exiting. :func:`run_audit` returns an :class:`AuditReport`
that the renderers in :mod:`gelu_audit.report` turn into tables or JSON.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gelu_audit.audits.estimates import estimate, point_errors
from gelu_audit.audits.exhaustive import (
    DEFAULT_CHUNK,
    PatternSpace,
    Shard,
    StreamedInputs,
    StreamOutcome,
    stream,
)
from gelu_audit.audits.policies import BUILTIN_POLICIES, Policy
from gelu_audit.audits.reference_store import open_store
from gelu_audit.audits.stats import (
    CaseAccumulators,
    ErrorStats,
    InputSpace,
    InputValues,
    PointReport,
    ReferenceBlock,
    case_accumulators,
    policy_breaks,
    reference_blocks,
)
from gelu_audit.audits.thresholds import Threshold
from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.implementations.availability import (
    earlier_failure,
    preparation_failure,
    skip_reason,
    unavailable_reason,
)
from gelu_audit.implementations.devices import device_unavailable_reason, resolve_devices
from gelu_audit.implementations.gradient import NOT_DIFFERENTIABLE, backward_implementation
from gelu_audit.implementations.helper import HELPED_DEVICE, hand_to_helper
from gelu_audit.implementations.model import Implementation, ImplementationError, SkipKind, SkipReason
from gelu_audit.implementations.plugins import PluginOptions
from gelu_audit.implementations.registry import select_implementations
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FORMATS, FloatFormat, values_to_patterns
from gelu_audit.numerics.formulas import (
    Function,
    Pass,
    claimed_formula,
    exact_function_for,
    pass_of,
)
from gelu_audit.numerics.inputs import InputSet, ValueRange, default_inputs, require_values_in, special_values
from gelu_audit.progress import SILENT, ProgressSink
from gelu_audit.references.cache import exhaustive_table
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.mpmath_ziv import compute_references, reference_point
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier, TierBackend

AuditedInputs = InputSet | StreamedInputs
"""How one dtype's inputs were chosen: an in-memory set (16-bit formats, samples) or the
description of an exhaustive fp32 stream; both describe themselves and serialize the same way."""

DEFAULT_DOMAIN_TOLERANCE = 2.0
"""ULP tolerance of the accurate domain when no --max-ulp gate is given. Not 1: good float
kernels slip just past 1 ULP here and there (fp32 F.gelu: 1.01 ULP at x = 9.4e-8), and the
domain is meant to show where a formula or a cancellation breaks down, not a last-bit slip."""

# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecialCheck:
    """The answer to one special input (NaN, ±inf, ±0, extremes)."""

    name: str
    x: float
    got: float
    expected: float
    ok: bool
    note: str = ""


@dataclass(frozen=True)
class CaseResult:
    """The audit of one implementation on one device in one dtype."""

    implementation: str
    backend: str
    formula: str
    device: str
    dtype: str
    status: str
    """``ok`` or ``error`` (the implementation raised or returned an invalid output)."""
    error: str | None = None
    points: int = 0
    exact: ErrorStats | None = None
    """Against the exact GELU: approximation + rounding error."""
    own_formula: ErrorStats | None = None
    """Against the formula it claims: implementation error only (same as ``exact`` for erf)."""
    nonfinite_count: int = 0
    nonfinite: tuple[PointReport, ...] = ()
    wrong_sign_zero_count: int = 0
    wrong_sign_zeros: tuple[PointReport, ...] = ()
    specials: tuple[SpecialCheck, ...] = ()
    seconds: float = 0.0
    pass_: Pass = Pass.FORWARD
    """What was audited: the forward GELU, or its gradient (GELU′, grad_output = 1). Part of
    the case's identity, with implementation, device and dtype."""


@dataclass(frozen=True)
class Audited:
    """What a case says of its implementation: its name, backend and the formula it claims
    (a merge of shard reports knows these, not the function)."""

    name: str
    backend: str
    formula: str
    pass_: Pass = Pass.FORWARD

    @staticmethod
    def of(impl: Implementation) -> Audited:
        return Audited(impl.name, impl.backend, claimed_formula(impl.formula).name, pass_of(impl.formula))


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...] = ()


def verdict(case: CaseResult, gate: Threshold | None, thresholds: tuple[Threshold, ...] = ()) -> Verdict:
    """Whether a case passes: no implementation error, and the ``--max-ulp`` gate and every
    configured threshold that selects it hold (one evaluation, :meth:`Threshold.failures`)."""
    if case.status != "ok":
        return Verdict(False, (f"error: {case.error}",))
    reasons: list[str] = []
    for threshold in thresholds if gate is None else (gate, *thresholds):
        if threshold.matches(case.implementation, case.dtype, case.device, case.pass_.value):
            reasons.extend(threshold.failures(case))
    return Verdict(not reasons, tuple(reasons))


# --- computing the statistics -----------------------------------------------------------------


_SPECIAL_NAMES = (
    "NaN",
    "+inf",
    "-inf",
    "+0",
    "-0",
    "+largest finite",
    "-largest finite",
    "+smallest normal",
    "-smallest normal",
    "+smallest subnormal",
    "-smallest subnormal",
)


def special_checks(fmt: FloatFormat, impl: Implementation, device: str) -> tuple[SpecialCheck, ...]:
    """Run the implementation on the special values and judge each answer."""
    xs = special_values(fmt)
    got = run_implementation(impl, fmt, device, values_to_patterns(fmt, xs))
    checks = []
    for name, x, y in zip(_SPECIAL_NAMES, xs.tolist(), got.tolist()):
        expected = reference_point(exact_function_for(impl.formula), fmt, x).rounded
        note = ""
        if math.isnan(expected):
            ok = math.isnan(y)
        elif x == -math.inf:  # the limit is -0; any zero is accepted, a wrong sign noted
            ok = y == 0
            note = "+0 (limit is -0)" if ok and math.copysign(1, y) > 0 else ""
        else:
            ok = y == expected and math.copysign(1, y) == math.copysign(1, expected)
        checks.append(SpecialCheck(name, x, y, expected, ok, note))
    return tuple(checks)


def case_result(
    impl: Audited,
    device: str,
    fmt: FloatFormat,
    accumulators: CaseAccumulators,
    tested: InputSpace,
    specials: tuple[SpecialCheck, ...],
    seconds: float,
) -> CaseResult:
    """A finished case from its accumulators (``own`` None: the implementation claims erf)."""
    exact, own = accumulators.exact, accumulators.own
    exact_stats = exact.finish(fmt, tested)
    return CaseResult(
        implementation=impl.name,
        backend=impl.backend,
        formula=impl.formula,
        device=device,
        dtype=fmt.name,
        status="ok",
        points=exact.points,
        exact=exact_stats,
        own_formula=exact_stats if own is None else own.finish(fmt, tested),
        nonfinite_count=exact.nonfinite_count,
        nonfinite=tuple(c.point(fmt) for c in exact.nonfinite),
        wrong_sign_zero_count=exact.wrong_zero_count,
        wrong_sign_zeros=tuple(c.point(fmt) for c in exact.wrong_zeros),
        specials=specials,
        seconds=seconds,
        pass_=impl.pass_,
    )


def error_case(impl: Audited, device: str, fmt: FloatFormat, error: str | None, points: int) -> CaseResult:
    """A case whose implementation raised or returned an invalid output."""
    return CaseResult(
        impl.name,
        impl.backend,
        impl.formula,
        device,
        fmt.name,
        status="error",
        error=error,
        points=points,
        pass_=impl.pass_,
    )


def audit_case(
    impl: Implementation,
    device: str,
    inputs: InputSet,
    blocks: dict[str, list[ReferenceBlock]],
    domain_tolerance: float,
    top: int = 5,
    policies: tuple[Policy, ...] = BUILTIN_POLICIES,
) -> CaseResult:
    """Audit one implementation on one device over one input set (reference blocks prepared)."""
    fmt = inputs.fmt
    start = time.perf_counter()
    try:
        got = run_implementation(impl, fmt, device, inputs.patterns, repeat=True)
        specials = special_checks(fmt, impl, device)
    except ImplementationError as error:
        return error_case(Audited.of(impl), device, fmt, str(error), len(inputs))
    accumulators = case_accumulators(blocks, got, impl.formula, domain_tolerance, top, policies)
    tested = InputValues(inputs.values)
    case = case_result(
        Audited.of(impl), device, fmt, accumulators, tested, specials, time.perf_counter() - start
    )
    if inputs.strata is None or inputs.stratum_sizes is None or case.exact is None:
        return case
    exact = _with_estimates(
        case.exact, inputs, blocks[exact_function_for(impl.formula).name], got, domain_tolerance, policies
    )
    own = (
        exact
        if case.own_formula is case.exact or case.own_formula is None
        else _with_estimates(
            case.own_formula, inputs, blocks[impl.formula.name], got, domain_tolerance, policies
        )
    )
    return dataclasses.replace(case, exact=exact, own_formula=own)


def _with_estimates(
    stats: ErrorStats,
    inputs: InputSet,
    blocks: list[ReferenceBlock],
    got: np.ndarray,
    tolerance: float,
    policies: tuple[Policy, ...],
) -> ErrorStats:
    """The statistics with the sample's estimates of the exhaustive figures added, the share
    of the range breaking each tolerance policy among them."""
    assert inputs.strata is not None and inputs.stratum_sizes is not None
    answers = [got[i : i + len(b.x)] for i, b in zip(_starts(blocks), blocks)]
    parts = [point_errors(inputs.fmt, answer, b.ref) for answer, b in zip(answers, blocks)]
    errors = np.concatenate([e for e, _ in parts])
    correct = np.concatenate([c for _, c in parts])
    formula = "erf" if stats.against == "exact" else stats.against  # as the tally reads its rule
    rules = {p.name: rule for p in policies if (rule := p.rule(inputs.fmt.name, formula)) is not None}
    breaks = {
        name: np.concatenate([policy_breaks(b, answer, rule) for answer, b in zip(answers, blocks)])
        for name, rule in rules.items()
    }
    return dataclasses.replace(
        stats, estimates=estimate(errors, correct, inputs.strata, inputs.stratum_sizes, tolerance, breaks)
    )


def _starts(blocks: list[ReferenceBlock]) -> list[int]:
    """Where each block of an in-memory input set starts in it."""
    return np.cumsum([0] + [len(b.x) for b in blocks[:-1]]).tolist()


# --- the whole audit --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditSettings:
    """Everything that determines an accuracy audit."""

    dtypes: tuple[str, ...] = tuple(FORMATS)
    implementations: tuple[str, ...] = ()
    """Names; empty means every built-in."""
    devices: tuple[str, ...] = ()
    """Empty means the default set: cpu, and cuda when present."""
    samples: int | None = None
    seed: int = 0
    value_range: ValueRange | None = None
    gate: Threshold | None = None
    """``--max-ulp N`` (:meth:`Threshold.gate`): a limit on every case."""
    domain_tolerance: float | None = None
    """None: the gate's max-ulp, else DEFAULT_DOMAIN_TOLERANCE."""
    jobs: int = 1
    cache_dir: Path | None = None
    top: int = 5
    exhaustive: bool = False
    """fp32: stream all 2^32 inputs (fp16/bf16 are always exhaustive)."""
    chunk_size: int = DEFAULT_CHUNK
    shard: Shard | None = None
    reference_store: Path | None = None
    """``--reference-store DIR`` (:mod:`~gelu_audit.audits.reference_store`); --exhaustive only."""
    plugin_options: PluginOptions = PluginOptions()
    """What ``package.module:function`` implementations claim, and their timeout."""
    thresholds: tuple[Threshold, ...] = ()
    """Per-case limits from the configuration (``[[tool.gelu-audit.threshold]]``)."""
    passes: tuple[Pass, ...] = (Pass.FORWARD,)
    """``--pass``: the forward GELU, its gradient, or both."""
    reference_tier: ReferenceTier | None = None
    """``--reference-tier``: where the fast tier's float64 work runs. None (``auto``): chosen by
    :func:`reference_tier_for` once the devices are known; a report's settings hold the choice."""

    @property
    def tier(self) -> ReferenceTier:
        """The reference tier in effect (SciPy until :func:`run_audit` has chosen)."""
        return self.reference_tier or SCIPY_TIER

    @property
    def policies(self) -> tuple[Policy, ...]:
        """The tolerance policies every case is judged by: the built-in ones, and the rtol/atol
        rules of the thresholds."""
        own = {policy.name: policy for t in self.thresholds if (policy := t.own_policy) is not None}
        return BUILTIN_POLICIES + tuple(own.values())

    @property
    def effective_domain_tolerance(self) -> float:
        if self.domain_tolerance is not None:
            return self.domain_tolerance
        if self.gate is not None and self.gate.max_ulp is not None:
            return self.gate.max_ulp
        return DEFAULT_DOMAIN_TOLERANCE


@dataclass(frozen=True)
class Skipped:
    """A combination not audited, and why."""

    implementation: str
    device: str
    dtype: str
    reason: str
    pass_: Pass = Pass.FORWARD


@dataclass(frozen=True)
class AuditReport:
    """The result of :func:`run_audit`."""

    settings: AuditSettings
    inputs: dict[str, AuditedInputs]
    """Per dtype: how its inputs were chosen (an in-memory set, or an exhaustive stream)."""
    reference_sources: dict[str, list[dict[str, Any]]]
    results: list[CaseResult]
    skipped: list[Skipped]
    seconds: float
    verdicts: list[Verdict] = field(default_factory=list)
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per streamed dtype: where the time went (CPU seconds per stage, wall seconds)."""
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per streamed dtype: mergeable accumulator states, kept for sharded runs."""

    @property
    def passed(self) -> bool:
        """Every case meets the gate and thresholds; and where either is set, some case ran: a
        gate over no case (every one skipped, say a kernel without the dtype asked) checked
        nothing, which a CI job must not read as a pass."""
        return all(v.passed for v in self.verdicts) and not self.gated_nothing

    GATED_NOTHING = "no case ran, so the gate checked nothing"

    @property
    def gated_nothing(self) -> bool:
        """A gate or threshold was set and no case ran."""
        return not self.results and (self.settings.gate is not None or bool(self.settings.thresholds))


def references_for(
    inputs: InputSet,
    formulas: set[Function],
    settings: AuditSettings,
    progress: ProgressSink,
) -> tuple[dict[str, ReferenceValues], list[dict[str, Any]]]:
    """The references an input set needs: cached mpmath tables for exhaustive 16-bit formats,
    the fast tier (mpmath in parallel where it cannot decide) for samples."""
    fmt = inputs.fmt
    references: dict[str, ReferenceValues] = {}
    sources: list[dict[str, Any]] = []
    for formula in sorted(formulas, key=lambda f: f.name):
        label = f"reference {formula} {fmt}"
        if inputs.is_exhaustive:
            with progress.task(f"{label} (exhaustive table)", fmt.pattern_count) as advance:
                table, source = exhaustive_table(formula, fmt, settings.cache_dir, settings.jobs, advance)
            references[formula.name] = table.take(inputs.patterns.astype(np.int64))
            sources.append(
                {
                    "formula": formula.name,
                    "engine": "mpmath",
                    "cache": source.path or None,
                    "from_cache": source.cached,
                    "note": source.rebuilt_reason,
                }
            )
            if source.rebuilt_reason:
                progress.log(f"{label}: {source.rebuilt_reason}")
        else:
            with progress.task(label, len(inputs)) as advance:

                def parallel_mpmath(
                    formula: Function, fmt: FloatFormat, values: np.ndarray
                ) -> ReferenceValues:
                    return compute_references(formula, fmt, values, settings.jobs, advance, chunk_size=256)

                references[formula.name], counts = fast_references_of(
                    formula, fmt, inputs.values, parallel_mpmath, settings.tier
                )
                advance(len(inputs) - counts.counts["mpmath"])
            sources.append(
                {
                    "formula": formula.name,
                    "engine": "fast tier + mpmath",
                    "tier": settings.tier.spec,
                    "cache": None,
                    "from_cache": False,
                    "note": None,
                    "regions": counts.counts,
                }
            )
    return references, sources


def prepared_blocks(
    inputs: InputSet, references: dict[str, ReferenceValues], top: int, shared: bool = False
) -> dict[str, list[ReferenceBlock]]:
    """Each reference cut into blocks with its rounding residuals, shared by every case
    (``shared``: by more than one, so each block's summary is worth computing)."""
    index = inputs.patterns.astype(np.int64) if inputs.is_exhaustive else np.arange(len(inputs))
    return {
        f: reference_blocks(inputs.fmt, inputs.values, index, ref, top, shared)
        for f, ref in references.items()
    }


@dataclass(frozen=True)
class _PlannedCase:
    """One implementation × device of a dtype and pass: what is audited, or why it is skipped."""

    impl: Implementation
    """As selected (the forward pass): its ``prepare`` is the one-time setup."""
    audited: Implementation | None
    """What the case audits (the pass's implementation); None when it is skipped."""
    device: str
    pass_: Pass
    skipped: Skipped | None = None
    """Why not, when it is reported as skipped (a CPU-only row on a GPU nobody asked for is not)."""
    waits: bool = False
    """Hosted by the helper: whether its build succeeded is asked only when its turn comes."""


def _planned_cases(
    implementations: list[Implementation],
    hosted: dict[str, Implementation],
    devices: list[str],
    fmt: FloatFormat,
    pass_: Pass,
    devices_asked: bool,
) -> list[_PlannedCase]:
    """Every case of ``fmt`` and ``pass_`` in report order, each decided now except the cases
    the helper hosts (``hosted``, by name, on its device), which :func:`_decided` decides when
    their turn comes."""
    planned = []
    for selected in implementations:
        for device in devices:
            waits = device == HELPED_DEVICE and selected.name in hosted
            impl = hosted[selected.name] if waits else selected
            audited = impl if pass_ is Pass.FORWARD else backward_implementation(impl)
            if waits:  # its setup is the helper's, asked for when its turn comes
                reason = earlier_failure(impl, device, fmt) or unavailable_reason(impl, device, fmt)
            else:
                reason = skip_reason(impl, device, fmt)
            if reason is None and audited is None:
                reason = SkipReason(SkipKind.NOT_DIFFERENTIABLE, NOT_DIFFERENTIABLE)
            if reason is None:
                planned.append(_PlannedCase(impl, audited, device, pass_, waits=waits))
                continue
            # A CPU-only row on a GPU from the default devices is not news: left out.
            told = not (reason.kind is SkipKind.CPU_ONLY and not devices_asked)
            skipped = Skipped(impl.name, device, fmt.name, str(reason), pass_) if told else None
            planned.append(_PlannedCase(impl, None, device, pass_, skipped))
    return planned


def _decided(plan: _PlannedCase, fmt: FloatFormat) -> _PlannedCase:
    """``plan`` once its build is known: skipped if it failed (waiting for the helper, if it is
    still building)."""
    if not plan.waits:
        return plan
    reason = preparation_failure(plan.impl, plan.device, fmt)
    if reason is None:
        return dataclasses.replace(plan, waits=False)
    skipped = Skipped(plan.impl.name, plan.device, fmt.name, str(reason), plan.pass_)
    return dataclasses.replace(plan, audited=None, skipped=skipped, waits=False)


def _audit_planned(
    planned: list[_PlannedCase],
    fmt: FloatFormat,
    pass_: Pass,
    settings: AuditSettings,
    progress: ProgressSink,
    all_inputs: dict[str, AuditedInputs],
    all_sources: dict[str, list[dict[str, Any]]],
) -> list[CaseResult | Skipped]:
    """The cases of one dtype and pass, sampled or 16-bit exhaustive, audited: each one's
    result or skip, in report order. The cases that wait for the helper come last, so that it
    builds while the others are audited, and the references only they need are computed once
    they are known to run: the report is the one the cases would give in this process."""
    if not any(plan.audited is not None and not plan.waits for plan in planned):
        planned = [_decided(plan, fmt) for plan in planned]  # nothing to do meanwhile
    outcomes: dict[int, CaseResult | Skipped] = {
        index: plan.skipped for index, plan in enumerate(planned) if plan.skipped is not None
    }
    ready = [index for index, plan in enumerate(planned) if plan.audited is not None and not plan.waits]
    waiting = [index for index, plan in enumerate(planned) if plan.waits]
    if not ready:
        return [outcomes[index] for index in sorted(outcomes)]
    inputs = all_inputs.get(fmt.name) or default_inputs(
        fmt, settings.samples, settings.seed, settings.value_range
    )
    assert isinstance(inputs, InputSet)
    all_inputs[fmt.name] = inputs
    blocks: dict[str, list[ReferenceBlock]] = {}
    sources: list[dict[str, Any]] = []
    shared = len(ready) + len(waiting) > 1

    def audit(indices: list[int]) -> None:
        """References first (their own progress bars: never inside another), then the cases."""
        cases = [plan.audited for plan in (planned[index] for index in indices) if plan.audited is not None]
        formulas = {exact_function_for(impl.formula) for impl in cases} | {impl.formula for impl in cases}
        missing = {formula for formula in formulas if formula.name not in blocks}
        if missing:
            references, new_sources = references_for(inputs, missing, settings, progress)
            sources.extend(new_sources)
            blocks.update(prepared_blocks(inputs, references, settings.top, shared))
        with progress.task(f"implementations {fmt} {pass_}", len(indices)) as advance:
            for index in indices:
                plan = planned[index]
                assert plan.audited is not None
                outcomes[index] = audit_case(
                    plan.audited,
                    plan.device,
                    inputs,
                    blocks,
                    settings.effective_domain_tolerance,
                    settings.top,
                    settings.policies,
                )
                advance(1)

    audit(ready)
    for index in waiting:
        planned[index] = _decided(planned[index], fmt)
        if (skip := planned[index].skipped) is not None:  # its build failed in the helper
            outcomes[index] = skip
    running = [index for index in waiting if planned[index].audited is not None]
    if running:
        audit(running)
    all_sources.setdefault(fmt.name, []).extend(sorted(sources, key=lambda source: source["formula"]))
    return [outcomes[index] for index in sorted(outcomes)]


def run_audit(
    settings: AuditSettings, progress: ProgressSink = SILENT, *, use_helper: bool = False
) -> AuditReport:
    """Audit every selected implementation × device × dtype. Raises GeluAuditError on bad settings.

    ``use_helper``: hand the CPU cases of the rows whose build is costly (torch.compile) to a
    helper process that builds and runs them while the rest is audited
    (:mod:`~gelu_audit.implementations.helper`). The helper is spawned, which imports the main
    module again, and does not see state set in this process: the CLI's process is safe on both
    counts, a caller's may not be."""
    start = time.perf_counter()
    implementations = select_implementations(list(settings.implementations), settings.plugin_options)
    formats = [FORMATS[name] for name in settings.dtypes]
    for fmt in formats:  # an audit of no input would pass any gate: refused before any work
        require_values_in(fmt, settings.value_range)
    streamed = [fmt for fmt in formats if settings.exhaustive and fmt.name == "fp32"]
    helped = [fmt for fmt in formats if fmt not in streamed]  # a stream's workers build their own
    # first, so that the helper builds while this process imports torch
    hosted = hand_to_helper(implementations, helped, settings.devices) if use_helper and helped else {}
    devices, skipped_devices = resolve_devices(list(settings.devices))
    settings = replace(settings, reference_tier=reference_tier_for(settings.reference_tier, devices))
    skipped = [
        Skipped(impl.name, device, fmt.name, str(reason), pass_)
        for device, reason in skipped_devices
        for fmt in formats
        for pass_ in settings.passes
        for impl in implementations
        if unavailable_reason(impl, device, fmt) is None
    ]
    check_exhaustive_settings(settings)
    results: list[CaseResult] = []
    all_inputs: dict[str, AuditedInputs] = {}
    all_sources: dict[str, list[dict[str, Any]]] = {}
    streams: dict[str, dict[str, Any]] = {}
    states: dict[str, dict[str, Any]] = {}
    for fmt in formats:
        for pass_ in settings.passes:
            helped_here = {} if fmt in streamed else hosted
            planned = _planned_cases(
                implementations, helped_here, devices, fmt, pass_, bool(settings.devices)
            )
            if fmt not in streamed:
                for outcome_of_case in _audit_planned(
                    planned, fmt, pass_, settings, progress, all_inputs, all_sources
                ):
                    if isinstance(outcome_of_case, Skipped):
                        skipped.append(outcome_of_case)
                    else:
                        results.append(outcome_of_case)
                continue
            skipped.extend(plan.skipped for plan in planned if plan.skipped is not None)
            cases = [(plan.audited, plan.device) for plan in planned if plan.audited is not None]
            if cases:
                outcome = streamed_cases(fmt, cases, settings, progress)
                all_inputs[fmt.name] = outcome.inputs
                all_sources[fmt.name], streams[fmt.name], states[fmt.name] = outcome_parts(outcome, settings)
                results.extend(finish_streamed(fmt, cases, outcome, settings))
    verdicts = [verdict(r, settings.gate, settings.thresholds) for r in results]
    return AuditReport(
        settings,
        all_inputs,
        all_sources,
        results,
        skipped,
        time.perf_counter() - start,
        verdicts,
        streams,
        states if settings.shard else {},
    )


def reference_tier_for(asked: ReferenceTier | None, devices: list[str]) -> ReferenceTier:
    """``--reference-tier`` as asked (its device checked), or by default the torch tier on the
    first CUDA device the audit runs on, else the SciPy tier.

    On a GPU the region ``fast`` runs beside the kernels; on the CPU the SciPy tier is the
    faster of the two (1.9–3.3× in the core on a 2-core Xeon, docs/speed.md) and gives the same bits."""
    if asked is not None:
        if asked.device != "cpu" and (reason := device_unavailable_reason(asked.device)) is not None:
            raise EnvironmentUnavailableError(f"--reference-tier {asked.spec}: {reason}")
        return asked
    cuda = [device for device in devices if device.startswith("cuda")]
    return ReferenceTier(TierBackend.TORCH, cuda[0]) if cuda else SCIPY_TIER


# --- exhaustive fp32 ---------------------------------------------------------------------------


def check_exhaustive_settings(settings: AuditSettings) -> None:
    if settings.exhaustive and "fp32" in settings.dtypes and len(settings.passes) > 1:
        raise UsageError(
            "--exhaustive streams one pass of fp32 at a time: use --pass forward or --pass backward "
            "(two runs, or two shard sets)"
        )
    if settings.exhaustive and "fp64" in settings.dtypes:
        raise UsageError(
            "--exhaustive cannot cover fp64's 2^64 inputs; audit fp64 by sampling (drop --exhaustive for it)"
        )
    if settings.shard and not settings.exhaustive:
        raise UsageError("--shard splits an exhaustive run: add --exhaustive")
    if settings.shard and set(settings.dtypes) != {"fp32"}:
        raise UsageError("--shard splits the exhaustive fp32 space: use it with --dtype fp32 alone")
    if settings.reference_store is not None:
        if not (settings.exhaustive and "fp32" in settings.dtypes):
            raise UsageError("--reference-store keeps exhaustive fp32 references: add --exhaustive -d fp32")
        open_store(settings.reference_store)


def streamed_cases(
    fmt: FloatFormat, cases: list[tuple[Implementation, str]], settings: AuditSettings, progress: ProgressSink
) -> StreamOutcome:
    exact = {exact_function_for(impl.formula).name for impl, _ in cases}
    formulas = tuple(sorted(exact | {impl.formula.name for impl, _ in cases}))
    space = PatternSpace(fmt, settings.value_range, settings.shard)
    return stream(
        fmt,
        space,
        formulas,
        tuple((impl.name, device) for impl, device in cases),
        settings.effective_domain_tolerance,
        settings.top,
        settings.jobs,
        settings.chunk_size,
        progress,
        settings.plugin_options,
        pass_of(cases[0][0].formula),
        settings.policies,
        settings.reference_store,
        settings.tier,
    )


def outcome_parts(
    outcome: StreamOutcome, settings: AuditSettings
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The report's reference sources, timing breakdown and mergeable state of a stream."""
    sources = [
        {
            "formula": f,
            "engine": "fast tier + mpmath",
            "tier": settings.tier.spec,
            "cache": None if settings.reference_store is None else str(settings.reference_store),
            "from_cache": bool(outcome.store.chunks_read) and not outcome.store.chunks_written,
            "note": None,
            "regions": counts.counts,
        }
        for f, counts in sorted(outcome.tiers.items())
    ]
    timing = {
        "wall_seconds": outcome.wall_seconds,
        "jobs": settings.jobs,
        "chunk_size": settings.chunk_size,
        "cpu_seconds": dict(outcome.seconds),
        "peak_rss_mib": outcome.peak_rss_mib,
        "reference_store": None if settings.reference_store is None else outcome.store.to_json(),
    }
    state = {
        "cases": {
            f"{name}@{device}": case.to_state() for (name, device), case in outcome.accumulators.items()
        },
        "errors": {f"{name}@{device}": error for (name, device), error in outcome.errors.items()},
        "regions": {f: counts.counts for f, counts in outcome.tiers.items()},
        "points": len(outcome.inputs),
    }
    return sources, timing, state


def finish_streamed(
    fmt: FloatFormat, cases: list[tuple[Implementation, str]], outcome: StreamOutcome, settings: AuditSettings
) -> list[CaseResult]:
    """Case results of a stream; specials are run here, once per case."""
    results = []
    for impl, device in cases:
        key = (impl.name, device)
        if key in outcome.errors:
            results.append(
                error_case(Audited.of(impl), device, fmt, outcome.errors[key], len(outcome.inputs))
            )
            continue
        try:
            specials = special_checks(fmt, impl, device)
        except ImplementationError as error:
            results.append(error_case(Audited.of(impl), device, fmt, str(error), len(outcome.inputs)))
            continue
        empty = CaseAccumulators.empty(
            impl.formula, settings.effective_domain_tolerance, settings.top, settings.policies
        )
        accumulators = outcome.accumulators.setdefault(key, empty)  # a shard may hold no point
        seconds = outcome.seconds.get(impl.name, 0.0)
        results.append(
            case_result(Audited.of(impl), device, fmt, accumulators, outcome.inputs.space, specials, seconds)
        )
    return results
