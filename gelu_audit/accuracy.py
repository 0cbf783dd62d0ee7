"""The accuracy audit: ULP errors against correctly rounded references, and what they add up to.

Pure computation: no printing, no exiting. :func:`run_audit` returns an :class:`AuditReport`
that the renderers in :mod:`gelu_audit.report` turn into tables or JSON.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gelu_audit.formats import (
    FORMATS,
    FloatFormat,
    hex_pattern,
    ordinals,
    ulp_exponent,
    values_to_patterns,
)
from gelu_audit.implementations import (
    Implementation,
    ImplementationError,
    resolve_devices,
    run_implementation,
    select_implementations,
    unavailable_reason,
)
from gelu_audit.inputs import InputSet, ValueRange, default_inputs, special_values
from gelu_audit.progress import SILENT, ProgressSink
from gelu_audit.reference import (
    ReferenceValues,
    compute_references,
    exhaustive_table,
    reference_point,
)

HISTOGRAM_EDGES: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
"""Upper edges of the ULP histogram's bins; a bin for exactly 0 comes first, >1000 last."""

HISTOGRAM_LABELS: tuple[str, ...] = (
    ("0",) + tuple(f"≤{e:g}" for e in HISTOGRAM_EDGES) + (f">{HISTOGRAM_EDGES[-1]:g}",)
)

DEFAULT_DOMAIN_TOLERANCE = 2.0
"""ULP tolerance of the accurate domain when no --max-ulp gate is given. Not 1: good float
kernels slip just past 1 ULP here and there (fp32 F.gelu: 1.01 ULP at x = 9.4e-8), and the
domain is meant to show where a formula or a cancellation breaks down, not a last-bit slip."""

AGAINST_CHOICES = ("exact", "formula")


# --- error arithmetic -------------------------------------------------------------------------


