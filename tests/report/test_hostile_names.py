"""Names and reasons come from users (entry-point names, plugin messages, saved reports): every
format shows them as written, and none of them breaks the document around them."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gelu_audit.audits.accuracy import AuditReport, AuditSettings, Skipped, run_audit
from gelu_audit.audits.thresholds import Threshold
from gelu_audit.report.output_format import OutputFormat
from gelu_audit.report.render import render_accuracy
from tests.helpers import session_cache_dir

HOSTILE = "[bold]evil[/bold] $x$ </testcase> | a:b,c\nnext"


@pytest.fixture(scope="module")
def report() -> AuditReport:
    """A real audit whose case and skip carry a hostile name and reason (failing the gate, so
    every format names them)."""
    real = run_audit(
        AuditSettings(
            dtypes=("fp16",),
            implementations=("numpy-erf",),
            gate=Threshold.gate(0.25),
            cache_dir=session_cache_dir(),
        )
    )
    results = [dataclasses.replace(case, implementation=HOSTILE) for case in real.results]
    skipped = [Skipped(HOSTILE, "cuda", "fp16", f"reason with {HOSTILE}")]
    return dataclasses.replace(real, results=results, skipped=skipped)


def test_table_shows_rich_markup_as_written(report: AuditReport) -> None:
    text = render_accuracy(report, OutputFormat.TABLE, {})
    assert "[bold]evil[/bold]" in text and "$x$" in text


def test_markdown_rows_keep_their_columns(report: AuditReport) -> None:
    lines = render_accuracy(report, OutputFormat.MARKDOWN, {}).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| implementation |"))
    columns = len(re.findall(r"(?<!\\)\|", lines[header]))
    row = lines[header + 2]
    assert len(re.findall(r"(?<!\\)\|", row)) == columns and "\\|" in row
    assert "</testcase>" in row


def test_junit_is_well_formed_and_names_the_case(report: AuditReport) -> None:
    root = ET.fromstring(render_accuracy(report, OutputFormat.JUNIT, {}).encode())
    names = {case.get("name") for case in root.iter("testcase")}
    assert HOSTILE in names


def test_github_annotations_stay_one_line_each(report: AuditReport) -> None:
    text = render_accuracy(report, OutputFormat.GITHUB, {})
    errors = [line for line in text.splitlines() if line.startswith("::error ")]
    assert errors and all("\n" not in line for line in errors)
    title = errors[0].split("::")[1]
    assert "a%3Ab%2Cc" in title and "%0Anext" in title  # ':' ',' and the newline escaped


def test_plot_draws_dollar_signs_as_written(report: AuditReport, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from gelu_audit.report.json_documents import accuracy_document
    from gelu_audit.report.plot import write_plots

    document = accuracy_document(report, {"cpu": "unbalanced $ sign"})
    (path,) = write_plots(document, tmp_path / "hostile.png")
    assert path.stat().st_size > 10_000
