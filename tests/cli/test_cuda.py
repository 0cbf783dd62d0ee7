"""The commands on a CUDA device, end to end. All marked `cuda`: they skip without a GPU and are
what `benchmarks/cuda_check.sh` runs first on one (`pytest -m cuda`)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def test_accuracy_on_cuda_exhaustive_fp16() -> None:
    result = run_cli(
        "accuracy",
        "--device",
        "cuda",
        "-d",
        "fp16",
        "-i",
        "torch-gelu,torch-gelu-tanh,torch-quick-gelu",
        "-f",
        "json",
    )
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    cases = document["results"]
    assert [c["device"] for c in cases] == ["cuda:0"] * 3
    assert all(c["status"] == "ok" and c["points"] == 65536 for c in cases)
    assert document["environment"]["torch"]["cuda_available"]


def test_a_plugin_runs_on_cuda_beside_the_built_ins(sample_plugin) -> None:
    """MODULE:FUNCTION on the GPU (a wrong-device answer is tests/implementations/test_runner.py's)."""
    result = run_cli(
        "accuracy",
        "--device",
        "cuda",
        "-d",
        "fp16",
        "-i",
        "torch-gelu",
        "-i",
        "gelu_audit_sample_plugin:good_gelu",
        "-f",
        "json",
    )
    assert result.returncode in (0, 1), result.stderr
    cases = {c["implementation"]: c for c in json.loads(result.stdout)["results"]}
    assert cases["torch-gelu"]["status"] == "ok"
    assert cases["gelu_audit_sample_plugin:good_gelu"]["status"] == "ok"
    assert cases["gelu_audit_sample_plugin:good_gelu"]["exact"]["max_ulp"] <= 1.0


def test_compiled_rows_build_with_triton() -> None:
    result = run_cli(
        "accuracy",
        "--device",
        "cuda",
        "-d",
        "fp16",
        "--range",
        "-8:8",
        "-i",
        "torch-compile-gelu,torch-compile-gelu-tanh",
        "-f",
        "json",
    )
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    assert [c["status"] for c in document["results"]] == ["ok", "ok"], document["skipped"]
    assert document["results"][0]["exact"]["max_ulp"] < 4  # float32 inside, rounded once


def test_paths_on_cuda() -> None:
    result = run_cli("paths", "--device", "cuda", "-d", "fp16", "-i", "torch-gelu", "-f", "json")
    assert result.returncode in (0, 1), result.stderr
    results = json.loads(result.stdout)["results"]
    assert results and all(r["device"] == "cuda:0" and r["status"] in ("agree", "differ") for r in results)


def test_exhaustive_slice_on_cuda() -> None:
    result = run_cli(
        "accuracy",
        "--device",
        "cuda",
        "-d",
        "fp32",
        "--exhaustive",
        "--range",
        "1:1.01",
        "-i",
        "torch-gelu",
        "-j",
        "2",
        "-f",
        "json",
    )
    assert result.returncode in (0, 1), result.stderr
    (case,) = json.loads(result.stdout)["results"]
    assert case["device"] == "cuda:0" and case["status"] == "ok" and case["points"] > 80_000
