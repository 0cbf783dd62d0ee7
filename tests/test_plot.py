"""Error profiles, the terminal sparkline, and `gelu-audit plot` (from a saved report)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gelu_audit.accuracy import AuditSettings, run_audit
from gelu_audit.formats import BF16, FP16, FP32, FP64, all_patterns, patterns_to_values
from gelu_audit.profile import ProfileAccumulator, SegmentRuns, round_up_4, segment_keys, segment_table
from gelu_audit.report.serialize import dumps, jsonable
from tests.conftest import assert_usage_error, run_cli


# --- segments and profiles --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [FP16, BF16, FP32, FP64], ids=lambda f: f.name)
def test_segments_tile_the_finite_axis(fmt) -> None:
    """Per sign, the segments run from 0 to the format's overflow threshold without gap."""
    table = segment_table(fmt)
    assert table.lo[0] == 0.0 and table.hi[0] == fmt.smallest_normal
    assert np.all(table.lo[1:] == table.hi[:-1]) and np.all(table.lo < table.hi)
    assert table.hi[-1] >= fmt.largest_finite


def test_every_fp16_input_lands_in_the_segment_that_holds_it() -> None:
    x = patterns_to_values(FP16, all_patterns(FP16))
    keys = segment_keys(FP16, x)
    table, n = segment_table(FP16), segment_table(FP16).count
    finite = np.isfinite(x)
    assert np.all(keys[~finite] == -1) and np.all(keys[finite] >= 0)
    k, v = keys[finite], x[finite]
    magnitude = np.abs(v)
    base = np.where(k >= n, k - n, k)
    assert np.all((table.lo[base] <= magnitude) & (magnitude < table.hi[base]))
    assert np.all((k >= n) == np.signbit(v))


def test_profile_of_an_audit_adds_up_to_its_statistics() -> None:
    report = run_audit(AuditSettings(dtypes=("fp16",), implementations=("torch-erf-composite",)))
    case = report.results[0]
    profile = case.exact.profile
    assert sum(profile.points) == 65536 - 2048  # every input but the NaNs and ±inf
    assert max(profile.max_ulp) == round_up_4(case.exact.max_ulp)
    assert len(case.nonfinite) == case.nonfinite_count  # few enough to be all listed
    assert sum(profile.nonfinite) == sum(math.isfinite(p.x) for p in case.nonfinite)  # −∞ has no segment
    assert list(profile.x_lo) == sorted(profile.x_lo)
    worst = case.exact.worst[0].x
    holding = [i for i, (lo, hi) in enumerate(zip(profile.x_lo, profile.x_hi)) if lo <= worst < hi or hi == worst == 0]
    assert profile.max_ulp[holding[0]] == max(profile.max_ulp)


def test_profile_accumulators_merge_like_one() -> None:
    x = np.linspace(-10, 10, 4001)
    errors = np.abs(np.sin(x)) * 3
    whole, first, second = ProfileAccumulator(), ProfileAccumulator(), ProfileAccumulator()
    whole.add(FP32, SegmentRuns.of(FP32, x), errors, errors > 2, np.array([5, 3000]))
    first.add(FP32, SegmentRuns.of(FP32, x[:1500]), errors[:1500], errors[:1500] > 2, np.array([5]))
    second.add(FP32, SegmentRuns.of(FP32, x[1500:][::-1]), errors[1500:][::-1], errors[1500:][::-1] > 2,
               np.array([len(x) - 1 - 3000]))  # fmt: skip
    first.merge(ProfileAccumulator.from_state(second.to_state()))
    assert first.finish() == whole.finish()


def test_round_up_4_is_an_upper_bound() -> None:
    expected = {2.043401683100175: 2.044, 0.1: 0.1001, 16777215.0: 16780000.0, 0.0: 0.0, 5e-324: 5e-324,
                1.7976931348623157e308: 1.7976931348623157e308}  # the last: 1.798e308 would overflow
    for value, rounded in expected.items():
        assert round_up_4(value) == rounded >= value


