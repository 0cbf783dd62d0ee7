"""The accuracy report as one JSON document (schema ``gelu-audit.accuracy``)."""

from __future__ import annotations

from typing import Any

from gelu_audit.audits.accuracy import AuditReport
from gelu_audit.report.envelope import DocumentKind, dumps, envelope, jsonable
from gelu_audit.audits.thresholds import Threshold



def settings_document(report: AuditReport) -> dict[str, Any]:
    s = report.settings
    return {
        "dtypes": list(s.dtypes),
        "implementations": list(s.implementations) or "all available",
        "devices": list(s.devices) or "default (cpu, and cuda when present)",
        "samples": s.samples,
        "seed": s.seed,
        "range": [s.value_range.lo, s.value_range.hi] if s.value_range else None,
        "max_ulp": s.gate.max_ulp if s.gate else None,
        "against": s.gate.against if s.gate else None,
        "domain_tolerance_ulp": s.effective_domain_tolerance,
        "jobs": s.jobs,
        "top": s.top,
        "exhaustive": s.exhaustive,
        "chunk_size": s.chunk_size,
        "shard": str(s.shard) if s.shard else None,
        "impl_options": {"formula": s.plugin_options.formula, "backend": s.plugin_options.backend,
                         "dtypes": list(s.plugin_options.dtypes), "devices": list(s.plugin_options.devices),
                         "timeout": s.plugin_options.timeout},
        "thresholds": [threshold_document(t) for t in s.thresholds],
    }


def threshold_document(threshold: Threshold) -> dict[str, Any]:
    """A threshold as its configuration table (the same keys), so a report can be re-checked."""
    entry: dict[str, Any] = {"implementation": threshold.implementation, "dtype": threshold.dtype,
                             "device": threshold.device, "against": threshold.against}  # fmt: skip
    for key, value in (("max-ulp", threshold.max_ulp), ("max-abs", threshold.max_abs),
                       ("max-nonfinite", threshold.max_nonfinite)):  # fmt: skip
        if value is not None:
            entry[key] = value
    if threshold.domain is not None:
        entry["domain"] = list(threshold.domain)
    return entry


def summary_document(report: AuditReport) -> dict[str, Any]:
    worst: dict[str, Any] = {}
    for case in report.results:
        if case.exact is None:
            continue
        best = worst.get(case.dtype)
        if best is None or case.exact.max_ulp > best["max_ulp"]:
            worst[case.dtype] = {
                "implementation": case.implementation,
                "device": case.device,
                "max_ulp": case.exact.max_ulp,
            }
    return {
        "cases": len(report.results),
        "passed": sum(v.passed for v in report.verdicts),
        "failed": sum(not v.passed for v in report.verdicts),
        "errors": sum(case.status != "ok" for case in report.results),
        "skipped": len(report.skipped),
        "all_passed": report.passed,
        "worst_against_exact": worst,
        "seconds": report.seconds,
    }


def accuracy_document(report: AuditReport, environment: dict[str, Any]) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    results = []
    for case, verdict in zip(report.results, report.verdicts):
        entry = jsonable(case)
        entry["verdict"] = {"passed": verdict.passed, "reasons": list(verdict.reasons)}
        results.append(entry)
    document = {
        **envelope(DocumentKind.ACCURACY),
        "environment": environment,
        "settings": settings_document(report),
        "inputs": {name: inputs.to_json() for name, inputs in report.inputs.items()},
        "references": report.reference_sources,
        "results": results,
        "skipped": jsonable(report.skipped),
        "summary": summary_document(report),
    }
    if report.streams:
        document["streams"] = report.streams
    if report.states:
        document["shard_state"] = report.states
    return document


def render_json(report: AuditReport, environment: dict[str, Any]) -> str:
    return dumps(accuracy_document(report, environment))
