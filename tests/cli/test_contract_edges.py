"""The command line's contract at its edges (found by an independent review, 2026-12-01): what
kernels print or how they end never reaches stdout or the exit code; ``-o`` never replaces a
device or a link; one file per view; a gate over nothing fails; bad values are one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_usage_error, run_cli

KERNELS = """
import sys
import torch.nn.functional as F

print("PRINTED AT IMPORT")


def prints(x):
    print("PRINTED BY THE KERNEL")
    sys.__stdout__.write("WRITTEN TO sys.__stdout__\\n")  # a stream kept from before the run
    return F.gelu(x)


def exits(x):
    sys.exit(0)


class Odd(BaseException):
    pass


def odd(x):
    raise Odd("not an Exception")
"""


@pytest.fixture
def kernels(tmp_path: Path) -> dict[str, str]:
    """A module of hostile kernels, and the environment that finds it."""
    (tmp_path / "hostile.py").write_text(KERNELS, encoding="utf-8")
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n", encoding="utf-8")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path}


FP16 = ("accuracy", "-d", "fp16", "--no-progress")


def test_what_kernels_print_goes_to_stderr_and_stdout_holds_the_document(kernels: dict[str, str]) -> None:
    buffered = {**kernels, "PYTHONUNBUFFERED": ""}  # sys.__stdout__ buffered, as outside CI runners
    result = run_cli(*FP16, "-i", "hostile:prints", "-f", "json", env=buffered)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # the whole of stdout is the one document
    assert [case["status"] for case in document["results"]] == ["ok"]
    for line in ("PRINTED AT IMPORT", "PRINTED BY THE KERNEL", "WRITTEN TO sys.__stdout__"):
        assert line in result.stderr


@pytest.mark.parametrize("isolate", [(), ("--isolate",)], ids=["in process", "isolated"])
def test_a_kernel_that_calls_sys_exit_or_raises_a_base_exception_is_its_case_error(
    kernels: dict[str, str], isolate: tuple[str, ...]
) -> None:
    result = run_cli(*FP16, *isolate, "-i", "hostile:exits,hostile:odd,torch-gelu", "-f", "json", env=kernels)
    assert result.returncode == 1, result.stderr  # the cases' errors fail the run; it still reports
    assert "Traceback" not in result.stderr
    errors = {case["implementation"]: case["error"] for case in json.loads(result.stdout)["results"]}
    assert errors == {
        "hostile:exits": "raised SystemExit: 0",
        "hostile:odd": "raised Odd: not an Exception",
        "torch-gelu": None,
    }


def test_speed_reports_a_kernel_that_calls_sys_exit(kernels: dict[str, str]) -> None:
    args = ("speed", "-d", "fp32", "--sizes", "1K", "--samples", "3", "--max-time", "0.2", "--no-progress")
    result = run_cli(*args, "-i", "hostile:exits", "-f", "json", env=kernels)
    assert result.returncode == 1, result.stderr
    [case] = json.loads(result.stdout)["cases"]
    assert (case["status"], case["reason"]) == ("error", "raised SystemExit: 0")


def test_a_plugin_that_exits_at_import_is_one_line(kernels: dict[str, str]) -> None:
    result = run_cli(*FP16, "-i", "exits_on_import:gelu", env=kernels)
    assert_usage_error(result, "cannot import 'exits_on_import' (SystemExit: 0)")


AUDIT = (*FP16, "-i", "numpy-erf", "--range", "-1:1", "-f", "json")


def test_o_follows_a_link_and_keeps_it(tmp_path: Path) -> None:
    target, link = tmp_path / "report.json", tmp_path / "link.json"
    target.write_text("old", encoding="utf-8")
    link.symlink_to(target.name)
    result = run_cli(*AUDIT, "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert (
        link.is_symlink()
        and json.loads(target.read_text(encoding="utf-8"))["schema"] == "gelu-audit.accuracy"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_o_writes_into_a_fifo_instead_of_replacing_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    result = run_cli(*AUDIT, "-o", str(fifo))
    received, _ = reader.communicate(timeout=60)
    assert result.returncode == 0, result.stderr
    assert fifo.is_fifo() and json.loads(received)["schema"] == "gelu-audit.accuracy"


@pytest.mark.skipif(not Path("/dev/stdout").exists(), reason="no /dev/stdout here")
@pytest.mark.parametrize("spelling", ["/dev/stdout", "a link to //dev/stdout"])
def test_o_dev_stdout_is_standard_output(spelling: str, tmp_path: Path) -> None:
    """Descriptor 1 is stderr while the audit runs: each spelling must still reach stdout."""
    output = spelling
    if spelling.startswith("a link"):
        output = str(tmp_path / "out")
        Path(output).symlink_to("//dev/stdout")
    result = run_cli(*AUDIT, "-o", output)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "gelu-audit.accuracy"


def test_two_views_into_one_file_are_refused_before_the_audit(tmp_path: Path) -> None:
    same = tmp_path / "same.json"
    assert_usage_error(
        run_cli(*AUDIT, "-o", str(same), "--also", f"markdown={same}"), "already written by -o"
    )
    other = tmp_path / "d.json"
    result = run_cli(*AUDIT, "--also", f"json={other}", "--also", f"markdown={tmp_path}/./d.json")
    assert_usage_error(result, "already written by --also")
    assert not same.exists() and not other.exists()


def test_a_plot_into_a_missing_folder_is_refused_before_the_audit(tmp_path: Path) -> None:
    result = run_cli(*AUDIT, "-o", str(tmp_path / "r.json"), "--plot", str(tmp_path / "missing" / "p.png"))
    assert_usage_error(result, "is not a folder")
    assert not (tmp_path / "missing").exists() and not (tmp_path / "r.json").exists()


def test_a_run_with_nothing_to_plot_keeps_its_report_and_verdict(
    kernels: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    args = (*FP16, "-i", "hostile:exits", "-f", "json", "-o", str(report), "--plot", str(tmp_path / "p.png"))
    result = run_cli(*args, env=kernels)
    assert result.returncode == 1, result.stderr  # the kernel's error, as without --plot
    assert "gelu-audit: no plot: nothing to plot" in result.stderr
    assert json.loads(report.read_text(encoding="utf-8"))["results"][0]["error"] == "raised SystemExit: 0"


def test_a_gate_over_no_case_fails(kernels: dict[str, str], tmp_path: Path) -> None:
    """Every case skipped (the kernel has no fp16): the gate checked nothing, exit 1."""
    views = {view: tmp_path / f"report.{view}" for view in ("markdown", "junit", "github", "json")}
    also = [f"--also={view}={path}" for view, path in views.items()]
    args = (*FP16, "-i", "hostile:prints", "--impl-dtypes", "bf16", "--max-ulp", "4", *also)
    result = run_cli(*args, env=kernels)
    assert result.returncode == 1, result.stdout + result.stderr
    nothing = "no case ran, so the gate checked nothing"
    assert f"FAIL: {nothing}" in result.stdout and f"gelu-audit: FAIL: {nothing}" in result.stderr
    assert f"## gelu-audit accuracy: ❌ {nothing}" in views["markdown"].read_text(encoding="utf-8")
    assert f'<failure message="{nothing}"' in views["junit"].read_text(encoding="utf-8")
    assert f"::error title=gelu-audit accuracy::{nothing}" in views["github"].read_text(encoding="utf-8")
    assert json.loads(views["json"].read_text(encoding="utf-8"))["summary"]["all_passed"] is False
    ungated = run_cli(*FP16, "-i", "hostile:prints", "--impl-dtypes", "bf16", env=kernels)
    assert ungated.returncode == 0, ungated.stderr  # nothing asked of it: a report of skips


@pytest.mark.parametrize(
    "args, message",
    [
        (("-d", "fp16", "--range", "1e6:1e7"), "--range 1e+06:1e+07 holds no fp16 value"),
        (("-d", "fp32", "--samples", "10", "--range", "1e300:1e308"), "holds no fp32 value"),
        (("-d", "fp32", "--samples", "100", "--seed", "-1"), "'--seed': -1 is not in the range x>=0"),
        (("-d", "fp32", "--samples", "99999999999999999999"), "is more than 4,294,967,296"),
    ],
)
def test_values_that_would_audit_nothing_or_crash_are_one_line(args: tuple[str, ...], message: str) -> None:
    assert_usage_error(run_cli("accuracy", *args, "-i", "torch-gelu", "--no-progress"), message)


@pytest.mark.parametrize(
    "toml, message",
    [
        ("tool = 5", "`tool` must be a table"),
        ("[tool.gelu-audit]\nseed = 1979-05-27", "seed: a date or time (1979-05-27) is not a value it takes"),
        ("[tool.gelu-audit]\nsamples = 1.7", "samples: a float (1.7) is not a value it takes"),
        ("[tool.gelu-audit]\nsamples = true", "samples: a boolean (True) is not a value it takes"),
        ("[tool.gelu-audit]\ncache-dir = 7", "cache-dir: an integer (7) is not a value it takes"),
    ],
)
def test_configuration_values_of_the_wrong_kind_are_one_line(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml + "\n", encoding="utf-8")
    assert_usage_error(run_cli(*FP16, "-i", "numpy-erf", cwd=tmp_path), message)


@pytest.mark.parametrize("views", [(), ("-o", "report.json", "--also", "table=-")])
def test_a_closed_stdout_is_one_line_before_anything_runs(
    kernels: dict[str, str], tmp_path: Path, views: tuple[str, ...]
) -> None:
    """Started with descriptor 1 closed (`>&-` in a shell), Python has no sys.stdout. The run is
    refused before it loads a kernel (before, the whole audit ran first, for nothing)."""
    marker = tmp_path / "imported"
    (tmp_path / "marks.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom torch.nn.functional import gelu\n", encoding="utf-8"
    )
    result = subprocess.run(
        [
            "sh",
            "-c",
            f'exec "{sys.executable}" -m gelu_audit "$@" >&-',
            "sh",
            *AUDIT,
            "-i",
            "marks:gelu",
            *views,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **kernels},
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.strip().splitlines() == [
        "gelu-audit: error: cannot write the document to standard output: it is closed (give -o FILE)"
    ]


def test_a_threshold_that_selects_no_case_is_a_warning(tmp_path: Path) -> None:
    """A typo in a selector would drop its limit silently: the run says so on stderr."""
    config = '[[tool.gelu-audit.threshold]]\nimplementation = "numpy-erff"\nmax-ulp = 1\n'
    config += '\n[[tool.gelu-audit.threshold]]\ndtype = "fp16"\nmax-ulp = 100\n'
    config += '\n[[tool.gelu-audit.threshold]]\nimplementation = "\\u001b]0;title\\u0007x"\nmax-ulp = 1\n'
    (tmp_path / "pyproject.toml").write_text(config, encoding="utf-8")
    result = run_cli(*FP16, "-i", "numpy-erf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "gelu-audit: warning: threshold [implementation=numpy-erff] matched no case of this run",
        # the file's control characters shown, not sent to the terminal (it set the window title)
        "gelu-audit: warning: threshold [implementation=\\x1b]0;title\\x07x] matched no case of this run",
    ]


def test_a_speed_baseline_that_shares_no_case_with_the_run_fails(tmp_path: Path) -> None:
    quick = ("speed", "-d", "fp32", "-i", "numpy-erf", "--samples", "3", "--max-time", "0.2", "--no-progress")
    base = tmp_path / "base.json"
    assert run_cli(*quick, "--sizes", "1K", "-f", "json", "-o", str(base)).returncode == 0
    result = run_cli(*quick, "--sizes", "2K", "--baseline", str(base))
    assert result.returncode == 1, result.stderr
    assert "FAIL: no case of this run was compared with the baseline" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("accuracy", "-d", ""),
        ("accuracy", "-d", "fp16", "-d", " , "),
        ("accuracy", "-i", ""),
        ("accuracy", "--range", ""),
        ("accuracy", "-o", ""),
        ("speed", "--baseline", ""),
        ("paths", "--path", ","),
    ],
)
def test_an_empty_value_is_refused_not_read_as_the_default(args: tuple[str, ...]) -> None:
    """``-d "$DTYPES"`` or ``--baseline "$BASE"`` with the variable unset: before, the first
    audited every dtype and the second ran with no baseline, so no gate (exit 0)."""
    assert_usage_error(run_cli(*args), "an empty value; leave the option out for its default")


def test_an_empty_value_clears_what_the_configuration_file_or_the_environment_sets(tmp_path: Path) -> None:
    """The one way for a run to drop a configured value (``--range ''``): the built-in default."""
    (tmp_path / "pyproject.toml").write_text('[tool.gelu-audit]\nrange = "-1:1"\n', encoding="utf-8")
    configured = json.loads(run_cli(*AUDIT[:6], "-f", "json", cwd=tmp_path).stdout)
    cleared = json.loads(run_cli(*AUDIT[:6], "-f", "json", "--range", "", cwd=tmp_path).stdout)
    assert configured["settings"]["range"] == [-1.0, 1.0] and cleared["settings"]["range"] is None
    # beside other values the empty one drops only the file's: `-i numpy-erf -i ''` is numpy-erf
    (tmp_path / "pyproject.toml").write_text('[tool.gelu-audit]\nimpl = "torch-gelu"\n', encoding="utf-8")
    both = json.loads(run_cli(*AUDIT[:6], "-i", "", "-f", "json", "--range", "-1:1", cwd=tmp_path).stdout)
    assert {case["implementation"] for case in both["results"]} == {"numpy-erf"}


@pytest.mark.parametrize("value", [",", " "])
def test_an_environment_variable_that_names_nothing_is_refused(value: str) -> None:
    """Before, ``GELU_AUDIT_ACCURACY_DTYPE=,`` audited every dtype (click ignores only ``=``)."""
    result = run_cli("accuracy", "-i", "numpy-erf", env={"GELU_AUDIT_ACCURACY_DTYPE": value})
    assert_usage_error(result, f"GELU_AUDIT_ACCURACY_DTYPE={value!r} is an empty value; unset it")


@pytest.mark.parametrize(
    ("table", "line"),
    [("tool.gelu-audit", "dtype = []"), ("tool.gelu-audit.speed", 'baseline = ""')],
)
def test_an_empty_value_in_the_configuration_file_is_refused(tmp_path: Path, table: str, line: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[{table}]\n{line}\n", encoding="utf-8")
    command = "speed" if "speed" in table else "accuracy"
    result = run_cli(command, cwd=tmp_path)
    assert_usage_error(result, f"[{table}]: {line.split(' =')[0]} = ")
    assert "an empty value; leave it out for its default" in result.stderr
