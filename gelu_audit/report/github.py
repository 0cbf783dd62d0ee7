"""Reports as GitHub workflow annotations (``::error``/``::notice`` lines) for the Actions log."""

from __future__ import annotations

from gelu_audit.audits.accuracy import AuditReport
from gelu_audit.audits.speed import BaselineChange, SpeedReport
from gelu_audit.report.text import format_size, speed_failures, speed_run_failures, worst_line


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(level: str, title: str, message: str) -> str:
    """One workflow command line (``::error title=...::message``), escaped as GitHub requires."""
    return f"::{level} title={_escape_property(title)}::{_escape_data(message)}"


def render_accuracy_github(report: AuditReport) -> str:
    """An ``::error`` per failed or broken case, a ``::notice`` summary, for the Actions log."""
    lines = []
    for case, verdict in zip(report.results, report.verdicts):
        if verdict.passed:
            continue
        title = f"gelu-audit: {case.implementation} {case.dtype} {case.device}"
        message = "\n".join(filter(None, [*verdict.reasons, worst_line(case)]))
        lines.append(github_annotation("error", title, message))
    if report.gated_nothing:
        lines.append(github_annotation("error", "gelu-audit accuracy", report.GATED_NOTHING))
    failed = sum(not v.passed for v in report.verdicts)
    summary = (
        f"{len(report.results)} case(s), {failed} failed, {len(report.skipped)} skipped, "
        f"in {report.seconds:.1f} s"
    )
    lines.append(github_annotation("notice", "gelu-audit accuracy", summary))
    return "\n".join(lines) + "\n"


def render_speed_github(report: SpeedReport, comparisons: list[BaselineChange] | None) -> str:
    failures = speed_failures(report, comparisons)
    lines = [
        github_annotation("error", f"gelu-audit speed: {i} {t} {d} {format_size(s)}", why)
        for (i, d, t, s), why in failures.items()
    ]
    lines += [github_annotation("error", "gelu-audit speed", why) for why in speed_run_failures(comparisons)]
    lines.append(
        github_annotation(
            "notice",
            "gelu-audit speed",
            f"{len(report.cases)} case(s), {len(failures)} failed, in {report.seconds:.1f} s",
        )
    )
    return "\n".join(lines) + "\n"
