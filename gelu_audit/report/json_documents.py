"""Every report as one JSON document: the envelope, then the settings, inputs, results and
summary (schemas in ``gelu_audit/schemas/``, described in docs/json-schema.md)."""

from __future__ import annotations

from typing import Any

from gelu_audit.audits.accuracy import AuditReport
from gelu_audit.audits.compare import ReportComparison
from gelu_audit.audits.paths import BASELINE, FAR_APART, PATHS, PathResult, PathsReport
from gelu_audit.audits.speed import BaselineChange, BaselineMetric, SpeedReport, copy_drift
from gelu_audit.audits.thresholds import Threshold
from gelu_audit.numerics.formulas import Pass
from gelu_audit.report.envelope import DocumentKind, compact_profiles, dumps, envelope, jsonable
from gelu_audit.report.text import VERDICT_ORDER, sorted_changes

# --- accuracy ---------------------------------------------------------------------------------


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
        "impl_options": {
            "formula": s.plugin_options.formula,
            "backend": s.plugin_options.backend,
            "dtypes": list(s.plugin_options.dtypes),
            "devices": list(s.plugin_options.devices),
            "timeout": s.plugin_options.timeout,
            "isolate": s.plugin_options.isolate,
        },
        "thresholds": [threshold_document(t) for t in s.thresholds],
        "passes": [str(p) for p in s.passes],
        "policies": [policy.to_json() for policy in s.policies],
        "reference_tier": s.tier.spec,
    }


def threshold_document(threshold: Threshold) -> dict[str, Any]:
    """A threshold as its configuration table (the same keys), so a report can be re-checked."""
    entry: dict[str, Any] = {
        "implementation": threshold.implementation,
        "dtype": threshold.dtype,
        "device": threshold.device,
        "pass": threshold.pass_,
        "against": threshold.against,
    }
    for key, value in (
        ("max-ulp", threshold.max_ulp),
        ("max-abs", threshold.max_abs),
        ("max-nonfinite", threshold.max_nonfinite),
        ("max-ulp-outside-flush", threshold.max_ulp_outside_flush),
        ("max-flush-below", threshold.max_flush_below),
        ("policy", threshold.policy),
        ("rtol", threshold.rtol),
        ("atol", threshold.atol),
    ):
        if value is not None:
            entry[key] = value
    if threshold.domain is not None:
        entry["domain"] = list(threshold.domain)
    return entry


def _with_pass(entry: dict[str, Any]) -> dict[str, Any]:
    """``pass_`` (a keyword in Python) is ``pass`` in JSON."""
    entry["pass"] = entry.pop("pass_")
    return entry


def summary_document(report: AuditReport) -> dict[str, Any]:
    """Counts, and per dtype the forward case farthest from the exact GELU."""
    worst: dict[str, Any] = {}
    for case in report.results:
        if case.exact is None or case.pass_ is not Pass.FORWARD:
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
        entry = _with_pass(jsonable(case))
        if case.own_formula is not None and case.own_formula is case.exact:
            entry["own_formula"] = "exact"  # it claims the exact function: the same statistics, once
        entry["verdict"] = {"passed": verdict.passed, "reasons": list(verdict.reasons)}
        results.append(entry)
    document = {
        **envelope(DocumentKind.ACCURACY),
        "environment": environment,
        "settings": settings_document(report),
        "inputs": {name: inputs.to_json() for name, inputs in report.inputs.items()},
        "references": report.reference_sources,
        "results": results,
        "skipped": [_with_pass(entry) for entry in jsonable(report.skipped)],
        "summary": summary_document(report),
    }
    compact_profiles(document)
    if report.streams:
        document["streams"] = report.streams
    if report.states:
        document["shard_state"] = report.states
    return document


def render_accuracy_json(report: AuditReport, environment: dict[str, Any]) -> str:
    return dumps(accuracy_document(report, environment))


# --- speed ------------------------------------------------------------------------------------


