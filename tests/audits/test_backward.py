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
    assert document["schema_version"] == 3 and document["settings"]["passes"] == ["forward", "backward"]
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


def test_exhaustive_fp32_streams_one_pass_at_a_time() -> None:
    result = run_cli("accuracy", "-d", "fp32", "--exhaustive", "--pass", "both", "-i", "torch-gelu")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "one pass of fp32 at a time" in result.stderr


def test_text_report_names_the_backward_pass() -> None:
    result = run_cli("accuracy", "-d", "bf16", "--pass", "backward", "-i", "torch-gelu", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "backward: GELU′(x)" in result.stdout and "GELU′(+inf)" in result.stdout


@pytest.mark.slow
def test_exhaustive_fp32_backward_streams_shards_and_merges(sample_plugin: Path, tmp_path: Path) -> None:
    """The gradient through the same stream as the forward: the float64 kernel is correctly
    rounded on [−4, −3.5] (away from the zero of GELU′, where float64 itself cancels), and two
    shards merged equal one run, chunked and parallelised differently."""
    name = f"{PLUGIN}:gelu_with_float64_backward"
    common = [
        "-d",
        "fp32",
        "--exhaustive",
        "--pass",
        "backward",
        "--range=-4:-3.5",
        "-i",
        name,
        "-i",
        "torch-gelu-tanh",
    ]
    whole = _audit(*common, "-j", "2")
    case = _case(whole, name, "fp32", "backward")
    assert case["points"] == (1 << 21) + 1 and case["exact"]["max_ulp"] <= 0.5 + 1e-6
    assert _case(whole, "torch-gelu-tanh", "fp32", "backward")["own_formula"]["against"] == "tanh"
    for k in (1, 2):
        shard = run_cli("accuracy", "--no-progress", "-f", "json", *common, "-j", "1", "--chunk-size", "64K",
                        "--shard", f"{k}/2", "-o", str(tmp_path / f"s{k}.json"))  # fmt: skip
        written = tmp_path / f"s{k}.json"
        errors = [r["error"] for r in json.loads(written.read_text())["results"]] if written.exists() else []
        assert shard.returncode == 0, (shard.stderr, errors)  # a case's error says what failed
    merged = run_cli("merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "-f", "json")
    assert merged.returncode == 0, merged.stderr
    combined = json.loads(merged.stdout)
    for a, b in zip(whole["results"], combined["results"], strict=True):
        a.pop("seconds"), b.pop("seconds")
        assert a == b and a["pass"] == "backward"


def test_a_threshold_selects_the_pass(tmp_path: Path) -> None:
    """`pass = "backward"` limits gradient cases only; a bad value is one line, exit 2."""
    config = tmp_path / "gelu.toml"
    config.write_text(
        'dtype = ["bf16"]\nimpl = ["torch-gelu-aten"]\npass = "both"\n'
        '[[threshold]]\npass = "backward"\nmax-ulp = 0.25\n'
    )
    document = _audit("--config", str(config), expect=1)
    forward, backward = (_case(document, "torch-gelu-aten", "bf16", p) for p in ("forward", "backward"))
    assert forward["verdict"]["passed"] and not backward["verdict"]["passed"]
    assert backward["verdict"]["reasons"][0].startswith("threshold [pass=backward]: max ")
    assert document["settings"]["thresholds"][0]["pass"] == "backward"
    config.write_text('[[threshold]]\npass = "sideways"\nmax-ulp = 1\n')
    result = run_cli("accuracy", "--config", str(config))
    assert result.returncode == 2 and 'pass must be "forward", "backward" or "*"' in result.stderr


def test_broken_backwards_are_their_cases_errors(sample_plugin: Path) -> None:
    """Declared or through autograd, a gradient that raises, has the wrong dtype or does not
    exist is the backward case's error; the forward cases stand."""
    broken = {
        "gelu_whose_backward_raises": "raised ValueError: this backward is broken on purpose",
        "gelu_whose_backward_has_the_wrong_dtype": "returned dtype torch.float64, expected torch.bfloat16",
        "detached_gelu": "raised RuntimeError: element 0 of tensors does not require grad",
    }
    names = [f"{PLUGIN}:{name}" for name in broken]
    document = _audit("-d", "bf16", "--pass", "both", *(a for n in names for a in ("-i", n)), expect=1)
    for name, message in zip(names, broken.values()):
        assert _case(document, name, "bf16", "forward")["status"] == "ok"
        backward = _case(document, name, "bf16", "backward")
        assert backward["status"] == "error" and backward["error"].startswith(message), backward["error"]


def test_plots_draw_each_pass_apart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "both.json"
    result = run_cli(
        "accuracy", "-d", "bf16", "--pass", "both", "-i", "torch-gelu", "-f", "json", "-o", str(report)
    )
    assert result.returncode == 0, result.stderr
    drawn = run_cli("plot", str(report), "-o", str(tmp_path / "p.png"))
    assert drawn.returncode == 0, drawn.stderr
    assert sorted(p.name for p in tmp_path.glob("p*.png")) == ["p-bf16-backward.png", "p-bf16.png"]
