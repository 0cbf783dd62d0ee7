"""`gelu-audit merge`: shard reports of an exhaustive fp32 run → the report one run would give.

Each shard report carries its cases' mergeable accumulator states (:mod:`gelu_audit.audits.stats`);
merging adds them up and finishes them over the whole tested space, so the merged maxima,
counts, histograms, worst inputs, mean, p99 and accurate domain are the single run's. The
reports arrive loaded (the report layer reads and checks the files); this module checks that
they are the shards of one run.
"""

from __future__ import annotations

from typing import Any

from gelu_audit.audits.accuracy import (
    Audited,
    AuditReport,
    AuditSettings,
    Skipped,
    SpecialCheck,
    case_result,
    error_case,
    verdict,
)
from gelu_audit.audits.exhaustive import PatternSpace, StreamedInputs, parse_shard
from gelu_audit.audits.reference_store import StoreTally
from gelu_audit.audits.stats import CaseAccumulators
from gelu_audit.audits.thresholds import Threshold, parse_thresholds
from gelu_audit.errors import ReportFormatError
from gelu_audit.implementations.plugins import PluginOptions
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.formulas import Pass
from gelu_audit.numerics.inputs import ValueRange
from gelu_audit.references.fast_tier import REGIONS
from gelu_audit.references.tiers import ReferenceTier, parse_tier

_PER_SHARD_SETTINGS = ("shard", "jobs", "chunk_size")
"""Settings that may differ between the shards of one run."""


