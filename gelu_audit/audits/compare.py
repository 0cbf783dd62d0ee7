"""Baselines: what got worse and what got better between two saved reports.

``gelu-audit compare OLD.json NEW.json`` reads two accuracy reports, or two speed reports.
Accuracy cases are matched by implementation, dtype, device and pass. A case regresses when its
maximum ULP error grows by more than ``--allow-ulp-increase``, its share of correctly rounded
results drops by more than ``--allow-cr-drop`` percentage points, its accurate domain narrows,
it gains non-finite mismatches, it now fails to run, or it is missing from the new report.
Accuracy audits are deterministic on a given machine and library build, so the defaults
allow nothing. Speed cases are judged as ``speed --baseline`` does (bootstrap interval of the
change in ratio to copy against ``--max-slowdown``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gelu_audit.audits.speed import BaselineMetric, compare_samples, copy_change_notes, saved_case_key
from gelu_audit.audits.stats import interval_text
from gelu_audit.errors import UsageError


@dataclass(frozen=True)
class CaseChange:
    implementation: str
    dtype: str
    device: str
    verdict: str
    """``regression``, ``improvement``, ``unchanged``, ``mixed`` (worse and better), ``new``,
    ``missing``; for speed also ``inconclusive`` (the interval straddles the allowed slowdown)."""
    worse: tuple[str, ...] = ()
    better: tuple[str, ...] = ()
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    compared: bool = True
    """False where nothing was measured against anything: ``new`` and ``missing``, and a speed case
    timed now that the old report could not time (better, but no interval says by how much)."""


@dataclass(frozen=True)
class ReportComparison:
    kind: str
    """``accuracy`` or ``speed``."""
    changes: list[CaseChange]
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return any(c.verdict in ("regression", "mixed", "missing") for c in self.changes)

    @property
    def compared_nothing(self) -> bool:
        """No case is in both reports (every one ``new`` or ``missing``): a gate that checked
        nothing, which fails as ``speed --baseline`` does."""
        return not any(c.compared and c.verdict not in ("new", "missing") for c in self.changes)

    COMPARED_NOTHING = (
        "no case of the new report was compared with the old one (none is in both, or, for speed, "
        "timed in both: cases match by implementation, dtype, device and pass, speed cases by size too)"
    )


def check_same_kind(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Both reports must be of the same kind (accuracy or speed)."""
    if old["schema"] != new["schema"]:
        raise UsageError(f"cannot compare a {old['schema']} report with a {new['schema']} report")


def summary(case: dict[str, Any]) -> dict[str, Any]:
    """What is compared of an accuracy case."""
    if case.get("status") != "ok" or not case.get("exact"):
        return {"status": case.get("status"), "error": case.get("error")}
    exact = case["exact"]
    domain = exact["accurate_domain"]
    return {
        "status": "ok",
        "max_ulp": float(exact["max_ulp"]),
        "correctly_rounded": float(exact["correctly_rounded"]),
        "domain": None if domain["lo"] is None else [float(domain["lo"]), float(domain["hi"])],
        "nonfinite": int(case["nonfinite_count"]),
        "worst_x": float(exact["worst"][0]["x"]) if exact.get("worst") else None,
    }


def _judge(
    old: dict[str, Any], new: dict[str, Any], allow_ulp: float, allow_cr: float
) -> tuple[list[str], list[str]]:
    worse, better = [], []
    if old["status"] == "ok" and new["status"] != "ok":
        return [f"now fails to run: {new.get('error')}"], []
    if old["status"] != "ok" and new["status"] == "ok":
        return [], ["runs again"]
    if old["status"] != "ok":
        return [], []
    if math.isnan(new["max_ulp"]) and not math.isnan(old["max_ulp"]):  # no comparison holds for a NaN
        worse.append(f"max ULP {old['max_ulp']:.4g} → nan")
    elif math.isnan(old["max_ulp"]) and not math.isnan(new["max_ulp"]):
        better.append(f"max ULP nan → {new['max_ulp']:.4g}")
    elif new["max_ulp"] > old["max_ulp"] + allow_ulp:
        worse.append(f"max ULP {old['max_ulp']:.4g} → {new['max_ulp']:.4g} (at x = {new['worst_x']!r})")
    elif new["max_ulp"] < old["max_ulp"] - allow_ulp:
        better.append(f"max ULP {old['max_ulp']:.4g} → {new['max_ulp']:.4g}")
    drop = 100 * (old["correctly_rounded"] - new["correctly_rounded"])
    if drop > allow_cr:
        worse.append(
            f"correctly rounded {100 * old['correctly_rounded']:.2f}% → {100 * new['correctly_rounded']:.2f}%"
        )
    elif -drop > allow_cr:
        better.append(
            f"correctly rounded {100 * old['correctly_rounded']:.2f}% → {100 * new['correctly_rounded']:.2f}%"
        )
    old_domain, new_domain = old["domain"], new["domain"]
    if old_domain != new_domain:
        shown = f"{_domain(old_domain)} → {_domain(new_domain)}"
        if new_domain is None or (
            old_domain is not None and (new_domain[0] > old_domain[0] or new_domain[1] < old_domain[1])
        ):
            worse.append(f"accurate domain narrower: {shown}")
        else:
            better.append(f"accurate domain wider: {shown}")
    if new["nonfinite"] > old["nonfinite"]:
        worse.append(f"non-finite mismatches {old['nonfinite']} → {new['nonfinite']}")
    elif new["nonfinite"] < old["nonfinite"]:
        better.append(f"non-finite mismatches {old['nonfinite']} → {new['nonfinite']}")
    return worse, better


