"""Text that every renderer shares: number formats, the sparkline, the failure lines
(rendering rich objects to a string is :mod:`gelu_audit.report.console`)."""

from __future__ import annotations

import math

from rich.text import Text

from gelu_audit.audits.accuracy import CaseResult
from gelu_audit.audits.compare import CaseChange, ReportComparison
from gelu_audit.audits.estimates import Estimate
from gelu_audit.audits.profile import ErrorProfile
from gelu_audit.audits.speed import (
    BASELINE_COMPARED_NOTHING,
    BaselineChange,
    BaselineMetric,
    SpeedCase,
    SpeedReport,
    copy_drift,
)
from gelu_audit.audits.stats import AccurateDomain, ErrorStats


def format_ulp(value: float | None) -> str:
    """ULP figures: three decimals when small, thousands separators when large."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "inf"
    if value < 100:
        return f"{value:.3f}"
    if value < 1e7:
        return f"{value:,.0f}"
    return f"{value:.3e}"


def format_share_estimate(estimate: Estimate) -> str:
    """A share estimated from a sample: ``95.7%±0.4``, the ± the wider side of its 95% interval;
    below 1%, to two significant digits (``0.0041%±0.0030``), so a small share never reads
    0.0%; ``—`` when there is nothing to estimate from (NaN)."""
    if math.isnan(estimate.value):
        return "—"
    half = max(estimate.value - estimate.low, estimate.high - estimate.value)
    decimals = 1
    if 0 < estimate.value < 0.01:
        decimals = 1 - math.floor(math.log10(100 * estimate.value))
    return f"{100 * estimate.value:.{decimals}f}%±{100 * half:.{decimals}f}"


def format_correctly_rounded(stats: ErrorStats) -> str:
    """The correctly rounded share: estimated for the whole range when the inputs were a
    stratified sample (``95.7%±0.4``), else the share of the tested points (``95.6%``)."""
    if stats.estimates is not None:
        return format_share_estimate(stats.estimates.correctly_rounded)
    return f"{100 * stats.correctly_rounded:.1f}%"


def accuracy_rank_key(
    *,
    finite: int,
    nonfinite: int,
    over_share: float,
    max_outside_flush: float,
    max_ulp: float,
    correctly_rounded: float,
    mean_ulp: float,
) -> tuple[float, float, float, float, float]:
    """How the verdict line and the heatmap rank cases, most accurate first (the one rule, for
    cases in memory and read back from a document alike).

    First the share of answers that are wrong: over the tolerance (``over_share``, estimated for
    a sample) or not finite where the exact value is. Then the largest error outside a flushed
    tail, the largest error, the correctly rounded share, the mean. Not the largest error
    first: in fp32 and bf16 nearly every kernel's largest error lies in the same flushed or
    underflowing tail (1.67e7 ULP), so it ranked kernels by noise, and a kernel that flushes
    every subnormal came before one within 2 ULP almost everywhere. A case with no answer to
    judge, or a NaN figure (a sample with no finite answer), ranks last on that figure; a case
    without a finite answer has no error to be small and ranks last on every error.

    On a sample, ``over_share`` is the estimate for the range and the non-finite answers count
    as the share of the tested answers they are (the sample's own count): a heuristic for the
    order of a sample's cases, whose verdict also names the cases it cannot tell apart."""
    answers = finite + nonfinite
    share = 1.0 if math.isnan(over_share) else over_share
    wrong = (share * finite + nonfinite) / answers if answers else 1.0
    if finite == 0:
        return (wrong, math.inf, math.inf, 0.0, math.inf)
    return (
        wrong,
        math.inf if math.isnan(max_outside_flush) else max_outside_flush,
        math.inf if math.isnan(max_ulp) else max_ulp,
        0.0 if math.isnan(correctly_rounded) else -correctly_rounded,
        math.inf if math.isnan(mean_ulp) else mean_ulp,
    )


def format_over_tolerance(stats: ErrorStats) -> str:
    """How many inputs are over the tolerance: ``168 inputs over 2 ULP``, ``none over 2 ULP``;
    for a stratified sample, the estimated share of the range: ``est. 4.3%±0.4 over 2 ULP``."""
    tolerance = f"{stats.accurate_domain.tolerance:g} ULP"
    if stats.estimates is not None:
        return f"est. {format_share_estimate(stats.estimates.over_tolerance)} over {tolerance}"
    count = stats.over_tolerance
    if count == 0:
        return f"none over {tolerance}"
    return f"{count:,} input{'s' if count != 1 else ''} over {tolerance}"


def format_ulp_estimate(estimate: Estimate) -> str:
    """A ULP figure estimated from a sample, with its 95% interval: ``1.091 (1.016–1.213)``."""
    return f"{format_ulp(estimate.value)} ({format_ulp(estimate.low)}–{format_ulp(estimate.high)})"


def format_x(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}"


def shown_domain(stats: ErrorStats) -> AccurateDomain:
    """The accurate domain a report shows: over normal numbers (subnormal flushing is a
    property of its own, noted apart), else over every input (reports of older versions)."""
    return stats.accurate_domain_normal or stats.accurate_domain


def format_domain(domain: AccurateDomain) -> str:
    if domain.lo is None or domain.hi is None:
        return "none (fails at 0)"
    return domain.interval_text() + (" all" if domain.covers_all else "")


def format_size(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


SPARK_WIDTH = 72
"""Characters per profile line: segments are merged (by their maximum) to fit."""


SPARK_LEVELS = ((0.5, "▁"), (1.0, "▂"), (2.0, "▃"), (4.0, "▄"), (16.0, "▅"), (256.0, "▆"), (65536.0, "▇"))


def spark_char(max_ulp: float, nonfinite: int) -> str:
    if nonfinite:
        return "!"
    return next((char for bound, char in SPARK_LEVELS if max_ulp <= bound), "█")


def sparkline(profile: ErrorProfile, tolerance: float, width: int = SPARK_WIDTH) -> Text:
    """One character per group of adjacent segments, from −∞ (left) to +∞ (right): its height
    is the group's maximum error on a log scale (▁ ≤0.5, ▂ ≤1, ▃ ≤2, ▄ ≤4, ▅ ≤16, ▆ ≤256,
    ▇ ≤65536 ULP, █ more; ! a non-finite mismatch), red above the tolerance."""
    n = len(profile.points)
    text = Text()
    if n == 0:
        return text
    groups = min(n, width)
    for g in range(groups):
        first, last = g * n // groups, (g + 1) * n // groups
        worst = max(profile.max_ulp[first:last])
        nonfinite = sum(profile.nonfinite[first:last])
        over = sum(profile.over_tolerance[first:last])
        style = "red" if nonfinite or over else ("green" if worst <= 0.5 else "yellow")
        text.append(spark_char(worst, nonfinite), style=style)
    return text


def worst_line(case: CaseResult) -> str:
    if case.exact is None or not case.exact.worst:
        return ""
    worst = case.exact.worst[0]
    return (
        f"worst input x = {worst.x!r} ({worst.x_hex}): got {worst.got!r}, correctly rounded "
        f"{worst.rounded!r}, {format_ulp(worst.ulp_error)} ULP"
    )


def speed_failures(
    report: SpeedReport, comparisons: list[BaselineChange] | None
) -> dict[tuple[str, str, str, int], str]:
    """Why each failing case fails: an error, or a regression against the baseline."""
    failures = {
        (c.implementation, c.device, c.dtype, c.size): f"error: {c.reason}"
        for c in report.cases
        if c.status == "error"
    }
    for c in comparisons or []:
        if c.untimed is not None:
            failures[(c.implementation, c.device, c.dtype, c.size)] = untimed_text(c)
        elif c.verdict == "regression":
            failures[(c.implementation, c.device, c.dtype, c.size)] = (
                f"{100 * c.change:+.1f}% slower {c.metric.relative_to} "
                f"(95% CI {100 * c.ci_low:+.1f}…{100 * c.ci_high:+.1f}%)"
            )
    return failures


def untimed_text(change: BaselineChange) -> str:
    """Why a case the baseline timed fails now that it was not timed."""
    return f"timed in the baseline, not now ({change.untimed})"


def speed_run_failures(comparisons: list[BaselineChange] | None) -> list[str]:
    """What fails a speed run as a whole rather than one case: a baseline that compared nothing."""
    return [BASELINE_COMPARED_NOTHING] if comparisons == [] else []


VERDICT_ORDER = ("regression", "missing", "mixed", "inconclusive", "improvement", "new", "unchanged")


def format_ratio_to_copy(case: SpeedCase) -> str:
    """``0.193 (0.188–0.198)``: the ratio with its 95% interval, as every view shows it."""
    interval = case.ratio_interval
    shown = f" ({interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
    return f"{case.ratio_to_copy:.3f}{shown}"


def format_median_time(case: SpeedCase, metric: BaselineMetric) -> str:
    """``18.9 ms``; measured by time (``--compare-by time``), with its 95% interval:
    ``18.9 ms (18.7–19.2 ms)``, as the ratio to copy shows its own."""
    assert case.timing is not None
    shown = format_seconds(case.timing.median)
    if metric is BaselineMetric.TIME and case.time_interval:
        low, high = (format_seconds(t) for t in case.time_interval)
        if low.split()[1] == high.split()[1]:  # one unit: written once
            low = low.split()[0]
        shown += f" ({low}–{high})"
    return shown


def few_names(names: list[str]) -> str:
    """The names of the cases a verdict cannot tell apart: a few, or how many."""
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} others"


def fastest_lines(report: SpeedReport) -> list[str]:
    """One line per device × dtype × size timed for two cases or more: the fastest (by median
    time per call), and the cases whose time's 95% interval reaches its own (the samples do
    not tell them apart)."""
    groups: dict[tuple[str, str, int], list[SpeedCase]] = {}
    for case in report.cases:
        if case.status == "ok" and case.timing is not None:
            groups.setdefault((case.device, case.dtype, case.size), []).append(case)
    lines = []
    for (device, dtype, size), cases in groups.items():
        if len(cases) < 2:
            continue
        best = min(cases, key=lambda c: (c.timing.median if c.timing else math.inf, c.implementation))
        assert best.timing is not None
        reach = best.time_interval[1] if best.time_interval else best.timing.median
        near = [
            c.implementation
            for c in cases
            if c is not best and c.time_interval is not None and c.time_interval[0] <= reach
        ]
        ratio = f", {best.ratio_to_copy:.3f} of copy speed" if best.ratio_to_copy is not None else ""
        line = (
            f"→ {device} {dtype} {format_size(size)}: fastest {best.implementation} "
            f"({format_seconds(best.timing.median)}{ratio})"
        )
        if near:
            line += f"; within its interval: {few_names(near)}"
        lines.append(line)
    return lines


COPY_DRIFT_NOTED = 0.05
"""A copy whose median moved more than this between a run's cases is pointed out."""


def copy_drift_notes(report: SpeedReport) -> list[str]:
    """One sentence per device × dtype × size whose copy moved noticeably during the run."""
    return [
        f"the copy itself ({d.device} {d.dtype} {format_size(d.size)}) took "
        f"{format_seconds(d.fastest_s)}–{format_seconds(d.slowest_s)} over {d.cases} cases "
        f"({100 * d.spread:.0f}% apart): ratios to copy reproduce no better than the machine's copy"
        for d in copy_drift(report.cases)
        if d.spread > COPY_DRIFT_NOTED
    ]


def sorted_changes(comparison: ReportComparison) -> list[CaseChange]:
    """The changes, worst verdicts first."""
    return sorted(comparison.changes, key=lambda c: VERDICT_ORDER.index(c.verdict))


def compare_verdict_line(comparison: ReportComparison) -> str:
    bad = sum(c.verdict in ("regression", "mixed", "missing") for c in comparison.changes)
    good = sum(c.verdict == "improvement" for c in comparison.changes)
    compared = sum(c.compared and c.verdict not in ("new", "missing") for c in comparison.changes)
    head = f"{bad} regression(s)" if bad else "no regression"
    if comparison.compared_nothing:  # a gate that checked nothing: it fails (exit 1)
        head = f"FAIL: no case was compared; {head}"
    return f"{comparison.kind}: {head}, {good} improvement(s), {compared} case(s) compared"
