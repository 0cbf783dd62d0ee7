"""The accuracy report where CI users look: Markdown (a GitHub step summary or PR comment),
JUnit XML (test-report viewers), and GitHub workflow annotations.

JUnit: one ``<testsuite>`` per dtype, one ``<testcase>`` per implementation × dtype × device;
a failed verdict is a ``<failure>`` whose message is the reasons and whose text gives the
worst input, an implementation error is an ``<error>``, a skipped combination ``<skipped>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from gelu_audit.audits.accuracy import AuditReport, CaseResult, Verdict
from gelu_audit.report.table import format_domain, format_ulp, format_x, sparkline


def _cell(text: str) -> str:
    """Safe inside a Markdown table cell: pipes escaped, no line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")


def _worst_line(case: CaseResult) -> str:
    if case.exact is None or not case.exact.worst:
        return ""
    worst = case.exact.worst[0]
    return (f"worst input x = {worst.x!r} ({worst.x_hex}): got {worst.got!r}, correctly rounded "
            f"{worst.rounded!r}, {format_ulp(worst.ulp_error)} ULP")  # fmt: skip


def render_markdown(report: AuditReport) -> str:
    """A heading with the verdict, one GitHub table per dtype, skipped cases folded away."""
    failed = sum(not v.passed for v in report.verdicts)
    status = "✅ pass" if report.passed else f"❌ {failed} of {len(report.results)} case(s) failed"
    lines = [f"## gelu-audit accuracy: {status}", ""]
    tolerance = report.settings.effective_domain_tolerance
    for dtype, inputs in report.inputs.items():
        lines += [f"### {_cell(inputs.describe())}", "",
                  f"| implementation | device | max ULP | at x | vs own formula | correctly rounded | domain ≤{tolerance:g} ULP | non-finite | where (−∞ … +∞) | verdict |",
                  "|---|---|---:|---:|---:|---:|---|---:|---|---|"]  # fmt: skip
        for case, verdict in zip(report.results, report.verdicts):
            if case.dtype != dtype:
                continue
            lines.append(_markdown_row(case, verdict, tolerance))
        lines.append("")
    if report.skipped:
        lines += [f"<details><summary>{len(report.skipped)} combination(s) skipped</summary>", ""]
        lines += [f"- `{s.implementation}` {s.device} {s.dtype}: {_cell(s.reason)}" for s in report.skipped]
        lines += ["", "</details>", ""]
    lines.append(f"{len(report.results)} case(s) in {report.seconds:.1f} s. "
                 "ULP error against the correctly rounded exact GELU (docs/methodology.md); 'where': the "
                 "largest error along x, ▁ ≤0.5 ▂ ≤1 ▃ ≤2 ▄ ≤4 ▅ ≤16 ▆ ≤256 ▇ ≤65536 █ more ULP, ! non-finite.")  # fmt: skip
    return "\n".join(lines) + "\n"


MARKDOWN_SPARK_WIDTH = 40
"""Characters of the error profile in a Markdown row (▁ ≤0.5 … █ beyond 65536 ULP, as --profile)."""


def _markdown_row(case: CaseResult, verdict: Verdict, tolerance: float) -> str:
    mark = "✅ pass" if verdict.passed else "❌ " + "; ".join(verdict.reasons)
    if case.status != "ok" or case.exact is None or case.own_formula is None:
        return f"| `{case.implementation}` | {case.device} | — | — | — | — | — | — | — | {_cell(mark)} |"
    worst = case.exact.worst[0].x if case.exact.worst else None
    return (f"| `{case.implementation}` | {case.device} | {format_ulp(case.exact.max_ulp)} | {format_x(worst)} "
            f"| {format_ulp(case.own_formula.max_ulp)} | {100 * case.exact.correctly_rounded:.1f}% "
            f"| {_cell(format_domain(case.exact.accurate_domain))} | {case.nonfinite_count} "
            f"| `{sparkline(case.exact.profile, tolerance, MARKDOWN_SPARK_WIDTH).plain}` | {_cell(mark)} |")  # fmt: skip


def render_junit(report: AuditReport) -> str:
    """JUnit XML: suites per dtype, a test case per implementation × dtype × device."""
    root = ET.Element("testsuites", name="gelu-audit accuracy")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    dtypes = list(dict.fromkeys([*report.inputs, *(s.dtype for s in report.skipped)]))
    for dtype in dtypes:
        suite = ET.SubElement(root, "testsuite", name=f"gelu-audit.accuracy.{dtype}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        seconds = 0.0
        for case, verdict in zip(report.results, report.verdicts):
            if case.dtype != dtype:
                continue
            counts["tests"] += 1
            seconds += case.seconds
            element = ET.SubElement(suite, "testcase", classname=f"gelu-audit.{dtype}.{case.device}",
                                    name=case.implementation, time=f"{case.seconds:.3f}")  # fmt: skip
            if case.status != "ok":
                counts["errors"] += 1
                ET.SubElement(element, "error", message=case.error or "error", type="ImplementationError").text = case.error
            elif not verdict.passed:
                counts["failures"] += 1
                details = "\n".join([*verdict.reasons, _worst_line(case),
                                     f"accurate domain: {format_domain(case.exact.accurate_domain)}" if case.exact else ""])  # fmt: skip
                ET.SubElement(element, "failure", message="; ".join(verdict.reasons), type="AccuracyGate").text = details
        for skip in report.skipped:
            if skip.dtype == dtype:
                counts["tests"] += 1
                counts["skipped"] += 1
                element = ET.SubElement(suite, "testcase", classname=f"gelu-audit.{dtype}.{skip.device}",
                                        name=skip.implementation, time="0")  # fmt: skip
                ET.SubElement(element, "skipped", message=skip.reason)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{seconds:.3f}")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{report.seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(level: str, title: str, message: str) -> str:
    """One workflow command line (``::error title=...::message``), escaped as GitHub requires."""
    return f"::{level} title={_escape_property(title)}::{_escape_data(message)}"


def render_github(report: AuditReport) -> str:
    """An ``::error`` per failed or broken case, a ``::notice`` summary, for the Actions log."""
    lines = []
    for case, verdict in zip(report.results, report.verdicts):
        if verdict.passed:
            continue
        title = f"gelu-audit: {case.implementation} {case.dtype} {case.device}"
        message = "\n".join(filter(None, [*verdict.reasons, _worst_line(case)]))
        lines.append(github_annotation("error", title, message))
    failed = sum(not v.passed for v in report.verdicts)
    summary = (f"{len(report.results)} case(s), {failed} failed, {len(report.skipped)} skipped, "
               f"in {report.seconds:.1f} s")  # fmt: skip
    lines.append(github_annotation("notice", "gelu-audit accuracy", summary))
    return "\n".join(lines) + "\n"


def render_document(report: AuditReport, output_format: str, environment: dict[str, Any]) -> str:
    """The accuracy report in any machine or CI format (the table is rendered elsewhere)."""
    if output_format == "json":
        from gelu_audit.report.json_report import render_json

        return render_json(report, environment)
    return {"markdown": render_markdown, "junit": render_junit, "github": render_github}[output_format](report)