def ulp_errors(fmt: FloatFormat, got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """err = |ŷ − y| / ulp_T(y) per point; NaN where ŷ or y is not finite.

    ŷ and y are both scaled by 1/ulp_T(y) (exact power-of-two scalings) before subtracting,
    so the error keeps full float64 relative accuracy whatever the binade. It may be +inf
    when it exceeds float64's range (garbage far above a subnormal exact value in fp64).
    """
    got = np.asarray(got, dtype=np.float64)
    finite = np.isfinite(got) & np.isfinite(ref.mant_hi)
    zero_ref = ref.mant_hi == 0
    binade = np.where(zero_ref, fmt.emin - 1, ref.binade)
    quantum = ulp_exponent(fmt, binade).astype(np.int64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        scaled_got = np.ldexp(np.where(finite, got, 0.0), np.clip(-quantum, -4000, 4000).astype(np.int32))
        shift = np.clip(binade - quantum, -4000, 4000).astype(np.int32)
        hi = np.ldexp(np.where(finite, ref.mant_hi, 0.0), shift)
        lo = np.ldexp(np.where(finite, ref.mant_lo, 0.0), shift)
        err = np.abs((scaled_got - hi) - lo)
    return np.where(finite, err, np.nan)


def ordinal_distances(fmt: FloatFormat, got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """How many representable numbers lie between ŷ and RN_T(y); -1 where either is not finite."""
    finite = np.isfinite(got) & np.isfinite(ref.rounded)
    safe_got = np.where(finite, got, 0.0)
    safe_ref = np.where(finite, ref.rounded, 0.0)
    return np.where(finite, np.abs(ordinals(fmt, safe_got) - ordinals(fmt, safe_ref)), -1)


def nonfinite_mismatches(got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """True where exactly one of ŷ and y is finite, or both are not finite but differ."""
    exact = ref.mant_hi  # NaN / ±inf exactly where y is, and finite otherwise
    got_finite, exact_finite = np.isfinite(got), np.isfinite(exact)
    both_nan = np.isnan(got) & np.isnan(exact)
    same_inf = np.isinf(got) & np.isinf(exact) & (np.sign(got) == np.sign(exact))
    return (got_finite != exact_finite) | (~got_finite & ~exact_finite & ~both_nan & ~same_inf)


def wrong_sign_zeros(got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """True where ŷ is a zero whose sign differs from the exact value's (GELU(x) has x's sign)."""
    exact = ref.mant_hi
    return (got == 0) & np.isfinite(exact) & (np.signbit(got) != np.signbit(exact))


def histogram(errors: np.ndarray) -> tuple[tuple[str, int], ...]:
    """Counts of finite-point ULP errors in the bins of :data:`HISTOGRAM_LABELS`."""
    errors = errors[~np.isnan(errors)]
    counts = [int(np.count_nonzero(errors == 0))]
    lower = 0.0
    for edge in HISTOGRAM_EDGES:
        counts.append(int(np.count_nonzero((errors > lower) & (errors <= edge))))
        lower = edge
    counts.append(int(np.count_nonzero(errors > lower)))
    return tuple(zip(HISTOGRAM_LABELS, counts))


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointReport:
    """One input and what happened there."""

    x: float
    """The input, as a float (exact)."""
    x_hex: str
    """The input's bit pattern in the audited format."""
    got: float
    """What the implementation returned (exact)."""
    got_hex: str
    exact: str
    """The exact reference value y, in decimal (17 significant digits)."""
    rounded: float
    """RN_T(y): the correctly rounded answer."""
    ulp_error: float | None
    """|ŷ − y| / ulp_T(y); None where ŷ or y is not finite."""
    ordinal_distance: int | None
    """Representable numbers between ŷ and RN_T(y); None where either is not finite."""


@dataclass(frozen=True)
class AccurateDomain:
    """The widest interval around 0 on which every tested input stays within a tolerance."""

    tolerance: float
    """ULP tolerance used."""
    lo: float | None
    """Most negative tested input of the interval (None: fails at 0)."""
    hi: float | None
    """Most positive tested input of the interval (None: fails at 0)."""
    failure_below: float | None
    """The failing input just below ``lo`` (None: nothing below fails)."""
    failure_above: float | None
    """The failing input just above ``hi`` (None: nothing above fails)."""

    @property
    def covers_all(self) -> bool:
        return self.failure_below is None and self.failure_above is None


@dataclass(frozen=True)
class ErrorStats:
    """Error statistics of one implementation against one reference formula."""

    against: str
    """``exact`` (true GELU) or the formula id the implementation claims."""
    finite_points: int
    """Inputs where both ŷ and y are finite: the population of every statistic below."""
    max_ulp: float
    mean_ulp: float
    p99_ulp: float
    correctly_rounded: float
    """Share of finite points where ŷ = RN_T(y) (±0 equal)."""
    max_ordinal_distance: int
    max_error_bits: float
    """log2(1 + max ordinal distance): how many low bits are wrong at worst."""
    max_abs_error: float
    max_rel_error: float | None
    """Over points whose exact value is a normal number of the format; None if there are none."""
    histogram: tuple[tuple[str, int], ...]
    worst: tuple[PointReport, ...]
    """The inputs with the largest errors, largest first."""
    accurate_domain: AccurateDomain


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


@dataclass(frozen=True)
class Gate:
    """``--max-ulp N`` against the exact GELU or the claimed formula."""

    max_ulp: float
    against: str = "exact"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...] = ()


def verdict(case: CaseResult, gate: Gate | None) -> Verdict:
    """Whether a case passes: no implementation error, and under a gate no excess error."""
    if case.status != "ok":
        return Verdict(False, (f"error: {case.error}",))
    if gate is None:
        return Verdict(True)
    reasons = []
    stats = case.exact if gate.against == "exact" else case.own_formula
    assert stats is not None
    if stats.max_ulp > gate.max_ulp:
        reasons.append(f"max {stats.max_ulp:.4g} ULP > {gate.max_ulp:g} (against {stats.against})")
    if case.nonfinite_count:
        reasons.append(f"{case.nonfinite_count} non-finite mismatch(es)")
    return Verdict(not reasons, tuple(reasons))


# --- computing the statistics -----------------------------------------------------------------


def _point(fmt: FloatFormat, x: np.ndarray, got: np.ndarray, ref: ReferenceValues, i: int,
           err: np.ndarray | None, dist: np.ndarray | None) -> PointReport:  # fmt: skip
    e = None if err is None or np.isnan(err[i]) else float(err[i])
    d = None if dist is None or dist[i] < 0 else int(dist[i])
    return PointReport(
        float(x[i]), hex_pattern(fmt, float(x[i])), float(got[i]), hex_pattern(fmt, float(got[i])),
        ref.exact_decimal(i), float(ref.rounded[i]), e, d,
    )  # fmt: skip


def accurate_domain(x: np.ndarray, failing: np.ndarray, tolerance: float) -> AccurateDomain:
    """Widest interval around 0 of tested inputs with no failure (finite inputs only)."""
    finite = np.isfinite(x)
    x, failing = x[finite], failing[finite]
    at_zero = (x == 0) & failing
    if at_zero.any():
        return AccurateDomain(tolerance, None, None, 0.0, 0.0)
    neg_fail = x[failing & (x < 0)]
    pos_fail = x[failing & (x > 0)]
    below = float(neg_fail.max()) if neg_fail.size else None
    above = float(pos_fail.min()) if pos_fail.size else None
    lower_bound = below if below is not None else -math.inf
    upper_bound = above if above is not None else math.inf
    left = x[(x > lower_bound) & (x <= 0)]
    right = x[(x < upper_bound) & (x >= 0)]
    lo = float(left.min()) if left.size else None
    hi = float(right.max()) if right.size else None
    return AccurateDomain(tolerance, lo, hi, below, above)


def error_stats(
    fmt: FloatFormat,
    against: str,
    x: np.ndarray,
    got: np.ndarray,
    ref: ReferenceValues,
    domain_tolerance: float,
    top: int = 5,
) -> ErrorStats:
    """All statistics of ``got`` against one reference."""
    err = ulp_errors(fmt, got, ref)
    dist = ordinal_distances(fmt, got, ref)
    finite = ~np.isnan(err)
    finite_err = err[finite]
    n = int(finite.sum())
    mismatched = nonfinite_mismatches(got, ref)
    order = np.argsort(np.where(finite, -err, np.inf), kind="stable")[: min(top, n)]
    exact_approx = ref.approximate()
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        abs_err = np.abs(got - exact_approx)[finite]
        normal = finite & (np.abs(exact_approx) >= fmt.smallest_normal)
        rel = (np.abs(got - exact_approx) / np.abs(exact_approx))[normal]
    max_d = int(dist[finite].max()) if n else 0
    return ErrorStats(
        against=against,
        finite_points=n,
        max_ulp=float(finite_err.max()) if n else 0.0,
        mean_ulp=float(finite_err.mean()) if n else 0.0,
        p99_ulp=float(np.percentile(finite_err, 99)) if n else 0.0,
        correctly_rounded=float(np.count_nonzero(dist[finite] == 0) / n) if n else 1.0,
        max_ordinal_distance=max_d,
        max_error_bits=math.log2(1 + max_d),
        max_abs_error=float(abs_err.max()) if n else 0.0,
        max_rel_error=float(rel.max()) if rel.size else None,
        histogram=histogram(err),
        worst=tuple(_point(fmt, x, got, ref, int(i), err, dist) for i in order),
        accurate_domain=accurate_domain(x, (err > domain_tolerance) | mismatched, domain_tolerance),
    )


_SPECIAL_NAMES = (
    "NaN", "+inf", "-inf", "+0", "-0", "+largest finite", "-largest finite",
    "+smallest normal", "-smallest normal", "+smallest subnormal", "-smallest subnormal",
)  # fmt: skip


def special_checks(fmt: FloatFormat, impl: Implementation, device: str) -> tuple[SpecialCheck, ...]:
    """Run the implementation on the special values and judge each answer."""
    xs = special_values(fmt)
    got = run_implementation(impl, fmt, device, values_to_patterns(fmt, xs))
    checks = []
    for name, x, y in zip(_SPECIAL_NAMES, xs.tolist(), got.tolist()):
        expected = reference_point("erf", fmt, x).rounded
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


def audit_case(
    impl: Implementation,
    device: str,
    inputs: InputSet,
    references: dict[str, ReferenceValues],
    domain_tolerance: float,
    top: int = 5,
) -> CaseResult:
    """Audit one implementation on one device over one input set (references precomputed)."""
    fmt = inputs.fmt
    start = time.perf_counter()
    base = dict(implementation=impl.name, backend=impl.backend, formula=impl.formula,
                device=device, dtype=fmt.name)  # fmt: skip
    try:
        got = run_implementation(impl, fmt, device, inputs.patterns)
        specials = special_checks(fmt, impl, device)
    except ImplementationError as error:
        return CaseResult(**base, status="error", error=str(error), points=len(inputs))
    x = inputs.values
    exact_ref = references["erf"]
    exact = error_stats(fmt, "exact", x, got, exact_ref, domain_tolerance, top)
    own = (
        exact if impl.formula == "erf"
        else error_stats(fmt, impl.formula, x, got, references[impl.formula], domain_tolerance, top)
    )  # fmt: skip
    mismatched = np.flatnonzero(nonfinite_mismatches(got, exact_ref))
    wrong_zero = np.flatnonzero(wrong_sign_zeros(got, exact_ref))
    return CaseResult(
        **base,
        status="ok",
        points=len(inputs),
        exact=exact,
        own_formula=own,
        nonfinite_count=len(mismatched),
        nonfinite=tuple(_point(fmt, x, got, exact_ref, int(i), None, None) for i in mismatched[:top]),
        wrong_sign_zero_count=len(wrong_zero),
        wrong_sign_zeros=tuple(
            _point(fmt, x, got, exact_ref, int(i), None, None) for i in wrong_zero[:top]
        ),
        specials=specials,
        seconds=time.perf_counter() - start,
    )


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
    gate: Gate | None = None
    domain_tolerance: float | None = None
    """None: the gate's max-ulp, else DEFAULT_DOMAIN_TOLERANCE."""
    jobs: int = 1
    cache_dir: Path | None = None
    top: int = 5

    @property
    def effective_domain_tolerance(self) -> float:
        if self.domain_tolerance is not None:
            return self.domain_tolerance
        return self.gate.max_ulp if self.gate else DEFAULT_DOMAIN_TOLERANCE


@dataclass(frozen=True)
class Skipped:
    """A combination not audited, and why."""

    implementation: str
    device: str
    dtype: str
    reason: str


@dataclass(frozen=True)
class AuditReport:
    """The result of :func:`run_audit`."""

    settings: AuditSettings
    inputs: dict[str, InputSet]
    reference_sources: dict[str, list[dict[str, object]]]
    results: list[CaseResult]
    skipped: list[Skipped]
    seconds: float
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


def references_for(
    inputs: InputSet,
    formulas: set[str],
    settings: AuditSettings,
    progress: ProgressSink,
) -> tuple[dict[str, ReferenceValues], list[dict[str, object]]]:
    """The references an input set needs, from the cache for exhaustive 16-bit formats."""
    fmt = inputs.fmt
    references, sources = {}, []
    for formula in sorted(formulas):
        label = f"reference {formula} {fmt}"
        if inputs.is_exhaustive:
            with progress.task(f"{label} (exhaustive table)", fmt.pattern_count) as advance:
                table, source = exhaustive_table(
                    formula, fmt, settings.cache_dir, settings.jobs, advance
                )
            references[formula] = table.take(inputs.patterns.astype(np.int64))
            sources.append({"formula": formula, "engine": "mpmath", "cache": source.path or None,
                            "from_cache": source.cached, "note": source.rebuilt_reason})  # fmt: skip
            if source.rebuilt_reason:
                progress.log(f"{label}: {source.rebuilt_reason}")
        else:
            with progress.task(label, len(inputs)) as advance:
                references[formula] = compute_references(
                    formula, fmt, inputs.values, settings.jobs, advance
                )
            sources.append({"formula": formula, "engine": "mpmath", "cache": None,
                            "from_cache": False, "note": None})  # fmt: skip
    return references, sources


def run_audit(settings: AuditSettings, progress: ProgressSink = SILENT) -> AuditReport:
    """Audit every selected implementation × device × dtype. Raises GeluAuditError on bad settings."""
    start = time.perf_counter()
    implementations = select_implementations(list(settings.implementations))
    devices, skipped_devices = resolve_devices(list(settings.devices))
    formats = [FORMATS[name] for name in settings.dtypes]
    skipped = [
        Skipped(impl.name, device, fmt.name, reason)
        for device, reason in skipped_devices
        for fmt in formats
        for impl in implementations
        if unavailable_reason(impl, device, fmt) is None
    ]
    results, all_inputs, all_sources = [], {}, {}
    for fmt in formats:
        cases = []
        for impl in implementations:
            for device in devices:
                reason = unavailable_reason(impl, device, fmt)
                if reason:
                    if not (reason == "CPU only" and not settings.devices):
                        skipped.append(Skipped(impl.name, device, fmt.name, reason))
                else:
                    cases.append((impl, device))
        if not cases:
            continue
        inputs = default_inputs(fmt, settings.samples, settings.seed, settings.value_range)
        all_inputs[fmt.name] = inputs
        formulas = {"erf"} | {impl.formula for impl, _ in cases}
        references, all_sources[fmt.name] = references_for(inputs, formulas, settings, progress)
        with progress.task(f"implementations {fmt}", len(cases)) as advance:
            for impl, device in cases:
                results.append(
                    audit_case(impl, device, inputs, references,
                               settings.effective_domain_tolerance, settings.top)  # fmt: skip
                )
                advance(1)
    verdicts = [verdict(r, settings.gate) for r in results]
    return AuditReport(
        settings, all_inputs, all_sources, results, skipped, time.perf_counter() - start, verdicts
    )
