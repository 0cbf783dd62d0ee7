"""`gelu-audit compare`: what got worse and what got better between two saved reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.helpers import assert_usage_error, case_of, run_cli


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "old.json"
    result = run_cli(
        "accuracy", "-d", "fp16", "-i", "torch-gelu,torch-gelu-tanh,numpy-erf", "-f", "json", "-o", str(path)
    )
    assert result.returncode == 0, result.stderr
    return path


def test_same_report_is_unchanged(baseline: Path) -> None:
    result = run_cli("compare", str(baseline), str(baseline), "-f", "json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert {c["verdict"] for c in document["changes"]} == {"unchanged"} and not document["summary"][
        "regressed"
    ]


def test_a_worse_build_is_a_regression(baseline: Path, tmp_path: Path) -> None:
    """The new report is the baseline with one case made worse, as a changed kernel would make it
    (the comparison reads documents only, so an edited copy exercises it fully)."""
    document = json.loads(baseline.read_text())
    worse = copy.deepcopy(document)
    for case in worse["results"]:
        if case["implementation"] == "torch-gelu-tanh":
            case["exact"]["max_ulp"] *= 2
            case["exact"]["accurate_domain"]["lo"] = -0.5
        if case["implementation"] == "numpy-erf":
            case["nonfinite_count"] -= 1
    worse["results"] = [c for c in worse["results"] if c["implementation"] != "torch-gelu"]
    new = tmp_path / "new.json"
    new.write_text(json.dumps(worse))
    result = run_cli("compare", str(baseline), str(new), "-f", "json")
    assert result.returncode == 1
    changes = {c["implementation"]: c for c in json.loads(result.stdout)["changes"]}
    assert changes["torch-gelu"]["verdict"] == "missing"
    assert changes["torch-gelu-tanh"]["verdict"] == "regression"
    old_max = case_of(document, "torch-gelu-tanh")["exact"]["max_ulp"]
    assert any(
        w.startswith(f"max ULP {old_max:.4g} → {2 * old_max:.4g}")
        for w in changes["torch-gelu-tanh"]["worse"]
    )
    assert any(w.startswith("accurate domain narrower") for w in changes["torch-gelu-tanh"]["worse"])
    assert changes["numpy-erf"]["verdict"] == "improvement"
    allowed = run_cli("compare", str(baseline), str(new), "--allow-ulp-increase", "1000", "-f", "markdown")
    assert allowed.returncode == 1 and "| `torch-gelu` | fp16 | cpu | missing |" in allowed.stdout


def test_compare_speed_reports_and_refuse_mixed_kinds(baseline: Path, tmp_path: Path) -> None:
    speed = tmp_path / "speed.json"
    assert (
        run_cli(
            "speed",
            "-i",
            "numpy-erf",
            "--sizes",
            "1K",
            "--samples",
            "5",
            "--target",
            "0",
            "--warmup",
            "0",
            "-f",
            "json",
            "-o",
            str(speed),
        ).returncode
        == 0
    )
    result = run_cli("compare", str(speed), str(speed), "-f", "json")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["kind"] == "speed"
    assert_usage_error(
        run_cli("compare", str(baseline), str(speed)),
        "cannot compare a gelu-audit.accuracy report with a gelu-audit.speed report",
    )
    assert_usage_error(run_cli("compare", str(baseline), str(tmp_path / "none.json")), "cannot read")


def test_a_max_ulp_that_became_nan_is_a_regression() -> None:
    """No comparison holds for a NaN: "nan" (how a report writes one) is worse, not unchanged."""
    from gelu_audit.audits.compare import _judge

    old = {"status": "ok", "max_ulp": 1.5, "correctly_rounded": 0.9, "domain": [-4.0, 4.0], "nonfinite": 0}
    new = {**old, "max_ulp": float("nan"), "worst_x": None}
    worse, better = _judge(old, new, 0.0, 0.0)
    assert worse == ["max ULP 1.5 → nan"] and better == []
    assert _judge(new, old, 0.0, 0.0) == ([], ["max ULP nan → 1.5"])
