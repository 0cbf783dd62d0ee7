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


CONTROLS = "\x1b[31mred\x1b[0m\x00\x07 \u202eevil\x9b \udc80"
"""An ANSI colour (compilers' and CUDA libraries' messages carry them), NUL, BEL, a right-to-left
override, a C1 control and a lone surrogate (an undecodable file name)."""
SHOWN = "\\x1b[31mred\\x1b[0m\\x00\\x07 \\u202eevil\\x9b \\udc80"


@pytest.fixture(scope="module")
def controlled(report: AuditReport) -> AuditReport:
    """The same audit with the control characters in its names and reasons."""
    results = [dataclasses.replace(case, implementation=CONTROLS) for case in report.results]
    skipped = [Skipped(CONTROLS, "cuda", "fp16", f"reason {CONTROLS}")]
    return dataclasses.replace(report, results=results, skipped=skipped)


@pytest.mark.parametrize("output_format", [f for f in OutputFormat if f is not OutputFormat.JSON])
def test_views_for_people_show_control_characters_as_escapes(
    controlled: AuditReport, output_format: OutputFormat
) -> None:
    """Before, the table sent the escapes to the terminal and the JUnit document was not XML
    (XML 1.0 forbids NUL and ESC: a test viewer dropped the whole report)."""
    text = render_accuracy(controlled, output_format, {}, color=True)
    assert SHOWN in text
    assert not re.search("[\x00\x07\u202e\x9b\ud800-\udfff]", text)
    assert "\x1b[31mred" not in text  # the table's own colours are the only escapes left
    if output_format is OutputFormat.JUNIT:
        names = {case.get("name") for case in ET.fromstring(text.encode()).iter("testcase")}
        assert SHOWN in names


def test_json_keeps_the_text_exactly(controlled: AuditReport) -> None:
    """JSON escapes control characters itself, so the document holds the names as they were
    (what a merge or a compare of it matches on). A lone surrogate is written as its escape:
    before, the document could not be encoded, and ``-o`` lost the report (exit 2)."""
    import json

    text = render_accuracy(controlled, OutputFormat.JSON, {}).encode("utf-8")  # strict
    document = json.loads(text)
    assert {case["implementation"] for case in document["results"]} == {CONTROLS}


def test_a_report_without_control_characters_is_shown_as_it_is(report: AuditReport) -> None:
    from gelu_audit.report.visible import with_visible_text

    assert with_visible_text(report) is report
