"""Your own kernel: the sample plugin package (tests/sample_plugin), installed for these tests,
audited through the import-string and the entry-point routes, broken variants included; the
Python API and the pytest plugin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_usage_error, run_cli

BROKEN = {  # entry-point name, function, what the report says
    "raises": ("sample-raises", "raises", "raised ValueError: this kernel is broken on purpose"),
    "wrong shape": ("sample-wrong-shape", "wrong_shape", "returned shape (36865,), expected (36866,)"),
    "wrong dtype": (
        "sample-wrong-dtype",
        "wrong_dtype",
        "returned dtype torch.float64, expected torch.float16",
    ),
    "hangs": ("sample-hangs", "never_returns", "did not return within 2 s"),
}


def _cases(document: dict) -> dict[str, dict]:
    return {case["implementation"]: case for case in document["results"]}


@pytest.mark.parametrize("route", ["import string", "entry point"])
def test_good_kernels_through_both_routes(sample_plugin: Path, route: str) -> None:
    names = (
        ["gelu_audit_sample_plugin:good_gelu", "gelu_audit_sample_plugin:numpy_tanh_gelu"]
        if route == "import string"
        else ["sample-good", "sample-numpy-tanh"]
    )
    result = run_cli(
        "accuracy",
        "-d",
        "fp16",
        "--range",
        "-8:8",
        "--max-ulp",
        "4",
        "--against",
        "formula",
        "-f",
        "json",
        *(a for n in names for a in ("-i", n)),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    good, tanh = (_cases(json.loads(result.stdout))[n] for n in names)
    assert good["status"] == tanh["status"] == "ok"
    assert good["formula"] == "erf" and good["exact"]["max_ulp"] <= 1.0  # float32 erfc, rounded once
    assert tanh["formula"] == "tanh" and tanh["backend"] == "numpy"  # claimed by @gelu_kernel
    assert tanh["own_formula"]["max_ulp"] <= 1.0 and tanh["exact"]["max_ulp"] > 100


@pytest.mark.parametrize("route", ["import string", "entry point"])
def test_broken_kernels_are_reported_and_the_audit_goes_on(sample_plugin: Path, route: str) -> None:
    names = [
        (entry if route == "entry point" else f"gelu_audit_sample_plugin:{function}")
        for entry, function, _ in BROKEN.values()
    ]
    nan = "sample-nan" if route == "entry point" else "gelu_audit_sample_plugin:nan_output"
    good = "sample-good" if route == "entry point" else "gelu_audit_sample_plugin:good_gelu"
    args = [a for n in [*names, nan, good] for a in ("-i", n)]
    result = run_cli("accuracy", "-d", "fp16", "--range", "-8:8", "--impl-timeout", "2", "-f", "json", *args)
    assert result.returncode == 1, result.stderr  # errors: the audit did not pass
    cases = _cases(json.loads(result.stdout))
    for name, (_, _, message) in zip(names, BROKEN.values()):
        assert cases[name]["status"] == "error" and message in cases[name]["error"], cases[name]["error"]
        assert cases[name]["verdict"]["passed"] is False
    assert cases[nan]["status"] == "ok" and cases[nan]["nonfinite_count"] == cases[nan]["points"]
    assert cases[good]["status"] == "ok" and cases[good]["verdict"]["passed"]


def test_nan_output_fails_a_gate(sample_plugin: Path) -> None:
    result = run_cli("accuracy", "-d", "bf16", "-i", "sample-nan", "--max-ulp", "1000", "-f", "junit")
    assert result.returncode == 1 and "non-finite mismatch" in result.stdout


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module_xyz:gelu", "cannot import 'no_such_module_xyz' (ModuleNotFoundError"),
        ("gelu_audit_sample_plugin:nope", "'gelu_audit_sample_plugin' has no attribute 'nope'"),
        ("gelu_audit_sample_plugin:BROKEN", "is a dict, not a function"),
        ("not a spec:", "expected MODULE:FUNCTION"),
    ],
)
def test_loading_errors_are_one_line(sample_plugin: Path, spec: str, message: str) -> None:
    assert_usage_error(run_cli("accuracy", "-d", "fp16", "-i", spec), message)


def test_a_broken_entry_point_is_listed_with_its_reason_not_fatal(sample_plugin: Path) -> None:
    listing = json.loads(run_cli("list", "-f", "json", "--device", "cpu").stdout)
    rows = {(r["implementation"], r["dtype"]): r for r in listing["implementations"]}
    missing = rows[("sample-missing", "fp16")]
    assert not missing["available"] and "failed to load: AttributeError" in missing["reason"]
    assert rows[("sample-good", "fp32")]["available"] and "plugin" in rows[("sample-good", "fp32")]["notes"]
    assert not rows[("sample-numpy-tanh", "bf16")]["available"]  # it declares fp16 and fp32 only
    result = run_cli(
        "accuracy", "-d", "fp16", "-i", "sample-missing,sample-good", "--range", "-1:1", "-f", "json"
    )
    document = json.loads(result.stdout)
    assert [c["implementation"] for c in document["results"]] == ["sample-good"]
    assert any(
        s["implementation"] == "sample-missing" and "failed to load" in s["reason"]
        for s in document["skipped"]
    )


def test_plugin_options_claim_the_formula(sample_plugin: Path) -> None:
    result = run_cli(
        "accuracy",
        "-d",
        "fp16",
        "--range",
        "-8:8",
        "-f",
        "json",
        "-i",
        "gelu_audit_sample_plugin:good_gelu",
        "--impl-formula",
        "tanh",
        "--impl-dtypes",
        "fp16,fp32",
    )
    case = json.loads(result.stdout)["results"][0]
    assert case["formula"] == "tanh" and case["own_formula"]["against"] == "tanh"
    assert_usage_error(
        run_cli("accuracy", "-i", "gelu_audit_sample_plugin:good_gelu", "--impl-devices", "tpu"),
        "--impl-devices: unknown device kind 'tpu'",
    )


def test_plugins_reach_exhaustive_workers_speed_and_paths(sample_plugin: Path) -> None:
    stream = run_cli(
        "accuracy",
        "-d",
        "fp32",
        "--exhaustive",
        "--range",
        "1:1.001",
        "-j",
        "2",
        "-f",
        "json",
        "-i",
        "gelu_audit_sample_plugin:good_gelu,sample-good",
    )
    assert stream.returncode == 0, stream.stderr
    cases = json.loads(stream.stdout)["results"]
    assert [c["status"] for c in cases] == ["ok", "ok"] and cases[0]["exact"] == cases[1]["exact"]
    speed = run_cli(
        "speed",
        "-i",
        "sample-good",
        "--sizes",
        "1K",
        "--samples",
        "3",
        "--target",
        "0",
        "--warmup",
        "0",
        "-f",
        "json",
    )
    assert speed.returncode == 0 and json.loads(speed.stdout)["cases"][0]["status"] == "ok"
    paths = run_cli("paths", "-d", "fp16", "-i", "sample-good", "--path", "strided", "-f", "json")
    assert json.loads(paths.stdout)["results"][0]["status"] in ("agree", "differ")


# --- the Python API and the pytest plugin -----------------------------------------------------


def test_check_passes_returns_and_fails_readably(sample_plugin: Path) -> None:
    from gelu_audit_sample_plugin import good_gelu, never_returns, raises

    import gelu_audit

    case = gelu_audit.check(good_gelu, "bf16", max_ulp=1, value_range="-8:8")
    assert case.status == "ok" and case.exact.max_ulp <= 1

    def composite(x):
        import torch

        return 0.5 * x * (1 + torch.erf(x / 2**0.5))

    measured = gelu_audit.check(composite, "fp16", value_range="-8:8").exact  # no limit: this CPU's figures
    assert measured.max_ulp > 4  # 1 + erf cancels in fp16 on any CPU
    with pytest.raises(gelu_audit.AccuracyCheckError) as failure:
        gelu_audit.check(composite, "fp16", max_ulp=4, value_range="-8:8")
    message = str(failure.value)
    assert "composite" in message and f"max {measured.max_ulp:.4g} ULP > 4" in message
    assert f"worst input x = {measured.worst[0].x!r}" in message
    with pytest.raises(AssertionError, match="raised ValueError"):
        gelu_audit.check(raises, "fp16")
    with pytest.raises(AssertionError, match=r"did not return within 0\.5 s"):
        gelu_audit.check(never_returns, "fp16", timeout=0.5)
    with pytest.raises(AssertionError, match=r"accurate domain .* does not cover \[-8, 8\]"):
        gelu_audit.check(composite, "fp16", domain=(-8, 8))


def test_pytest_plugin_loads_without_torch_or_mpmath() -> None:
    code = (
        "import sys, gelu_audit.pytest_plugin; "
        "print(sorted(m for m in ('torch', 'mpmath', 'numpy') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    from importlib.metadata import entry_points

    assert [e.value for e in entry_points(group="pytest11") if e.name == "gelu_audit"] == [
        "gelu_audit.pytest_plugin"
    ]


def test_pytest_plugin_fixture_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import torch.nn.functional as F

        def gelu_in_float64(x):  # ATen's fp64 kernel, rounded once: within 4 ULP on any CPU
            return F.gelu(x.double()).to(x.dtype)

        def test_fused(gelu_audit_check):
            gelu_audit_check(gelu_in_float64, dtype="fp16", max_ulp=4, value_range="-8:8")

        def test_halving(gelu_audit_check):
            gelu_audit_check(lambda x: x * 0.5, dtype="fp16", max_ulp=4, value_range="-8:8")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AccuracyCheckError*", "*worst input x =*"])


def test_a_hand_built_implementation_may_name_its_formula() -> None:
    """An Implementation built by hand with the formula's name (as before Formula objects) gets
    the Formula; an unknown name is a usage error, not a crash later."""
    from gelu_audit.errors import UsageError
    from gelu_audit.implementations.model import Implementation
    from gelu_audit.implementations.plugins import PluginOptions, implementation_from
    from gelu_audit.numerics.formulas import TANH

    named = Implementation("mine", "numpy", "tanh", lambda x: x, "by hand")  # type: ignore[arg-type]
    assert implementation_from(named, "mine", PluginOptions(), "test").formula is TANH
    wrong = Implementation("mine", "numpy", "cubic", lambda x: x, "by hand")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="formula must be one of erf, tanh, sigmoid, not 'cubic'"):
        implementation_from(wrong, "mine", PluginOptions(), "test")
