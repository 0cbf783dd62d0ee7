"""The command line, end to end: documents, exit codes, and every error path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import assert_usage_error, run_cli


def test_help_and_version_do_not_import_torch_or_mpmath() -> None:
    code = (
        "import sys; from gelu_audit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'mpmath') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().endswith("[]")
    version = run_cli("--version")
    assert version.returncode == 0 and "gelu-audit" in version.stdout


def test_accuracy_table_fp16() -> None:
    result = run_cli("accuracy", "--dtype", "half", "--impl", "torch-gelu,numpy-erf")
    assert result.returncode == 0, result.stderr
    assert "fp16: exhaustive, 65,536 bit patterns" in result.stdout
    assert "torch-gelu" in result.stdout and "numpy-erf" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when stdout is not a terminal


def test_accuracy_json_document() -> None:
    result = run_cli("accuracy", "-d", "bf16", "-i", "torch-gelu", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # exactly one document on stdout
    assert doc["schema"] == "gelu-audit.accuracy" and doc["schema_version"] == 3
    assert doc["environment"]["libraries"]["torch"] and doc["environment"]["libraries"]["mpmath"]
    assert doc["inputs"]["bf16"]["method"] == "exhaustive"
    case = doc["results"][0]
    worst = case["exact"]["worst"][0]
    assert worst["x_hex"].startswith("0x") and len(worst["x_hex"]) == 6
    assert isinstance(case["exact"]["max_ulp"], float)
    assert case["own_formula"] == "exact"  # erf: the same statistics, written once
    assert doc["summary"]["cases"] == 1


def test_sampled_fp32_says_how_inputs_were_chosen() -> None:
    result = run_cli(
        "accuracy", "-d", "fp32", "-i", "numpy-tanh", "--samples", "500", "--seed", "4", "-f", "json"
    )
    doc = json.loads(result.stdout)
    assert doc["results"][0]["own_formula"]["against"] == "tanh"  # its own statistics
    assert doc["inputs"]["fp32"]["method"] == "stratified"
    assert doc["inputs"]["fp32"]["seed"] == 4 and doc["inputs"]["fp32"]["requested_samples"] == 500


def test_gate_fails_with_exit_1_and_passes_with_exit_0(tmp_path) -> None:
    failing = run_cli("accuracy", "-d", "fp16", "-i", "torch-gelu-tanh", "--max-ulp", "4")
    assert failing.returncode == 1 and "FAIL" in failing.stdout
    passing = run_cli(
        "accuracy",
        "-d",
        "fp16",
        "-i",
        "torch-gelu-tanh",
        "--max-ulp",
        "4",
        "--against",
        "formula",
        "--range",
        "-60000:60000",
        "-o",
        str(tmp_path / "r.txt"),
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert passing.stdout == "" and "all pass" in (tmp_path / "r.txt").read_text()


def test_nonfinite_mismatch_always_fails_a_gate() -> None:
    """F.gelu(-inf) is NaN (the limit is -0): no ULP threshold lets that pass."""
    result = run_cli("accuracy", "-d", "fp16", "-i", "numpy-erf", "--max-ulp", "1000")
    assert result.returncode == 1 and "non-finite" in result.stdout


def test_list_explains_unavailable_rows() -> None:
    result = run_cli("list")
    assert result.returncode == 0
    assert "torch-gelu" in result.stdout and "numpy-tanh" in result.stdout
    doc = json.loads(run_cli("list", "-f", "json").stdout)
    unavailable = [r for r in doc["implementations"] if not r["available"]]
    assert all(r["reason"] for r in unavailable)


@pytest.mark.parametrize(
    "args, message",
    [
        (["accuracy", "--dtype", "fp8"], "unknown dtype 'fp8'"),
        (["accuracy", "--impl", "nope"], "unknown implementation 'nope'"),
        (["accuracy", "--range", "5:1"], "malformed range '5:1'"),
        (["accuracy", "--range", "abc"], "malformed range"),
        (["accuracy", "--samples", "0", "-d", "fp32"], "--samples must be a positive"),
        (["accuracy", "--max-ulp", "-1"], "--max-ulp must be a non-negative"),
        (["accuracy", "--max-ulp", "nan"], "--max-ulp must be a non-negative"),
        (["accuracy", "--jobs", "0"], "--jobs must be at least 1"),
        (["accuracy", "--format", "xml"], "'xml' is not one of"),
        (["accuracy", "--device", "tpu"], "unknown device 'tpu'"),
        (["accuracy", "--bogus"], "No such option '--bogus'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["accuracy", "-o", "/nonexistent-dir/x.json", "-d", "fp16", "-i", "numpy-erf"], "cannot write"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    assert_usage_error(run_cli(*args), message)


def test_cuda_without_cuda_exits_2() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_cli("accuracy", "--device", "cuda", "-d", "fp16")
    assert result.returncode == 2
    why = (
        "torch.cuda.is_available() is False"
        if torch.version.cuda or torch.version.hip
        else f"this PyTorch, {torch.__version__}, is built without CUDA"
    )
    assert result.stderr.strip() == f"gelu-audit: error: --device cuda:0: no CUDA device here ({why})"