def speed_document(
    report: SpeedReport,
    comparisons: list[BaselineChange] | None,
    max_slowdown: float | None,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> dict[str, Any]:
    s = report.settings
    return {
        **envelope(DocumentKind.SPEED),
        "environment": report.environment,
        "settings": {
            "dtypes": list(s.dtypes),
            "implementations": list(s.implementations) or "all",
            "devices": list(s.devices),
            "sizes": list(s.sizes),
            "threads": s.threads,
            "protocol": jsonable(s.protocol),
        },
        "cases": jsonable(report.cases),
        "skipped": [
            dict(zip(("implementation", "device", "dtype", "reason"), row)) for row in report.skipped
        ],
        "comparison": None
        if comparisons is None
        else {
            "max_slowdown": max_slowdown,
            "compare_by": metric.value,
            "cases": jsonable(comparisons),
            "regressions": sum(c.verdict == "regression" for c in comparisons),
        },
        "summary": {
            "cases": len(report.cases),
            "errors": sum(c.status == "error" for c in report.cases),
            "unstable": sum(bool(c.timing and c.timing.unstable) for c in report.cases),
            "copy_drift": [{**jsonable(d), "spread": d.spread} for d in copy_drift(report.cases)],
            "seconds": report.seconds,
        },
    }


def render_speed_json(
    report: SpeedReport,
    comparisons: list[BaselineChange] | None,
    max_slowdown: float | None,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> str:
    return dumps(speed_document(report, comparisons, max_slowdown, metric))


# --- paths ------------------------------------------------------------------------------------


def paths_document(report: PathsReport, environment: dict[str, Any]) -> dict[str, Any]:
    s = report.settings
    chosen = [p for p in PATHS if not s.paths or p.name in s.paths]
    return {
        **envelope(DocumentKind.PATHS),
        "settings": {
            "dtypes": list(s.dtypes),
            "implementations": list(s.implementations) or "all PyTorch ones",
            "devices": list(s.devices),
            "paths": [p.name for p in chosen],
            "samples": s.samples,
            "seed": s.seed,
            "top": s.top,
        },
        "baseline": {"name": BASELINE.name, "description": BASELINE.description},
        "paths": {p.name: p.description for p in chosen},
        "inputs": {name: inputs.to_json() for name, inputs in report.inputs.items()},
        "summary": {
            "comparisons": len(report.results),
            "agree": sum(r.status == "agree" for r in report.results),
            "differ": sum(r.status == "differ" for r in report.results),
            "errors": sum(r.status == "error" for r in report.results),
            "all_agree": report.passed,
            "seconds": report.seconds,
        },
        "results": [_result_json(r) for r in report.results],
        "skipped": [
            {"implementation": i, "device": d, "dtype": t, "reason": why} for i, d, t, why in report.skipped
        ],
        "environment": environment,
    }


def _result_json(result: PathResult) -> dict[str, Any]:
    data = {
        k: getattr(result, k)
        for k in (
            "implementation",
            "device",
            "dtype",
            "path",
            "status",
            "points",
            "differing",
            "error",
            "seconds",
        )
    }
    data["max_ordinal_distance"] = (
        None if result.max_ordinal_distance >= FAR_APART else result.max_ordinal_distance
    )
    data["examples"] = [
        {
            "x": e.x,
            "contiguous": e.contiguous,
            "path": e.path,
            "reference": e.reference,
            "closer": e.closer,
            "ordinal_distance": None if e.ordinal_distance >= FAR_APART else e.ordinal_distance,
        }
        for e in result.examples
    ]
    return data


def render_paths_json(report: PathsReport, environment: dict[str, Any]) -> str:
    return dumps(paths_document(report, environment))


# --- compare ----------------------------------------------------------------------------------


def compare_document(
    comparison: ReportComparison, old_path: str, new_path: str, settings: dict[str, Any]
) -> dict[str, Any]:
    counts = {v: sum(c.verdict == v for c in comparison.changes) for v in VERDICT_ORDER}
    return {
        **envelope(DocumentKind.COMPARE),
        "kind": comparison.kind,
        "old": old_path,
        "new": new_path,
        "settings": settings,
        "summary": {
            **counts,
            "regressed": comparison.regressed,
            "compared_nothing": comparison.compared_nothing,
        },
        "notes": comparison.notes,
        "changes": [
            {
                "implementation": c.implementation,
                "dtype": c.dtype,
                "device": c.device,
                "verdict": c.verdict,
                "worse": list(c.worse),
                "better": list(c.better),
                "old": c.old,
                "new": c.new,
            }
            for c in sorted_changes(comparison)
        ],
    }


def render_compare_json(
    comparison: ReportComparison, old_path: str, new_path: str, settings: dict[str, Any]
) -> str:
    return dumps(compare_document(comparison, old_path, new_path, settings))


# --- list -------------------------------------------------------------------------------------


def render_list_json(rows: list[dict[str, Any]]) -> str:
    """``gelu-audit list -f json``: one row per implementation × device × dtype."""
    return dumps({**envelope(DocumentKind.LIST), "implementations": rows})
