"""Where CI users look: Markdown, JUnit XML, GitHub annotations; and `gelu-audit compare`."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gelu_audit.report.github import github_annotation
from gelu_audit.report.output_format import OutputFormat
from gelu_audit.report.text import spark_char
from tests.helpers import assert_usage_error, case_of, run_cli, session_cache_dir

AUDIT = (
    "accuracy",
    "-d",
    "fp16,bf16",
    "-i",
    "numpy-erf,torch-erf-composite,onnxruntime-gelu",
    "--range",
    "-8:8",
    "--max-ulp",
    "4",
)
"""numpy-erf (float64, rounded once) passes 4 ULP on any CPU; the fp16 op-by-op composite fails
it on any CPU (1 + erf cancels). Its exact figures depend on the CPU's float32 erf, so every test
reads them from the same run's JSON (``--also json=...``), never from one machine's numbers."""


def audit_with_figures(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run AUDIT with ``args``; also the same run's JSON report, where the figures come from."""
    figures = tmp_path / "figures.json"
    result = run_cli(*AUDIT, *args, "--also", f"json={figures}")
    return result, json.loads(figures.read_text())


def test_junit_has_a_test_case_per_implementation_dtype_device(tmp_path: Path) -> None:
    target = tmp_path / "audit.xml"
    result, figures = audit_with_figures(tmp_path, "-f", "junit", "-o", str(target))
    assert result.returncode == 1 and result.stdout == ""
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"gelu-audit.accuracy.fp16", "gelu-audit.accuracy.bf16"}
    cases = {(c.get("classname"), c.get("name")): c for s in suites.values() for c in s.findall("testcase")}
    assert ("gelu-audit.fp16.cpu", "numpy-erf") in cases and (
        "gelu-audit.bf16.cpu",
        "torch-erf-composite",
    ) in cases
    composite = cases[("gelu-audit.fp16.cpu", "torch-erf-composite")].find("failure")
    measured = case_of(figures, "torch-erf-composite")["exact"]
    assert measured["max_ulp"] > 4  # the cancellation of 1 + erf in fp16, whatever the CPU
    assert composite is not None and f"max {measured['max_ulp']:.4g} ULP > 4" in composite.get("message")
    assert f"worst input x = {measured['worst'][0]['x']!r}" in composite.text
    assert cases[("gelu-audit.fp16.cpu", "numpy-erf")].find("failure") is None
    skipped = [c for c in cases.values() if c.find("skipped") is not None]
    assert skipped and all(
        c.find("skipped").get("message") for c in skipped
    )  # no bf16 kernel in ORT, no CUDA
    counted = sum(int(s.get("tests")) for s in suites.values())
    assert counted == len(cases) == int(root.get("tests"))
    assert int(root.get("failures")) == sum(c.find("failure") is not None for c in cases.values())


def test_markdown_is_a_github_table(tmp_path: Path) -> None:
    result, figures = audit_with_figures(tmp_path, "-f", "markdown")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("## gelu-audit accuracy: ❌")
    header = next(i for i, line in enumerate(lines) if line.startswith("| implementation |"))
    columns = lines[header].count("|")
    assert set(lines[header + 1].replace("|", "").replace("-", "").replace(":", "")) == set()
    rows = lines[header + 1 : lines.index("", header)]
    assert all(row.count("|") - row.count("\\|") == columns for row in rows)
    composite = next(row for row in rows if "`torch-erf-composite`" in row)
    measured = case_of(figures, "torch-erf-composite")["exact"]["max_ulp"]
    assert f"❌ max {measured:.4g} ULP > 4" in composite
    spark = composite.split("`")[3]  # the error profile along x: the tail's maximum is drawn
    assert len(spark) == 40 and set(spark) <= set("▁▂▃▄▅▆▇█!") and spark_char(measured, 0) in spark
    assert "<details><summary>" in result.stdout


