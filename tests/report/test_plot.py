"""The terminal sparkline, and `gelu-audit plot` (from a saved report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gelu_audit.report.envelope import dumps, jsonable
from tests.helpers import assert_usage_error, run_cli


def test_json_keeps_lists_of_numbers_small_records_and_short_tables_on_one_line() -> None:
    document = {
        "a": [1, 2.5, "nan"],
        "b": {"c": [[1, 2], [3]], "d": []},
        "e": float("inf"),
        "point": {"x": 1.5, "got": "nan"},
    }
    text = dumps(document)
    assert json.loads(text) == jsonable(document)
    assert '"a": [1,2.5,"nan"]' in text and '"d": []' in text and '"e": "inf"' in text
    assert '"c": [[1,2],[3]]' in text and '"point": {"x": 1.5, "got": "nan"}' in text
    assert '"b": {\n' in text  # a record holding lists is indented


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
    result = run_cli(
        "accuracy",
        "-d",
        "fp16,bf16",
        "-i",
        "torch-gelu,torch-erf-composite,torch-gelu-tanh",
        "-f",
        "json",
        "-o",
        str(path),
    )
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
    result = run_cli(
        "plot",
        str(saved_report),
        "-d",
        "bf16",
        "-i",
        "torch-gelu",
        "--against",
        "formula",
        "-o",
        str(tmp_path / "one.svg"),
    )
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "one.svg").read_text()
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert not list(tmp_path.glob(".*partial"))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_many_implementations_make_a_heatmap_and_either_style_can_be_asked_for(tmp_path: Path) -> None:
    """The lines picture is 1400×950 px whatever it holds; a heatmap grows with its rows."""
    pytest.importorskip("matplotlib")
    report = tmp_path / "bf16.json"
    six = "torch-gelu,torch-gelu-aten,torch-gelu-tanh,torch-erf-composite,numpy-erf,numpy-tanh"
    result = run_cli("accuracy", "-d", "bf16", "-i", six, "-f", "json", "-o", str(report))
    assert result.returncode == 0, result.stderr
    sizes = {}
    for style, names in (
        ("auto", six),
        ("auto", "torch-gelu,numpy-erf"),
        ("heatmap", "numpy-erf"),
        ("lines", six),
    ):
        target = tmp_path / f"{style}-{len(names)}.png"
        outcome = run_cli("plot", str(report), "-i", names, "--style", style, "-o", str(target))
        assert outcome.returncode == 0, outcome.stderr
        sizes[(style, len(names.split(",")))] = _png_size(target)
    assert sizes[("auto", 2)] == sizes[("lines", 6)] == (1400, 950)
    assert sizes[("auto", 6)][0] == 1400 and sizes[("auto", 6)][1] < 950  # a heatmap, 6 rows
    assert sizes[("heatmap", 1)][1] < sizes[("auto", 6)][1]  # one row: shorter still


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
)
def test_plot_usage_errors(saved_report: Path, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    args = tuple(str(tmp_path / a) if a.startswith("x.") else a for a in args)
    assert_usage_error(run_cli("plot", str(saved_report), *args), message)


def test_plot_refuses_what_is_not_a_report(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    assert_usage_error(run_cli("plot", str(missing), "-o", str(tmp_path / "a.png")), "cannot read")
    other = tmp_path / "other.json"
    other.write_text('{"schema": "gelu-audit.speed", "schema_version": 1}')
    assert_usage_error(
        run_cli("plot", str(other), "-o", str(tmp_path / "a.png")), "is not a gelu-audit.accuracy report"
    )
    old = tmp_path / "old.json"
    old.write_text(
        '{"schema": "gelu-audit.accuracy", "schema_version": 1, "results": '
        '[{"status": "ok", "dtype": "fp16", "device": "cpu", "implementation": "x", "exact": {}}]}'
    )
    assert_usage_error(
        run_cli("plot", str(old), "-o", str(tmp_path / "a.png")), "no finished case with an error profile"
    )


def test_without_matplotlib_the_extra_is_named(saved_report: Path, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None; from gelu_audit.cli import main; "
        f"main(['plot', {str(saved_report)!r}, '-o', {str(tmp_path / 'a.png')!r}])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert_usage_error(result, "plotting needs matplotlib: pip install 'gelu-audit[plot]'")
    code = code.replace(f"['plot', {str(saved_report)!r}, '-o',", "['accuracy', '-d', 'fp16', '--plot',")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert_usage_error(result, "plotting needs matplotlib")


@pytest.mark.parametrize("style", ["lines", "heatmap"])
def test_an_infinite_or_enormous_error_is_drawn_at_the_top(
    saved_report: Path, tmp_path: Path, style: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """An error the report writes as "inf" (fp64 can have one) failed the whole plot (a string
    compared with floats), and 1e300 overflowed matplotlib's axis, with its warnings on stderr."""
    pytest.importorskip("matplotlib")
    import json

    from gelu_audit.report.envelope import expand_profiles
    from gelu_audit.report.plot import write_plots

    document = json.loads(saved_report.read_text(encoding="utf-8"))
    expand_profiles(document)
    first, second = [case for case in document["results"] if case["dtype"] == "fp16"][:2]
    first["exact"]["profile"]["max_ulp"][10] = "inf"
    second["exact"]["worst"][0]["ulp_error"] = 1e300
    (path,) = write_plots(document, tmp_path / "extreme.png", dtypes=["fp16"], style=style)
    assert path.read_bytes().startswith(b"\x89PNG") and capfd.readouterr().err == ""