def _order_shards(loaded: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The shard reports in shard order, each with its ``_path``; refuses anything that is not
    exactly the N shards of one run."""
    documents = []
    for path, document in loaded:
        if "shard_state" not in document or not document["settings"].get("shard"):
            raise ReportFormatError(
                f"{path} is not a shard report (make one with --exhaustive --shard K/N -f json)"
            )
        document["_path"] = path
        documents.append(document)
    first = documents[0]
    same = {k: v for k, v in first["settings"].items() if k not in _PER_SHARD_SETTINGS}
    shards: dict[int, dict[str, Any]] = {}
    for document in documents:
        settings = {k: v for k, v in document["settings"].items() if k not in _PER_SHARD_SETTINGS}
        if settings != same:
            differing = sorted(k for k in set(same) | set(settings) if same.get(k) != settings.get(k))
            raise ReportFormatError(
                f"{document['_path']} was run with other settings ({', '.join(differing)})"
            )
        if document["tool"] != first["tool"]:
            raise ReportFormatError(
                f"{document['_path']} comes from gelu-audit {document['tool']['version']}, "
                f"{first['_path']} from {first['tool']['version']}"
            )
        shard = parse_shard(document["settings"]["shard"])
        if shard.count != parse_shard(first["settings"]["shard"]).count:
            raise ReportFormatError(f"{document['_path']} is shard {shard} of another split")
        if shard.index in shards:
            raise ReportFormatError(
                f"shard {shard} given twice ({shards[shard.index]['_path']}, {document['_path']})"
            )
        shards[shard.index] = document
    cases = _cases_of(first)
    for document in documents:  # what one run gives is the same cases on every shard
        if _cases_of(document) != cases:
            raise ReportFormatError(
                f"{document['_path']} audited other cases than {first['_path']} (an implementation or "
                "device missing, or skipped, on one of the machines): its shards are not one run's"
            )
    count = parse_shard(first["settings"]["shard"]).count
    missing = [i for i in range(1, count + 1) if i not in shards]
    if missing:
        raise ReportFormatError(f"missing shard(s) {number_ranges(missing)} of {count}")
    return [shards[i] for i in range(1, count + 1)]


def _cases_of(document: dict[str, Any]) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """A shard's cases run and skipped, each as implementation, device, dtype and pass."""

    def key(case: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(case.get(k, "forward" if k == "pass" else "")) for k in _CASE_KEY)

    return {key(c) for c in document["results"]}, {key(c) for c in document["skipped"]}


_CASE_KEY = ("implementation", "device", "dtype", "pass")


def _settings(document: dict[str, Any]) -> AuditSettings:
    s = document["settings"]
    value_range = ValueRange(float(s["range"][0]), float(s["range"][1])) if s["range"] else None
    return AuditSettings(
        dtypes=tuple(s["dtypes"]),
        implementations=tuple(s["implementations"]) if isinstance(s["implementations"], list) else (),
        devices=tuple(s["devices"]) if isinstance(s["devices"], list) else (),
        samples=s["samples"],
        seed=s["seed"],
        value_range=value_range,
        gate=Threshold.gate(s["max_ulp"], s["against"]) if s["max_ulp"] is not None else None,
        domain_tolerance=s["domain_tolerance_ulp"],
        jobs=s["jobs"],
        top=s["top"],
        exhaustive=True,
        chunk_size=s["chunk_size"],
        shard=None,
        plugin_options=_plugin_options(s.get("impl_options", {})),
        thresholds=parse_thresholds(s.get("thresholds", []), "shard settings"),
        passes=tuple(Pass(p) for p in s.get("passes", ["forward"])),
        reference_tier=_reference_tier(s.get("reference_tier", "scipy")),
    )


def _reference_tier(saved: Any) -> ReferenceTier:
    """A shard's reference tier (reports from before the torch tier were SciPy's)."""
    try:
        return parse_tier(str(saved))
    except ValueError as error:
        raise ReportFormatError(f"shard settings: {error}") from None


def _plugin_options(saved: dict[str, Any]) -> PluginOptions:
    """The ``--impl-*`` claims a shard was run with (defaults for any it does not record)."""
    default = PluginOptions()
    return PluginOptions(
        formula=str(saved.get("formula", default.formula)),
        backend=str(saved.get("backend", default.backend)),
        dtypes=tuple(saved.get("dtypes", default.dtypes)),
        devices=tuple(saved.get("devices", default.devices)),
        timeout=saved.get("timeout", default.timeout),
        isolate=bool(saved.get("isolate", default.isolate)),
    )


def merge_shards(loaded: list[tuple[str, dict[str, Any]]]) -> tuple[AuditReport, dict[str, Any]]:
    """The merged report of the shard reports (path, loaded document), and the environment of
    the first shard (with the shard files listed)."""
    documents = _order_shards(loaded)
    first = documents[0]
    settings = _settings(first)
    states = []
    for document in documents:
        state = document["shard_state"]
        if not isinstance(state, dict) or not isinstance(state.get("fp32"), dict):
            raise ReportFormatError(f"{document['_path']}: its shard_state holds no fp32 state to merge")
        states.append(state["fp32"])
    space = PatternSpace(FP32, settings.value_range, None)
    points = sum(int(s["points"]) for s in states)
    inputs = StreamedInputs(FP32, space, points, settings.chunk_size)

    merged: dict[str, CaseAccumulators] = {}
    errors: dict[str, str] = {}
    for document, state in zip(documents, states):
        errors.update({k: v for k, v in state["errors"].items() if k not in errors})
        # a case can fail after its stream (at the special inputs, ±inf and NaN): its state is
        # whole, its error only in the shard's results, and it stays the merged case's
        for case in document["results"]:
            key = f"{case['implementation']}@{case['device']}"
            if case.get("status") == "error" and key not in errors:
                errors[key] = str(case.get("error"))
        for key, case in state["cases"].items():
            accumulators = CaseAccumulators.from_state(case)
            if key not in merged:
                merged[key] = accumulators
            else:
                merged[key].merge(accumulators)

    results = []
    for entry in first["results"]:
        if entry["dtype"] != "fp32":
            continue
        key = f"{entry['implementation']}@{entry['device']}"
        impl = Audited(
            entry["implementation"], entry["backend"], entry["formula"], Pass(entry.get("pass", "forward"))
        )
        seconds = sum(
            r["seconds"]
            for d in documents
            for r in d["results"]
            if r["implementation"] == entry["implementation"] and r["device"] == entry["device"]
        )
        if key in errors or key not in merged:
            error = errors.get(key, entry.get("error"))
            results.append(error_case(impl, entry["device"], FP32, error, points))
            continue
        specials = tuple(
            SpecialCheck(c["name"], float(c["x"]), float(c["got"]), float(c["expected"]), c["ok"], c["note"])
            for c in entry["specials"]
        )
        results.append(case_result(impl, entry["device"], FP32, merged[key], space, specials, seconds))

    regions: dict[str, dict[str, int]] = {}
    for state in states:
        for formula, counts in state["regions"].items():
            regions[formula] = {r: regions.get(formula, {}).get(r, 0) + counts.get(r, 0) for r in REGIONS}
    sources = {
        "fp32": [
            {
                "formula": f,
                "engine": "fast tier + mpmath",
                "tier": settings.tier.spec,
                "cache": None,
                "from_cache": False,
                "note": f"merged from {len(documents)} shards",
                "regions": c,
            }
            for f, c in sorted(regions.items())
        ]
    }
    cpu: dict[str, float] = {}
    for d in documents:
        for name, value in d.get("streams", {}).get("fp32", {}).get("cpu_seconds", {}).items():
            cpu[name] = cpu.get(name, 0.0) + value
    tallies = [d.get("streams", {}).get("fp32", {}).get("reference_store") for d in documents]
    store = None
    if any(tallies):
        store = {key: sum((t or {}).get(key, 0) for t in tallies) for key in StoreTally().to_json()}
    streams = {
        "fp32": {
            "wall_seconds": sum(
                d.get("streams", {}).get("fp32", {}).get("wall_seconds", 0.0) for d in documents
            ),
            "jobs": settings.jobs,
            "chunk_size": settings.chunk_size,
            "cpu_seconds": cpu,
            "shards": len(documents),
            "peak_rss_mib": max(
                (d.get("streams", {}).get("fp32", {}).get("peak_rss_mib") or 0.0) for d in documents
            )
            or None,
            "reference_store": store,
        }
    }
    skipped = [
        Skipped(s["implementation"], s["device"], s["dtype"], s["reason"], Pass(s.get("pass", "forward")))
        for s in first["skipped"]
    ]
    report = AuditReport(
        settings,
        {"fp32": inputs},
        sources,
        results,
        skipped,
        sum(d["summary"]["seconds"] for d in documents),
        [verdict(r, settings.gate, settings.thresholds) for r in results],
        streams,
    )
    environment = dict(first["environment"])
    environment["merged_from"] = [d["_path"] for d in documents]
    return report, environment


def number_ranges(numbers: list[int]) -> str:
    """Sorted numbers as runs, ``1, 3–5, 9``: a merge of one shard of 4,096 names the other
    4,095 in one short line."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)
