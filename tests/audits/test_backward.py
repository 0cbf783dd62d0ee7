"""``--pass backward``: gradient kernels audited like forward ones, exhaustively in fp16/bf16.

Expectations never come from a CPU-dependent kernel: the kernel that must be correctly rounded
is F.gelu's gradient computed in float64 and rounded once (a declared plugin backward), and the
tanh composite's NaN gradients come from fp16 arithmetic (x³ overflows), not from an ISA.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli

PLUGIN = "gelu_audit_sample_plugin"


def _audit(*args: str, expect: int = 0) -> dict:
    result = run_cli("accuracy", "--no-progress", "-f", "json", *args)
    assert result.returncode == expect, result.stdout[-2000:] + result.stderr
    return json.loads(result.stdout)


def _case(document: dict, name: str, dtype: str, pass_: str) -> dict:
    found = [
        c for c in document["results"] if (c["implementation"], c["dtype"], c["pass"]) == (name, dtype, pass_)
    ]
    assert len(found) == 1, [(c["implementation"], c["dtype"], c["pass"]) for c in document["results"]]
    return found[0]


def test_a_declared_float64_backward_is_correctly_rounded(sample_plugin: Path) -> None:
    """Through the decorator's backward(grad_output, x): exhaustive fp16 and bf16 against the
    derivative's references, which it must match but for last-bit ties (≤ 0.5 ULP)."""
    name = f"{PLUGIN}:gelu_with_float64_backward"
    document = _audit("-d", "fp16,bf16", "--pass", "backward", "-i", name)
    for dtype in ("fp16", "bf16"):
        case = _case(document, name, dtype, "backward")
        assert case["status"] == "ok" and case["formula"] == "erf"
        assert case["points"] == 65536
        # ±inf inputs: ATen's double kernel gives NaN for x·φ(x) at ±inf, the only misses.
        assert case["exact"]["max_ulp"] <= 0.5 + 1e-9, case["exact"]["worst"][:1]
        assert case["nonfinite_count"] == 2
        specials = {s["name"]: s for s in case["specials"]}
        assert specials["+0"]["expected"] == 0.5 and specials["+0"]["got"] == 0.5
        assert specials["+inf"]["expected"] == 1.0


def test_both_passes_are_separate_cases_and_the_tanh_composite_gradient_overflows(
    sample_plugin: Path,
) -> None:
    """fp16: x³ overflows for |x| ≥ 40.3, so the composite's forward stays finite (tanh(inf) = 1)
    but its gradient is NaN there; NumPy has no backward and is skipped for that pass only."""
    document = _audit(
        "-d", "fp16", "--pass", "both", "-i", "torch-tanh-pow", "-i", "numpy-erf", "-i", f"{PLUGIN}:good_gelu"
    )
    assert document["schema_version"] == 2 and document["settings"]["passes"] == ["forward", "backward"]
    forward, backward = (_case(document, "torch-tanh-pow", "fp16", p) for p in ("forward", "backward"))
    assert forward["nonfinite_count"] <= 2  # at most ±inf
    assert backward["nonfinite_count"] > 10000
    assert backward["formula"] == forward["formula"] == "tanh"
    assert _case(document, "numpy-erf", "fp16", "forward")["status"] == "ok"
    skipped = [s for s in document["skipped"] if s["implementation"] == "numpy-erf" and s["device"] == "cpu"]
    assert [s["pass"] for s in skipped] == ["backward"] and "no backward" in skipped[0]["reason"]
    autograd = _case(document, f"{PLUGIN}:good_gelu", "fp16", "backward")  # through torch autograd
    assert autograd["status"] == "ok" and autograd["exact"]["max_ulp"] < 65536


@pytest.mark.slow
def test_an_isolated_plugin_backward_that_segfaults_is_its_case_error(sample_plugin: Path) -> None:
    name = f"{PLUGIN}:gelu_whose_backward_segfaults"
    document = _audit("-d", "fp16", "--pass", "both", "--isolate", "-i", name, expect=1)
    assert _case(document, name, "fp16", "forward")["status"] == "ok"
    assert "killed by SIGSEGV" in _case(document, name, "fp16", "backward")["error"]


def test_exhaustive_fp32_backward_is_refused_in_one_line() -> None:
    result = run_cli("accuracy", "-d", "fp32", "--exhaustive", "--pass", "backward", "-i", "torch-gelu")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "fast tier is not built yet" in result.stderr


def test_text_report_names_the_backward_pass() -> None:
    result = run_cli("accuracy", "-d", "bf16", "--pass", "backward", "-i", "torch-gelu", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "backward: GELU′(x)" in result.stdout and "GELU′(+inf)" in result.stdout