def test_github_annotations(tmp_path: Path) -> None:
    result, figures = audit_with_figures(tmp_path, "-f", "github")
    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    measured = case_of(figures, "torch-erf-composite")["exact"]["max_ulp"]
    assert any(f"torch-erf-composite fp16 cpu::max {measured:.4g} ULP > 4" in line for line in errors)
    assert all("\n" not in line for line in lines) and lines[-1].startswith(
        "::notice title=gelu-audit accuracy::"
    )
    assert github_annotation("error", "a: b, c", "50%\nnext") == "::error title=a%3A b%2C c::50%25%0Anext"


def test_speed_in_ci_formats(tmp_path: Path) -> None:
    base = (
        "speed",
        "-i",
        "numpy-erf",
        "--sizes",
        "1K,2K",
        "--samples",
        "3",
        "--target",
        "0",
        "--warmup",
        "0",
    )
    junit = run_cli(*base, "-f", "junit", "-o", str(tmp_path / "speed.xml"))
    assert junit.returncode == 0, junit.stderr
    suite = ET.parse(tmp_path / "speed.xml").getroot()
    assert suite.get("tests") == "2" and [c.get("name") for c in suite] == ["numpy-erf[1K]", "numpy-erf[2K]"]
    markdown = run_cli(*base, "-f", "markdown").stdout.splitlines()
    assert markdown[0] == "## gelu-audit speed: ✅ pass" and markdown[4].startswith(
        "| `numpy-erf` | cpu | fp32 | 1K |"
    )
    github = run_cli(*base, "-f", "github").stdout
    assert github.startswith("::notice title=gelu-audit speed::2 case(s), 0 failed")


def test_one_run_many_views(tmp_path: Path) -> None:
    from tests.helpers import validate_document

    views = {"json": "a.json", "markdown": "a.md", "junit": "a.xml", "github": "a.txt", "table": "a.table"}
    also = [a for fmt, name in views.items() for a in ("--also", f"{fmt}={tmp_path / name}")]
    result = run_cli(*AUDIT, "-f", "markdown", *also)
    assert result.returncode == 1
    assert (tmp_path / "a.md").read_text() == result.stdout  # the same report, rendered twice
    validate_document(json.loads((tmp_path / "a.json").read_text()))
    assert ET.parse(tmp_path / "a.xml").getroot().tag == "testsuites"
    assert (tmp_path / "a.txt").read_text().startswith("::error ") and "\\x1b[" not in (
        tmp_path / "a.table"
    ).read_text()
    assert_usage_error(run_cli("accuracy", "--also", "pdf=x.pdf"), "--also 'pdf=x.pdf': expected FORMAT=FILE")


# --- every format, every report ---------------------------------------------------------------


@pytest.mark.parametrize("output_format", list(OutputFormat), ids=lambda f: f.value)
def test_every_format_renders_an_accuracy_and_a_speed_report(output_format: OutputFormat) -> None:
    """The dispatch covers each member of OutputFormat (a new one fails here until rendered)."""
    from gelu_audit.audits.accuracy import AuditSettings, run_audit
    from gelu_audit.audits.speed import SpeedSettings, TimingProtocol, run_speed
    from gelu_audit.audits.thresholds import Threshold
    from gelu_audit.report.render import render_accuracy, render_speed

    # numpy-erf fails the gate (GELU(-inf) is NaN): every format names the failing case.
    gate = Threshold.gate(1000)
    accuracy = run_audit(
        AuditSettings(
            dtypes=("fp16",), implementations=("numpy-erf",), gate=gate, cache_dir=session_cache_dir()
        )
    )
    assert "numpy-erf" in render_accuracy(accuracy, output_format, {"cpu": "test"})
    timing = TimingProtocol(warmup_s=0.0, samples=3)
    speed = run_speed(SpeedSettings(implementations=("numpy-erf",), sizes=(1024,), protocol=timing))
    text = render_speed(speed, None, None, output_format)
    # A passing speed case has no annotation of its own, only the summary's count.
    assert ("1 case(s)" if output_format is OutputFormat.GITHUB else "numpy-erf") in text
