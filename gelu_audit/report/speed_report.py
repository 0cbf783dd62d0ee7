"""The speed report: rich table for people, JSON (schema ``gelu-audit.speed``) for machines."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from gelu_audit.report.envelope import DocumentKind, dumps, envelope, jsonable
from gelu_audit.report.table import render_to_string

from gelu_audit.audits.speed import BaselineChange, SpeedReport



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


def speed_document(report: SpeedReport, comparisons: list[BaselineChange] | None,
                   max_slowdown: float | None) -> dict[str, Any]:  # fmt: skip
    s = report.settings
    return {
        **envelope(DocumentKind.SPEED),
        "environment": report.environment,
        "settings": {"dtypes": list(s.dtypes), "implementations": list(s.implementations) or "all",
                     "devices": list(s.devices), "sizes": list(s.sizes), "threads": s.threads,
                     "protocol": jsonable(s.protocol)},  # fmt: skip
        "cases": jsonable(report.cases),
        "skipped": [dict(zip(("implementation", "device", "dtype", "reason"), row)) for row in report.skipped],
        "comparison": None if comparisons is None else {
            "max_slowdown": max_slowdown, "cases": jsonable(comparisons),
            "regressions": sum(c.verdict == "regression" for c in comparisons),
        },  # fmt: skip
        "summary": {"cases": len(report.cases), "errors": sum(c.status == "error" for c in report.cases),
                    "unstable": sum(bool(c.timing and c.timing.unstable) for c in report.cases),
                    "seconds": report.seconds},  # fmt: skip
    }


def render_speed_json(report: SpeedReport, comparisons: list[BaselineChange] | None, max_slowdown: float | None) -> str:
    return dumps(speed_document(report, comparisons, max_slowdown))


def render_speed_table(report: SpeedReport, comparisons: list[BaselineChange] | None,
                       max_slowdown: float | None, color: bool) -> str:  # fmt: skip
    compared = {(c.implementation, c.device, c.dtype, c.size): c for c in comparisons or []}
    table = Table(header_style="bold", title="time per call (median of interleaved samples) "
                  "and bandwidth against a plain copy of the same size", title_justify="left")  # fmt: skip
    headers = ["implementation", "device", "dtype", "size", "median", "noise", "Gelem/s", "GB/s",
               "copy GB/s", "ratio to copy"]  # fmt: skip
    if any(c.ratio_to_peak for c in report.cases):
        headers.append("ratio to peak")
    if comparisons is not None:
        headers.append("vs baseline")
    for header in headers:
        table.add_column(header, justify="left" if header in ("implementation", "device", "dtype") else "right",
                         no_wrap=True)  # fmt: skip
    for case in report.cases:
        row: list[Text | str] = [case.implementation, case.device, case.dtype, format_size(case.size)]
        if case.status != "ok" or case.timing is None:
            row.append(Text(f"{case.status}: {case.reason}", style="yellow" if case.status == "skipped" else "red"))
            table.add_row(*row, *[""] * (len(headers) - len(row)))
            continue
        noise = Text(f"{100 * case.timing.noise:.1f}%" + (" unstable" if case.timing.unstable else ""),
                     style="yellow" if case.timing.unstable else "")  # fmt: skip
        row += [format_seconds(case.timing.median), noise, f"{case.elements_per_s / 1e9:.3f}",
                f"{case.bandwidth_gbs:.2f}", f"{case.copy_bandwidth_gbs:.2f}", f"{case.ratio_to_copy:.3f}"]  # fmt: skip
        if "ratio to peak" in headers:
            row.append(f"{case.ratio_to_peak:.3f}" if case.ratio_to_peak else "—")
        if comparisons is not None:
            c = compared.get((case.implementation, case.device, case.dtype, case.size))
            if c is None:
                row.append("not in baseline")
            else:
                style = {"regression": "bold red", "improvement": "green", "inconclusive": "yellow"}.get(c.verdict, "")
                row.append(Text(f"{100 * c.change:+.1f}% [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}] "
                                f"{c.verdict}", style=style))  # fmt: skip
        table.add_row(*row)
    lines = [f"skipped {i} {d} {t}: {r}" for i, d, t, r in report.skipped]
    timing = report.environment.get("timing", {})
    lines.append(f"{len(report.cases)} case(s) in {report.seconds:.1f} s; torch threads "
                 f"{timing.get('torch_threads')}; flushes denormals: {timing.get('flushes_denormals')}")  # fmt: skip
    lines.append("ratio to copy: the implementation's bandwidth (bytes read + written ÷ time) over a "
                 "copy's, measured in the same run; 1.0 means as fast as moving the data.")  # fmt: skip
    if comparisons is not None:
        regressions = sum(c.verdict == "regression" for c in comparisons)
        lines.append(f"baseline: max slowdown {100 * (max_slowdown or 0):.0f}% of the copy-normalised median "
                     f"(95% bootstrap interval); {regressions} regression(s)")  # fmt: skip
    return render_to_string([table, "\n".join(lines)], color)


# --- CI formats -------------------------------------------------------------------------------


def _speed_failures(report: SpeedReport, comparisons: list[BaselineChange] | None) -> dict[tuple[str, str, str, int], str]:
    """Why each failing case fails: an error, or a regression against the baseline."""
    failures = {(c.implementation, c.device, c.dtype, c.size): f"error: {c.reason}"
                for c in report.cases if c.status == "error"}  # fmt: skip
    for c in comparisons or []:
        if c.verdict == "regression":
            failures[(c.implementation, c.device, c.dtype, c.size)] = (
                f"{100 * c.change:+.1f}% slower relative to copy (95% CI {100 * c.ci_low:+.1f}…{100 * c.ci_high:+.1f}%)")
    return failures


def render_speed_markdown(report: SpeedReport, comparisons: list[BaselineChange] | None) -> str:
    failures = _speed_failures(report, comparisons)
    lines = [f"## gelu-audit speed: {'✅ pass' if not failures else f'❌ {len(failures)} case(s) failed'}", "",
             "| implementation | device | dtype | size | median | GB/s | ratio to copy | verdict |",
             "|---|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for c in report.cases:
        key = (c.implementation, c.device, c.dtype, c.size)
        verdict = ("❌ " + failures[key]) if key in failures else ("✅" if c.status == "ok" else c.status)
        if c.status != "ok" or c.timing is None:
            lines.append(f"| `{c.implementation}` | {c.device} | {c.dtype} | {format_size(c.size)} | — | — | — | {verdict} |")
            continue
        lines.append(f"| `{c.implementation}` | {c.device} | {c.dtype} | {format_size(c.size)} | "
                     f"{format_seconds(c.timing.median)} | {c.bandwidth_gbs:.2f} | {c.ratio_to_copy:.3f} | {verdict} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def render_speed_junit(report: SpeedReport, comparisons: list[BaselineChange] | None) -> str:
    import xml.etree.ElementTree as ET

    failures = _speed_failures(report, comparisons)
    suite = ET.Element("testsuite", name="gelu-audit.speed")
    for c in report.cases:
        key = (c.implementation, c.device, c.dtype, c.size)
        seconds = c.timing.median if c.timing else 0.0
        case = ET.SubElement(suite, "testcase", classname=f"gelu-audit.speed.{c.dtype}.{c.device}",
                             name=f"{c.implementation}[{format_size(c.size)}]", time=f"{seconds:.6f}")  # fmt: skip
        if c.status == "skipped":
            ET.SubElement(case, "skipped", message=c.reason or "skipped")
        elif key in failures:
            ET.SubElement(case, "error" if c.status == "error" else "failure", message=failures[key])
    for name in ("tests", "failures", "errors", "skipped"):
        tag = {"tests": "testcase", "failures": "testcase/failure", "errors": "testcase/error", "skipped": "testcase/skipped"}[name]
        suite.set(name, str(len(suite.findall(tag))))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def render_speed_github(report: SpeedReport, comparisons: list[BaselineChange] | None) -> str:
    from gelu_audit.report.ci_formats import github_annotation

    failures = _speed_failures(report, comparisons)
    lines = [github_annotation("error", f"gelu-audit speed: {i} {t} {d} {format_size(s)}", why)
             for (i, d, t, s), why in failures.items()]  # fmt: skip
    lines.append(github_annotation("notice", "gelu-audit speed",
                                   f"{len(report.cases)} case(s), {len(failures)} failed, in {report.seconds:.1f} s"))
    return "\n".join(lines) + "\n"