def _domain(domain: list[float] | None) -> str:
    return interval_text(*domain) if domain else "none"


def compare_accuracy(
    old: dict[str, Any], new: dict[str, Any], allow_ulp_increase: float = 0.0, allow_cr_drop: float = 0.0
) -> ReportComparison:
    """Every case of either report, matched by (implementation, dtype, device, pass). A backward
    case is named ``NAME [backward]`` in the comparison; version 1 reports hold forward cases."""

    def key(case: dict[str, Any]) -> tuple[str, str, str]:
        backward = " [backward]" if case.get("pass", "forward") == "backward" else ""
        return case["implementation"] + backward, case["dtype"], case["device"]

    old_cases = {key(c): c for c in old.get("results", [])}
    new_cases = {key(c): c for c in new.get("results", [])}
    notes = []
    for dtype in sorted(set(old.get("inputs", {})) & set(new.get("inputs", {}))):
        a, b = old["inputs"][dtype], new["inputs"][dtype]
        if any(a.get(k) != b.get(k) for k in ("method", "count", "seed", "range", "shard")):
            notes.append(
                f"{dtype}: the inputs differ ({a.get('description')} vs {b.get('description')}); "
                "maxima of different samples are not comparable"
            )
    tolerance = (
        old.get("settings", {}).get("domain_tolerance_ulp"),
        new.get("settings", {}).get("domain_tolerance_ulp"),
    )
    if tolerance[0] != tolerance[1]:
        notes.append(f"the accurate domains use different tolerances ({tolerance[0]} vs {tolerance[1]} ULP)")
    changes = []
    for k in list(old_cases) + [k for k in new_cases if k not in old_cases]:
        if k not in new_cases:
            changes.append(
                CaseChange(*k, "missing", ("missing from the new report",), old=summary(old_cases[k]))
            )
            continue
        if k not in old_cases:
            changes.append(CaseChange(*k, "new", new=summary(new_cases[k])))
            continue
        a, b = summary(old_cases[k]), summary(new_cases[k])
        worse, better = _judge(a, b, allow_ulp_increase, allow_cr_drop)
        verdict = (
            "mixed"
            if worse and better
            else "regression"
            if worse
            else "improvement"
            if better
            else "unchanged"
        )
        changes.append(CaseChange(*k, verdict, tuple(worse), tuple(better), a, b))
    return ReportComparison("accuracy", changes, notes)


def compare_speed(
    old: dict[str, Any],
    new: dict[str, Any],
    max_slowdown: float,
    metric: BaselineMetric = BaselineMetric.RATIO,
) -> ReportComparison:
    """Speed cases through ``speed --baseline``'s statistics, by ``metric``."""
    key = metric.samples_key
    timed = [
        (saved_case_key(c), tuple(c[key]), (c.get("copy") or {}).get("median"))
        for c in new.get("cases", [])
        if c.get("status") == "ok"
    ]
    changes = []
    results = compare_samples(timed, old.get("cases", []), max_slowdown, metric)
    for result in results:
        interval = f"95% CI {result.ci_low:+.1%} … {result.ci_high:+.1%}"
        text = f"{result.change:+.1%} {metric.relative_to} ({interval}), size {result.size:,}"
        verdict = result.verdict  # regression, improvement, unchanged or inconclusive
        changes.append(
            CaseChange(
                result.implementation,
                result.dtype,
                result.device,
                verdict,
                (text,) if verdict == "regression" else (),
                (text,) if verdict == "improvement" else (),
                {"size": result.size},
                {"size": result.size, "change": result.change},
            )
        )
    old_status = {saved_case_key(c): c.get("status") for c in old.get("cases", [])}
    for c in new.get("cases", []):  # timed in one report and not the other
        before, now = old_status.get(saved_case_key(c)), c.get("status")
        where = c["implementation"], c["dtype"], c["device"]
        if before == "ok" and now != "ok":  # skipped now (a first call over the limit), or failed
            reason = f"size {c['size']:,}: timed in the old report, {now} now ({c.get('reason')})"
            changes.append(CaseChange(*where, "regression", (reason,)))
        elif now == "ok" and before is None:
            changes.append(CaseChange(*where, "new", new={"size": c["size"]}))
        elif now == "ok" and before != "ok":
            again = f"size {c['size']:,}: {before} in the old report, timed now"
            changes.append(
                CaseChange(*where, "improvement", better=(again,), new={"size": c["size"]}, compared=False)
            )
    new_keys = {saved_case_key(c) for c in new.get("cases", [])}
    for c in old.get("cases", []):
        if c.get("status") == "ok" and saved_case_key(c) not in new_keys:
            changes.append(
                CaseChange(
                    c["implementation"],
                    c["dtype"],
                    c["device"],
                    "missing",
                    (f"size {c['size']:,} missing from the new report",),
                )
            )
    notes = []
    if old.get("environment", {}).get("cpu") != new.get("environment", {}).get("cpu"):
        notes.append(
            "the reports come from different CPUs: "
            + (
                "ratios to copy compare better than times, but not perfectly"
                if metric is BaselineMetric.RATIO
                else "times do not compare across machines; compare them by ratio to copy"
            )
        )
    notes += copy_change_notes(results)
    return ReportComparison("speed", changes, notes)
