"""The terminal report at a glance: every table fits the terminal without cutting a number or
a word (columns are left out instead, and a line says which), each table has a verdict line,
and notes that repeat are said once with the cases they concern."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from gelu_audit import gelu_kernel
from gelu_audit.audits.accuracy import AuditReport, AuditSettings, run_audit
from gelu_audit.audits.estimates import Estimate
from gelu_audit.audits.thresholds import Threshold
from gelu_audit.numerics.inputs import ValueRange
from gelu_audit.report.envelope import DocumentKind, load_document
from gelu_audit.report.output_format import OutputFormat
from gelu_audit.report.plot import _accuracy_order
from gelu_audit.report.render import render_accuracy
from gelu_audit.report.table import ACCURACY_COLUMNS, _peers, accuracy_rank, render_accuracy_table
from gelu_audit.report.text import accuracy_rank_key, format_share_estimate, format_ulp
from tests.cli.fuzzing import invoke
from tests.helpers import run_cli, session_cache_dir

WIDTHS = (80, 100, 120, 160)


@pytest.fixture(scope="module")
def default_report(tmp_path_factory: pytest.TempPathFactory) -> AuditReport:
    """What `gelu-audit accuracy` audits by default: every dtype, every implementation here."""
    return run_audit(AuditSettings(jobs=2, cache_dir=session_cache_dir()))


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_the_accuracy_report_fits_and_cuts_nothing(default_report: AuditReport, width: int) -> None:
    text = render_accuracy_table(default_report, color=False, width=width)
    assert "…" not in text
    assert all(len(line) <= width for line in _lines(text))
    for case in default_report.results:  # every max ULP is printed whole, in its row
        if case.exact is not None:
            assert format_ulp(case.exact.max_ulp) in text
    joined = re.sub(r"\s+", " ", text)  # the left-out line may wrap
    header_line = next(line for line in _lines(text) if line.startswith("┃ implementation"))
    headers = [h if h != "domain" else "domain ≤2 ULP" for h, _, _ in ACCURACY_COLUMNS]
    shown = {cell.strip() for cell in header_line.split("┃")}
    missing = [h for h in headers if h not in shown]
    left_out = re.search(rf"left out at {width} columns: (.*?) \(-f json has them\)", joined)
    assert (left_out is None) == (not missing)
    if left_out:
        assert set(left_out.group(1).split(", ")) == set(missing), (left_out.group(1), missing)
    if width == 80:
        assert left_out, "at 80 columns some columns must give way"
    tables = sum(1 for line in _lines(text) if line.startswith("┏"))
    verdicts = [line for line in _lines(text) if line.startswith("→ ")]
    assert len(verdicts) == tables == len(default_report.inputs)
    assert all("most accurate: " in line for line in verdicts)


@pytest.mark.slow
def test_the_default_report_is_short_and_says_repeated_notes_once(default_report: AuditReport) -> None:
    """At most 100 lines at 120 columns with the built-ins: the budget is for a machine without
    JAX and ONNX Runtime, so it is measured on the report without their cases (their rows,
    their skip notes, and the names they add to the wrapped notes). The compiled rows count: a
    test that left Inductor's config without its compiler once hid them from this one."""
    text = render_accuracy_table(default_report, color=False, width=120)
    lines = _lines(text)
    extra = ("jax", "onnxruntime")
    kept = [(c, v) for c, v in zip(default_report.results, default_report.verdicts) if c.backend not in extra]
    builtins_only = dataclasses.replace(
        default_report,
        results=[c for c, _ in kept],
        verdicts=[v for _, v in kept],
        skipped=[s for s in default_report.skipped if not s.implementation.startswith(("jax", "onnx"))],
    )
    built_in_lines = _lines(render_accuracy_table(builtins_only, color=False, width=120))
    assert len(built_in_lines) <= 100, len(built_in_lines)
    if shutil.which(os.environ.get("CXX", "g++")):  # a compiler here: the compiled rows are audited
        audited = {case.implementation for case in default_report.results}
        assert {"torch-compile-gelu", "torch-compile-gelu-tanh"} <= audited
    assert not any(line.startswith("specials ") for line in lines)  # per-case: --details only
    everyone = len([c for c in default_report.results if c.status == "ok"])
    assert f"GELU(-inf) = NaN instead of −0: all {everyone}" in text  # every built-in returns NaN
    skip_lines = [line for line in lines if line.startswith("skipped ")]
    assert len(skip_lines) == len({s.reason for s in default_report.skipped})
    detailed = render_accuracy_table(default_report, color=False, details=True, width=120)
    per_case = [line for line in _lines(detailed) if line.startswith("specials ")]
    assert len(per_case) == sum(1 for c in default_report.results for s in c.specials if not s.ok)