def test_json_keeps_lists_of_numbers_on_one_line() -> None:
    document = {"a": [1, 2.5, "nan"], "b": {"c": [[1, 2], [3]], "d": []}, "e": float("inf")}
    text = dumps(document)
    assert json.loads(text) == jsonable(document)
    assert '"a": [1, 2.5, "nan"]' in text and '"d": []' in text and '"e": "inf"' in text


# --- the text rendering -----------------------------------------------------------------------


def test_profile_table_in_the_terminal() -> None:
    result = run_cli("accuracy", "-d", "fp16", "-i", "torch-gelu,torch-erf-composite", "--profile")
    assert result.returncode == 0, result.stderr
    assert "fp16: where the error is" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("│ torch-erf-composite")]
    assert len(lines) == 2  # the main table, then the profile
    spark = lines[1].split("│")[2].strip()
    assert set(spark) <= set("▁▂▃▄▅▆▇█!") and "▇" in spark  # the 2,043-ULP tail shows


# --- plots ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "fp16-bf16.json"
    result = run_cli("accuracy", "-d", "fp16,bf16", "-i", "torch-gelu,torch-erf-composite,torch-gelu-tanh",
                     "-f", "json", "-o", str(path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return path


def test_plot_from_a_saved_report_png_and_svg(saved_report: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = run_cli("plot", str(saved_report), "-o", str(tmp_path / "errors.png"))
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.split()]
    assert written == [tmp_path / "errors-fp16.png", tmp_path / "errors-bf16.png"]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    result = run_cli("plot", str(saved_report), "-d", "bf16", "-i", "torch-gelu", "--against", "formula",
                     "-o", str(tmp_path / "one.svg"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "one.svg").read_text()
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert not list(tmp_path.glob(".*partial"))


def test_accuracy_writes_its_plot_too(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "live.png"
    result = run_cli("accuracy", "-d", "fp16", "-i", "torch-gelu", "--range", "-8:8", "--plot", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes().startswith(b"\x89PNG") and f"wrote {target}" in result.stderr
    assert "fp16: exhaustive" in result.stdout  # the table still goes to stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("-o", "x.pdf"), "the file name must end in .png or .svg"),
        (("-o", "x.png", "-i", "numpy-erf"), "nothing to plot"),
        (("-o", "x.png", "-d", "fp64"), "nothing to plot"),
    ],
)  # fmt: skip
def test_plot_usage_errors(saved_report: Path, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    args = tuple(str(tmp_path / a) if a.startswith("x.") else a for a in args)
    assert_usage_error(run_cli("plot", str(saved_report), *args), message)


def test_plot_refuses_what_is_not_a_report(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    assert_usage_error(run_cli("plot", str(missing), "-o", str(tmp_path / "a.png")), "cannot read")
    other = tmp_path / "other.json"
    other.write_text('{"schema": "gelu-audit.speed", "schema_version": 1}')
    assert_usage_error(run_cli("plot", str(other), "-o", str(tmp_path / "a.png")), "is not a gelu-audit.accuracy report")
    old = tmp_path / "old.json"
    old.write_text('{"schema": "gelu-audit.accuracy", "schema_version": 1, "results": '
                   '[{"status": "ok", "dtype": "fp16", "device": "cpu", "implementation": "x", "exact": {}}]}')  # fmt: skip
    assert_usage_error(run_cli("plot", str(old), "-o", str(tmp_path / "a.png")), "no finished case with an error profile")


def test_without_matplotlib_the_extra_is_named(saved_report: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None; from gelu_audit.cli import main; "
            f"main(['plot', {str(saved_report)!r}, '-o', {str(tmp_path / 'a.png')!r}])")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert_usage_error(result, "plotting needs matplotlib: pip install 'gelu-audit[plot]'")
    code = code.replace(f"['plot', {str(saved_report)!r}, '-o',", "['accuracy', '-d', 'fp16', '--plot',")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert_usage_error(result, "plotting needs matplotlib")
