"""Reports as GitHub-flavoured Markdown: a step summary or a PR comment."""

from __future__ import annotations

from gelu_audit.audits.accuracy import AuditReport, CaseResult, Verdict
from gelu_audit.audits.compare import ReportComparison
from gelu_audit.audits.speed import BaselineChange, BaselineMetric, SpeedReport, copy_change_notes
from gelu_audit.numerics.formulas import Pass
from gelu_audit.report.text import (
    compare_verdict_line,
    copy_drift_notes,
    fastest_lines,
    format_correctly_rounded,
    format_domain,
    format_median_time,
    format_ratio_to_copy,
    format_size,
    format_ulp,
    format_x,
    shown_domain,
    sorted_changes,
    sparkline,
    speed_failures,
    speed_run_failures,
)


def _cell(text: str) -> str:
    """Safe inside a Markdown table cell: pipes escaped, no line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_accuracy_markdown(report: AuditReport) -> str:
    """A heading with the verdict, one GitHub table per dtype, skipped cases folded away."""
    failed = sum(not v.passed for v in report.verdicts)
    status = "✅ pass" if report.passed else f"❌ {failed} of {len(report.results)} case(s) failed"
    if report.gated_nothing:
        status = f"❌ {report.GATED_NOTHING}"
    lines = [f"## gelu-audit accuracy: {status}", ""]
    tolerance = report.settings.effective_domain_tolerance
    for dtype, inputs in report.inputs.items():
        lines += [
            f"### {_cell(inputs.describe())}",
            "",
            "| implementation | device | max ULP | at x | vs own formula | correctly rounded "
            f"| domain ≤{tolerance:g} ULP | non-finite | where (−∞ … +∞) | verdict |",
            "|---|---|---:|---:|---:|---:|---|---:|---|---|",
        ]
        for case, verdict in zip(report.results, report.verdicts):
            if case.dtype != dtype:
                continue
            lines.append(_markdown_row(case, verdict, tolerance))
        lines.append("")
    if report.skipped:
        lines += [f"<details><summary>{len(report.skipped)} combination(s) skipped</summary>", ""]
        lines += [
            f"- `{_cell(s.implementation)}` {s.device} {s.dtype}{_backward(s.pass_)}: {_cell(s.reason)}"
            for s in report.skipped
        ]
        lines += ["", "</details>", ""]
    lines.append(
        f"{len(report.results)} case(s) in {report.seconds:.1f} s. "
        "ULP error against the correctly rounded exact GELU (docs/methodology.md); 'where': the "
        "largest error along x, ▁ ≤0.5 ▂ ≤1 ▃ ≤2 ▄ ≤4 ▅ ≤16 ▆ ≤256 ▇ ≤65536 █ more ULP, ! non-finite."
    )
    return "\n".join(lines) + "\n"


MARKDOWN_SPARK_WIDTH = 40
"""Characters of the error profile in a Markdown row (▁ ≤0.5 … █ beyond 65536 ULP, as --profile)."""


def _backward(pass_: Pass) -> str:
    """Backward cases are marked where they are named: their rows sit beside forward ones."""
    return " backward" if pass_ is Pass.BACKWARD else ""


def _markdown_row(case: CaseResult, verdict: Verdict, tolerance: float) -> str:
    mark = "✅ pass" if verdict.passed else "❌ " + "; ".join(verdict.reasons)
    if case.status != "ok" or case.exact is None or case.own_formula is None:
        return (
            f"| `{_cell(case.implementation)}`{_backward(case.pass_)} | {case.device} "
            f"| — | — | — | — | — | — | — | {_cell(mark)} |"
        )
    worst = case.exact.worst[0].x if case.exact.worst else None
    return (
        f"| `{_cell(case.implementation)}`{_backward(case.pass_)} | {case.device} "
        f"| {format_ulp(case.exact.max_ulp)} "
        f"| {format_x(worst)} "
        f"| {format_ulp(case.own_formula.max_ulp)} | {format_correctly_rounded(case.exact)} "
        f"| {_cell(format_domain(shown_domain(case.exact)))} | {case.nonfinite_count} "
        f"| `{sparkline(case.exact.profile, tolerance, MARKDOWN_SPARK_WIDTH).plain}` | {_cell(mark)} |"
    )


def render_speed_markdown(
    report: SpeedReport,
    comparisons: list[BaselineChange] | None,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> str:
    failures = speed_failures(report, comparisons)
    run_failures = speed_run_failures(comparisons)
    heading = f"❌ {len(failures)} case(s) failed" if failures else "❌ failed" if run_failures else "✅ pass"
    lines = [
        f"## gelu-audit speed: {heading}",
        "",
        *(f"❌ {why}\n" for why in run_failures),
        "| implementation | device | dtype | size | median | GB/s | ratio to copy | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for c in report.cases:
        key = (c.implementation, c.device, c.dtype, c.size)
        verdict = ("❌ " + failures[key]) if key in failures else ("✅" if c.status == "ok" else c.status)
        if c.status != "ok" or c.timing is None:
            lines.append(
                f"| `{_cell(c.implementation)}` | {c.device} | {c.dtype} | {format_size(c.size)} "
                f"| — | — | — | {verdict} |"
            )
            continue
        lines.append(
            f"| `{_cell(c.implementation)}` | {c.device} | {c.dtype} | {format_size(c.size)} | "
            f"{format_median_time(c, metric)} | {c.bandwidth_gbs:.2f} | {format_ratio_to_copy(c)} "
            f"| {verdict} |"
        )
    notes = fastest_lines(report) + copy_drift_notes(report) + copy_change_notes(comparisons or [])
    lines += ["", *(f"> {note}" for note in notes)]
    return "\n".join(lines).rstrip() + "\n"


def render_compare_markdown(comparison: ReportComparison) -> str:
    status = "❌" if comparison.regressed or comparison.compared_nothing else "✅"
    lines = [
        f"## {status} gelu-audit compare ({compare_verdict_line(comparison)})",
        "",
        "| implementation | dtype | device | verdict | what changed |",
        "|---|---|---|---|---|",
    ]
    for c in sorted_changes(comparison):
        text = "; ".join([*c.worse, *c.better]).replace("|", "\\|") or "—"
        lines.append(f"| `{_cell(c.implementation)}` | {c.dtype} | {c.device} | {c.verdict} | {text} |")
    lines += ["", *(f"> {note}" for note in comparison.notes)]
    return "\n".join(lines).rstrip() + "\n"