def test_the_verdict_line_names_the_failures() -> None:
    report = run_audit(
        AuditSettings(
            dtypes=("fp16",),
            implementations=("numpy-erf", "torch-erf-composite"),
            value_range=ValueRange(-8.0, 8.0),  # no ±inf: GELU(−inf) = NaN would fail either
            gate=Threshold.gate(4.0),
            cache_dir=session_cache_dir(),
        )
    )
    text = render_accuracy_table(report, color=False, width=100)
    verdict = next(line for line in _lines(text) if line.startswith("→ fp16"))
    assert "most accurate: numpy-erf (none over 4 ULP; max 0.500 ULP" in verdict  # the gate's tolerance
    assert re.search(r"fail: torch-erf-composite$", verdict), verdict


@pytest.fixture(scope="module")
def saved_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    report = tmp_path_factory.mktemp("layout") / "a.json"
    made = run_cli("accuracy", "-d", "fp16", "-i", "numpy-erf,torch-gelu", "-f", "json", "-o", str(report))
    assert made.returncode == 0, made.stderr
    return report


@pytest.mark.slow
@pytest.mark.parametrize("width", (80, 100, 160))
def test_no_other_command_cuts_a_number_or_a_word(
    width: int, saved_report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command in this process (the start-up of a new one is most of its time), with the
    terminal width it would read from COLUMNS."""
    monkeypatch.setenv("COLUMNS", str(width))
    commands = [
        ["list"],
        ["paths", "-d", "fp16", "-i", "torch-gelu,torch-gelu-tanh"],
        ["speed", "-d", "fp32", "--sizes", "4K", "-i", "torch-gelu,numpy-erf", "--target", "0"],
        ["compare", str(saved_report), str(saved_report)],
        ["accuracy", "-d", "bf16", "-i", "numpy-tanh,torch-quick-gelu", "--policy", "benchdnn", "--details"],
    ]
    for command in commands:
        result = invoke(
            [*command, "--no-progress"] if command[0] in ("paths", "speed", "accuracy") else command
        )
        assert result.code in (0, 1), result.stderr
        assert "…" not in result.stdout, (command, result.stdout)
        assert all(len(line) <= width for line in _lines(result.stdout)), command


def test_list_never_splits_a_word(monkeypatch: pytest.MonkeyPatch) -> None:
    """Narrow terminals get one block per implementation instead of a table whose cells would
    have to fold words: every word of every description and reason is printed whole, in the
    table (160 columns) and in the blocks (80)."""
    document = json.loads(invoke(["list", "-f", "json"]).stdout)
    for width in (80, 160):
        monkeypatch.setenv("COLUMNS", str(width))
        text = invoke(["list"]).stdout
        assert ("┏" in text) == (width == 160)
        printed = set(text.split())
        for row in document["implementations"]:
            for field in (row["description"], *(row["notes"])):
                missing = [word for word in field.split() if word not in printed]
                assert not missing, (width, missing)


def _rounded_gelu(x: np.ndarray) -> np.ndarray:
    """GELU in float64, rounded once to the input's dtype: correctly rounded all but never."""
    from scipy import special

    wide = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return (0.5 * wide * special.erfc(-wide * np.sqrt(0.5))).astype(x.dtype)


@gelu_kernel(backend="numpy", dtypes=("fp16",))
def flushing_gelu(x: np.ndarray) -> np.ndarray:
    """Right everywhere, but subnormal results are flushed to ±0: up to 1,023 ULP off at a few
    thousand inputs."""
    y = _rounded_gelu(x)
    return np.where(np.abs(y) < np.finfo(np.float16).smallest_normal, np.copysign(0, y), y).astype(np.float16)


@gelu_kernel(backend="numpy", dtypes=("fp16",))
def offset_gelu(x: np.ndarray) -> np.ndarray:
    """Right everywhere but on [0.5, 64], where every answer is 3 ULP too large: a small worst
    error at many more inputs."""
    y = _rounded_gelu(x)
    shifted = (y.view(np.uint16) + np.uint16(3)).view(np.float16)
    return np.where((x >= 0.5) & (x <= 64), shifted, y)


@gelu_kernel(backend="numpy", dtypes=("fp16",))
def nan_gelu(x: np.ndarray) -> np.ndarray:
    """Not a number anywhere: no finite answer, so no finite error at all."""
    return np.full_like(x, np.nan)


def test_non_finite_answers_count_as_wrong_in_the_ranking(tmp_path: Path) -> None:
    """A kernel whose answers are all NaN has no finite error to be large; it ranks last, and
    so does a case with nothing to judge or NaN estimates (a sample with no finite answer)."""
    report = run_audit(
        AuditSettings(
            dtypes=("fp16",),
            implementations=(f"{__name__}:nan_gelu", "numpy-erf"),
            cache_dir=session_cache_dir(),
        )
    )
    nan_case, numpy_erf = report.results
    assert nan_case.exact is not None and nan_case.exact.finite_points == 0 and nan_case.nonfinite_count > 0
    assert accuracy_rank(numpy_erf) < accuracy_rank(nan_case)
    document = tmp_path / "report.json"  # the heatmap's order, from the saved document ("nan" and all)
    document.write_text(render_accuracy(report, OutputFormat.JSON, {}))
    saved = load_document(document, DocumentKind.ACCURACY)["results"]
    assert [c["implementation"] for c in sorted(saved, key=lambda c: _accuracy_order(c, "exact"))] == [
        numpy_erf.implementation,
        nan_case.implementation,
    ]
    verdict = next(
        line for line in _lines(render_accuracy_table(report, color=False)) if line.startswith("→")
    )
    assert "most accurate: numpy-erf (none over 2 ULP, 1 non-finite; max 0.500 ULP)" in verdict  # −inf → NaN
    some = {"max_outside_flush": 1.0, "max_ulp": 1.0, "correctly_rounded": 0.9, "mean_ulp": 0.3}
    judged = accuracy_rank_key(finite=10, nonfinite=0, over_share=0.5, **some)
    assert judged < accuracy_rank_key(finite=0, nonfinite=0, over_share=0.0, **some)  # nothing judged
    assert judged < accuracy_rank_key(finite=10, nonfinite=0, over_share=float("nan"), **some)
    assert accuracy_rank_key(finite=10, nonfinite=10, over_share=0.0, **some)[0] == 0.5  # half are NaN
    # no finite answer: behind a case wrong everywhere it answers, on every error
    assert accuracy_rank_key(finite=10, nonfinite=0, over_share=1.0, **some) < accuracy_rank_key(
        finite=0, nonfinite=10, over_share=0.0, **some
    )


def test_estimated_shares_read_the_same_at_every_size() -> None:
    assert format_share_estimate(Estimate(0.957, 0.953, 0.96)) == "95.7%±0.4"
    assert format_share_estimate(Estimate(0.000041, 0.00001, 0.00007)) == "0.0041%±0.0031"
    assert format_share_estimate(Estimate(1e-9, 0.0, 3e-9)) == "0.00000010%±0.00000020"  # never 1e-07%
    assert format_share_estimate(Estimate(0.0, 0.0, 0.002)) == "0.0%±0.2"
    assert format_share_estimate(Estimate(math.nan, math.nan, math.nan)) == "—"


def test_the_most_accurate_is_the_one_wrong_least_often_not_the_smallest_worst_error(tmp_path: Path) -> None:
    """A kernel that flushes subnormals has the larger worst error (the flushed tail), yet it
    is within 2 ULP at more inputs than one 3 ULP off over [0.5, 64]: the verdict names it, and
    the heatmap of a saved report puts it first too."""
    names = (f"{__name__}:flushing_gelu", f"{__name__}:offset_gelu")
    report = run_audit(AuditSettings(dtypes=("fp16",), implementations=names, cache_dir=session_cache_dir()))
    flushing, offset = (case.exact for case in report.results)
    assert flushing is not None and offset is not None
    assert flushing.max_ulp > 100 > offset.max_ulp >= 3  # the old rule picked offset
    assert 0 < flushing.over_tolerance < offset.over_tolerance
    document = tmp_path / "report.json"
    document.write_text(render_accuracy(report, OutputFormat.JSON, {}))
    saved = load_document(document, DocumentKind.ACCURACY)["results"]
    heatmap_rows = [
        case["implementation"] for case in sorted(saved, key=lambda c: _accuracy_order(c, "exact"))
    ]
    assert (
        heatmap_rows == [c.implementation for c in sorted(report.results, key=accuracy_rank)] == list(names)
    )
    verdict = next(
        line for line in _lines(render_accuracy_table(report, color=False)) if line.startswith("→")
    )
    assert verdict.startswith(
        f"→ fp16: most accurate: {names[0]} "
        f"({flushing.over_tolerance:,} inputs over 2 ULP, 1 non-finite; max "
    )


flushing_twin = flushing_gelu
"""The same kernel under a second name: the same bits, so the same rank."""


@gelu_kernel(backend="numpy", dtypes=("fp32",))
def rounded_gelu32(x: np.ndarray) -> np.ndarray:
    """fp32 GELU from float64, rounded once."""
    return _rounded_gelu(x)


@gelu_kernel(backend="numpy", dtypes=("fp32",))
def off_on_a_sliver32(x: np.ndarray) -> np.ndarray:
    """3 ULP off on [1, 1.25], a few hundredths of a percent of fp32."""
    y = rounded_gelu32(x)
    shifted = (y.view(np.uint32) + np.uint32(3)).view(np.float32)
    return np.where((x >= 1) & (x <= 1.25), shifted, y)


def test_the_verdict_names_who_it_cannot_tell_apart_from_the_most_accurate() -> None:
    """The same bits under two names rank the same: the verdict says so. On a sample, a case
    whose estimated share over the tolerance has an interval reaching the leader's is named
    as not told apart, exactly when the intervals say so."""
    twins = (f"{__name__}:flushing_gelu", f"{__name__}:flushing_twin")
    report = run_audit(AuditSettings(dtypes=("fp16",), implementations=twins, cache_dir=session_cache_dir()))
    lines = _lines(render_accuracy_table(report, color=False, width=300))
    at = next(i for i, line in enumerate(lines) if line.startswith("→"))
    assert lines[at].startswith(f"→ fp16: most accurate: {twins[0]} (") and lines[at].endswith(" ULP)")
    assert lines[at + 1] == f"  as accurate: {twins[1]}"  # a line of its own

    pair = (f"{__name__}:rounded_gelu32", f"{__name__}:off_on_a_sliver32")
    settings = AuditSettings(
        dtypes=("fp32",), implementations=pair, samples=4000, cache_dir=session_cache_dir()
    )
    report = run_audit(settings)
    right, off = (case.exact for case in report.results)
    assert right is not None and off is not None and right.estimates and off.estimates
    assert off.over_tolerance > 0 and right.over_tolerance == 0
    text = render_accuracy_table(report, color=False, width=300)
    assert f"→ fp32: most accurate: {pair[0]} (" in text and "as accurate" not in text
    told_apart = off.estimates.over_tolerance.low > right.estimates.over_tolerance.high
    assert (f"  within the sample's interval: {pair[1]}" in _lines(text)) is not told_apart, text

    # The same two cases with the intervals set apart, or with more non-finite answers: named no more.
    best, other = report.results
    estimates = dataclasses.replace(off.estimates, over_tolerance=Estimate(0.5, 0.4, 0.6))
    separated = dataclasses.replace(other, exact=dataclasses.replace(off, estimates=estimates))
    assert _peers(best, [best, separated]) == ""
    touching = dataclasses.replace(
        estimates, over_tolerance=Estimate(0.5, right.estimates.over_tolerance.high, 0.6)
    )
    reaching = dataclasses.replace(other, exact=dataclasses.replace(off, estimates=touching))
    assert _peers(best, [best, reaching]) == f"within the sample's interval: {pair[1]}"
    more_nan = dataclasses.replace(reaching, nonfinite_count=best.nonfinite_count + 1)
    assert _peers(best, [best, more_nan]) == ""
