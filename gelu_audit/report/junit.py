"""Reports as JUnit XML, for test-report viewers.

Accuracy: one ``<testsuite>`` per dtype, one ``<testcase>`` per implementation × dtype × device;
a failed verdict is a ``<failure>`` whose message is the reasons and whose text gives the worst
input, an implementation error is an ``<error>``, a skipped combination ``<skipped>``. Speed: a
``<testcase>`` per implementation and size.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gelu_audit.audits.accuracy import AuditReport
from gelu_audit.audits.speed import BaselineChange, SpeedReport
from gelu_audit.numerics.formulas import Pass
from gelu_audit.report.text import (
    format_domain,
    format_size,
    shown_domain,
    speed_failures,
    speed_run_failures,
    worst_line,
)


def render_accuracy_junit(report: AuditReport) -> str:
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
            element = ET.SubElement(
                suite,
                "testcase",
                classname=f"gelu-audit.{dtype}.{case.device}",
                name=case.implementation + (" [backward]" if case.pass_ is Pass.BACKWARD else ""),
                time=f"{case.seconds:.3f}",
            )
            if case.status != "ok":
                counts["errors"] += 1
                ET.SubElement(
                    element, "error", message=case.error or "error", type="ImplementationError"
                ).text = case.error
            elif not verdict.passed:
                counts["failures"] += 1
                details = "\n".join(
                    [
                        *verdict.reasons,
                        worst_line(case),
                        f"accurate domain: {format_domain(shown_domain(case.exact))}" if case.exact else "",
                    ]
                )
                ET.SubElement(
                    element, "failure", message="; ".join(verdict.reasons), type="AccuracyGate"
                ).text = details
        for skip in report.skipped:
            if skip.dtype == dtype:
                counts["tests"] += 1
                counts["skipped"] += 1
                element = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"gelu-audit.{dtype}.{skip.device}",
                    name=skip.implementation + (" [backward]" if skip.pass_ is Pass.BACKWARD else ""),
                    time="0",
                )
                ET.SubElement(element, "skipped", message=skip.reason)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{seconds:.3f}")
    if report.gated_nothing:  # a failure of the run itself, where a viewer counts failures
        suite = ET.SubElement(root, "testsuite", name="gelu-audit.accuracy", tests="1", failures="1")
        suite.set("errors", "0")
        suite.set("skipped", "0")
        gate = ET.SubElement(suite, "testcase", classname="gelu-audit", name="gate", time="0")
        ET.SubElement(gate, "failure", message=report.GATED_NOTHING, type="AccuracyGate")
        totals["tests"] += 1
        totals["failures"] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{report.seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_speed_junit(report: SpeedReport, comparisons: list[BaselineChange] | None) -> str:

    failures = speed_failures(report, comparisons)
    suite = ET.Element("testsuite", name="gelu-audit.speed")
    for c in report.cases:
        key = (c.implementation, c.device, c.dtype, c.size)
        seconds = c.timing.median if c.timing else 0.0
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"gelu-audit.speed.{c.dtype}.{c.device}",
            name=f"{c.implementation}[{format_size(c.size)}]",
            time=f"{seconds:.6f}",
        )
        if key in failures:  # a case the baseline timed and skipped now fails, not skips
            ET.SubElement(case, "error" if c.status == "error" else "failure", message=failures[key])
        elif c.status == "skipped":
            ET.SubElement(case, "skipped", message=c.reason or "skipped")
    for why in speed_run_failures(comparisons):  # a baseline that compared nothing: one case for it
        baseline = ET.SubElement(suite, "testcase", classname="gelu-audit.speed", name="baseline", time="0")
        ET.SubElement(baseline, "failure", message=why)
    for name in ("tests", "failures", "errors", "skipped"):
        tag = {
            "tests": "testcase",
            "failures": "testcase/failure",
            "errors": "testcase/error",
            "skipped": "testcase/skipped",
        }[name]
        suite.set(name, str(len(suite.findall(tag))))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
