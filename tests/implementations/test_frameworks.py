"""torch.compile builds, JAX and ONNX Runtime: audited where they can run, and where they
cannot, skipped with the reason (and the pip install that enables them)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.implementations.availability import preparation_failure, unavailable_reason
from gelu_audit.implementations.compiled import compile_requirement, compiled_gelu
from gelu_audit.implementations.model import Implementation, ImplementationUnavailable, SkipKind, SkipReason
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import BF16, FP16, FP32, FP64, values_to_patterns
from gelu_audit.numerics.formulas import ERF, FORMULAS
from gelu_audit.numerics.inputs import parse_range
from gelu_audit.references.mpmath_ziv import reference_point
from tests.helpers import run_cli, session_cache_dir

NO_COMPILER = compile_requirement("cpu", FP16)
needs_compiler = pytest.mark.skipif(
    NO_COMPILER is not None, reason=f"torch.compile unavailable: {NO_COMPILER}"
)
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
needs_ort = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnxruntime/onnx not installed",
)


def ulps_apart(fmt, got: float, formula: str, x: float) -> float:
    """|got − RN(formula(x))| in ULPs of the correctly rounded value's binade."""
    ref = reference_point(FORMULAS[formula], fmt, x)
    return abs(got - ref.rounded) / 2.0 ** (ref.binade - fmt.mantissa_bits)


# --- torch.compile ----------------------------------------------------------------------------


@pytest.mark.compile
@needs_compiler
def test_compiled_gelu_is_one_graph_per_device_and_dtype_whatever_the_size() -> None:
    import torch
    from torch._dynamo.utils import counters

    f64 = compiled_gelu("tanh", "cpu", "torch.float64")
    assert compiled_gelu("tanh", "cpu", "torch.float64") is f64
    assert compiled_gelu("tanh", "cpu", "torch.float32") is not f64
    f64(torch.linspace(-3, 3, 101, dtype=torch.float64))
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    f64(torch.linspace(-3, 3, 517, dtype=torch.float64))  # dynamic shapes: no recompilation
    assert counters["stats"]["unique_graphs"] == graphs


@pytest.mark.compile
@needs_compiler
def test_compiled_rows_in_the_fp16_audit() -> None:
    """Inductor computes fp16 in float32 and rounds once: within a few ULP of the exact GELU;
    the compiled tanh form is as far from the exact GELU as the tanh formula itself."""
    report = run_audit(
        AuditSettings(
            dtypes=("fp16",),
            value_range=parse_range("-8:8"),
            implementations=("torch-compile-gelu", "torch-compile-gelu-tanh"),
            cache_dir=session_cache_dir(),
        )
    )
    erf, tanh = report.results
    assert erf.status == tanh.status == "ok" and not report.skipped
    assert erf.exact.max_ulp < 4
    assert tanh.own_formula.max_ulp < 4 and tanh.exact.max_ulp > 100


def test_a_missing_compiler_is_a_reason() -> None:
    """Inductor's own ``patch``, not pytest's monkeypatch: monkeypatch does not see the config
    key as an attribute of ``inductor_config.cpp`` and deletes it on undo, which left every
    later test in the process without ``cpp.cxx`` and so without the compiled rows."""
    import torch._inductor.config as inductor_config

    before = inductor_config.cpp.cxx
    with inductor_config.patch({"cpp.cxx": ("gelu-audit-no-such-compiler",)}):
        reason = compile_requirement("cpu", FP16)
    assert reason is not None and "needs a C++ compiler" in reason
    assert inductor_config.cpp.cxx == before  # restored for every later test


def test_a_failed_preparation_is_a_skip_reason_found_once() -> None:
    calls = []

    def prepare(device: str, fmt) -> None:
        calls.append((device, fmt.name))
        raise ImplementationUnavailable("no toolchain for this test")

    impl = Implementation("prepare-fails", "numpy", ERF, lambda x: x, "test", prepare=prepare)
    expected = SkipReason(SkipKind.SETUP_FAILED, "no toolchain for this test")
    assert preparation_failure(impl, "cpu", FP16) == expected
    assert preparation_failure(impl, "cpu", FP16) == expected
    assert preparation_failure(impl, "cpu", BF16) == expected
    assert calls == [("cpu", "fp16"), ("cpu", "bf16")]


# --- JAX and ONNX Runtime ---------------------------------------------------------------------

XS = [-1.0, -0.3, 0.7, 2.0, 5.0]
"""Away from the negative tail, where 1 + erf and 1 + tanh cancel (jax-gelu-tanh is 163 fp64
ULP from its formula at −2.5 on the machine of docs/findings.md)."""


@needs_jax
@pytest.mark.parametrize(
    "name, formula, other",
    [
        ("jax-gelu", "erf", "tanh"),
        ("jax-gelu-tanh", "tanh", "erf"),
        ("jax-jit-gelu", "erf", "tanh"),
        ("jax-jit-gelu-tanh", "tanh", "erf"),
    ],
)
def test_jax_rows_compute_the_formula_they_claim(name: str, formula: str, other: str) -> None:
    """fp64: a few ULP from the claimed formula; the other formula is ~1e-4 relative away."""
    got = run_implementation(registry()[name], FP64, "cpu", values_to_patterns(FP64, np.array(XS)))
    assert max(ulps_apart(FP64, y, formula, x) for x, y in zip(XS, got.tolist())) < 16
    assert max(ulps_apart(FP64, y, other, x) for x, y in zip(XS, got.tolist())) > 1e6


@needs_jax
def test_jitted_jax_rows_run_xla_s_fused_kernel_and_compile_once_per_form() -> None:
    """The jitted rows call one ``jax.jit`` object per form (XLA caches its builds per shape),
    and their bits are XLA's fused kernel's: where eager JAX rounds each op to the dtype, the
    fused kernel may not, so over all bf16 inputs the two differ somewhere, at the least in
    their bits or their errors (docs/findings.md §14 has the figures)."""
    import jax

    from gelu_audit.implementations.frameworks import jax_kernel

    assert jax_kernel(False, jit=True) is jax_kernel(False, jit=True)
    assert jax_kernel(False, jit=True) is not jax_kernel(True, jit=True)
    assert jax_kernel(False, jit=True, backward=True) is not jax_kernel(False, jit=True)
    assert isinstance(jax_kernel(False, jit=True), type(jax.jit(abs)))
    patterns = np.arange(1 << 16, dtype=np.uint16)
    eager = run_implementation(registry()["jax-gelu"], BF16, "cpu", patterns)
    jitted = run_implementation(registry()["jax-jit-gelu"], BF16, "cpu", patterns)
    both_nan = np.isnan(eager) & np.isnan(jitted)
    assert np.count_nonzero((eager != jitted) & ~both_nan) > 0


@needs_jax
@pytest.mark.parametrize("name", ["jax-gelu", "jax-jit-gelu-tanh"])
def test_jax_rows_are_timed_on_jax_arrays_with_the_audited_bits(name: str) -> None:
    """``speed`` times the kernel on an array already on JAX's device; the call it times gives
    the audited call's bits."""
    import jax

    from gelu_audit.audits.speed import timed_call

    impl = registry()[name]
    x = np.linspace(-6, 6, 4097, dtype=np.float32)
    answer = impl.function(x)
    call = timed_call(impl, x, answer)
    result = call()
    assert isinstance(result, jax.Array)
    assert np.array_equal(np.asarray(result).view(np.uint32), answer.view(np.uint32))


@needs_ort
@pytest.mark.parametrize(
    "name, formula, fmt", [("onnxruntime-gelu", "erf", FP32), ("onnxruntime-gelu-tanh", "tanh", FP32)]
)
def test_onnxruntime_rows_compute_the_formula_they_claim(name: str, formula: str, fmt) -> None:
    got = run_implementation(registry()[name], fmt, "cpu", values_to_patterns(fmt, np.array(XS)))
    assert max(ulps_apart(fmt, y, formula, x) for x, y in zip(XS, got.tolist())) < 16


@needs_ort
def test_onnxruntime_without_a_kernel_for_a_dtype_is_skipped_with_its_message() -> None:
    reason = unavailable_reason(registry()["onnxruntime-gelu"], "cpu", BF16)
    if reason is None:
        pytest.skip("this onnxruntime has a CPU bf16 Gelu kernel")
    assert reason.kind is SkipKind.REQUIREMENT
    assert reason.message.startswith("onnxruntime ") and "bf16" in reason.message
    report = run_audit(
        AuditSettings(dtypes=("bf16",), implementations=("onnxruntime-gelu",), cache_dir=session_cache_dir())
    )
    assert report.results == [] and [s.reason for s in report.skipped] == [reason.message]


def test_missing_frameworks_are_listed_with_the_pip_install_that_enables_them() -> None:
    code = (
        "import sys; sys.modules['jax'] = None; sys.modules['onnxruntime'] = None; "
        "from gelu_audit.cli import main; main(['list', '-f', 'json', '--device', 'cpu'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["implementations"]
    reasons = {(r["implementation"], r["dtype"]): r["reason"] for r in rows if not r["available"]}
    for dtype in ("fp16", "bf16", "fp32", "fp64"):
        assert reasons[("jax-gelu", dtype)] == "jax is not installed (pip install 'gelu-audit[jax]')"
        assert reasons[("onnxruntime-gelu-tanh", dtype)] == (
            "onnxruntime is not installed (pip install 'gelu-audit[onnxruntime]')"
        )
    assert all(r["reason"] for r in rows if not r["available"])
    # the table keeps the brackets (rich would eat "[jax]" as markup)
    code = code.replace(
        "['list', '-f', 'json', '--device', 'cpu']", "['list', '-d', 'fp16', '--device', 'cpu']"
    )
    wide = {**os.environ, "COLUMNS": "160"}
    table = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=wide)
    assert "pip install 'gelu-audit[jax]'" in table.stdout


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )


@pytest.mark.parametrize("output_format", ["json", "table"])
def test_list_imports_neither_dynamo_nor_jax(output_format: str) -> None:
    """Importing them costs about 2 s: ``list`` answers from cheap checks (issue 16's start-up).
    Its table imports no audit either (0.1 s), nor ``numpy.ma`` (``np.unique`` would, 65 ms)."""
    code = (
        "import sys, io, contextlib\n"
        "from gelu_audit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try: main(['list', '-f', '{output_format}'])\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in ('torch._dynamo', 'torch._inductor', 'jax') if m in sys.modules))\n"
        "print(sorted(m for m in sys.modules if m.startswith('gelu_audit.audits') or m == 'numpy.ma'))"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    heavy, audits = result.stdout.strip().splitlines()
    assert heavy == "[]"
    if output_format == "table":
        assert audits == "[]"


def test_without_inductor_loaded_a_missing_compiler_is_found_on_the_path() -> None:
    code = (
        "from gelu_audit.implementations.compiled import compile_requirement\n"
        "from gelu_audit.numerics.formats import FP16\n"
        "print(compile_requirement('cpu', FP16))"
    )
    missing = _run_python(code, CXX="gelu-audit-no-such-compiler")
    assert missing.returncode == 0, missing.stderr
    assert "needs a C++ compiler" in missing.stdout and "gelu-audit-no-such-compiler" in missing.stdout
    if NO_COMPILER is None:
        assert _run_python(code).stdout.strip() == "None"


def test_a_jax_that_does_not_import_is_a_setup_skip(tmp_path) -> None:
    """``list`` only looks JAX up; the import, and its failure, come before an audit."""
    (tmp_path / "jax").mkdir()
    (tmp_path / "jax" / "__init__.py").write_text("raise ImportError('broken for this test')\n")
    code = (
        "from gelu_audit.implementations.availability import skip_reason, unavailable_reason\n"
        "from gelu_audit.implementations.registry import registry\n"
        "from gelu_audit.numerics.formats import FP16\n"
        "impl = registry()['jax-gelu']\n"
        "print(unavailable_reason(impl, 'cpu', FP16))\n"
        "reason = skip_reason(impl, 'cpu', FP16)\n"
        "print(reason.kind.name, reason.message)"
    )
    result = _run_python(code, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "None",
        "SETUP_FAILED jax does not import: ImportError: broken for this test",
    ]


# --- JAX's compiled executables, kept between runs ---------------------------------------------


@needs_jax
def test_jax_builds_are_kept_in_one_directory_per_installation_and_a_users_own_setting_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gelu_audit.implementations.frameworks import JAX_CACHE_SUBDIRECTORY, keep_jax_builds

    if sys.platform != "linux":
        pytest.skip("kept on Linux only")
    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as in a CLI process, before JAX
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    monkeypatch.setattr(os, "environ", environment)
    directory = keep_jax_builds(tmp_path)
    if directory is None:
        pytest.skip("this machine lists no CPU features, or torch is missing: nothing is kept")
    assert directory.parent == tmp_path / JAX_CACHE_SUBDIRECTORY
    assert environment["JAX_COMPILATION_CACHE_DIR"] == str(directory)
    assert environment["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert keep_jax_builds(tmp_path) is None  # the variable is set now: it is the user's to keep
    monkeypatch.setattr(os, "environ", {**environment, "XLA_FLAGS": "--xla_cpu_enable_fast_math=true"})
    del os.environ["JAX_COMPILATION_CACHE_DIR"]
    other = keep_jax_builds(tmp_path)
    assert other is not None and other != directory  # XLA's flags change the code: another directory
    assert keep_jax_builds(None) is None


@needs_jax
@pytest.mark.slow
def test_a_second_run_loads_the_kept_jax_builds_and_gives_the_same_report(tmp_path: Path) -> None:
    """The first run compiles and keeps every executable; the second compiles nothing new (no
    entry is added) and gives the same report. The tables are the session's, linked."""
    from gelu_audit.environment import cpu_features
    from gelu_audit.implementations.kept_facts import torch_install

    if sys.platform != "linux" or not cpu_features() or torch_install() is None:
        pytest.skip("nothing is kept here: not Linux, no CPU features listed, or no torch")
    cache = tmp_path / "cache"
    cache.mkdir()
    for table in session_cache_dir().glob("reference-fp16-*.npz"):
        (cache / table.name).symlink_to(table)
    args = (
        "accuracy",
        "-d",
        "fp16",
        "-i",
        "jax-gelu,jax-jit-gelu-tanh",
        "-f",
        "json",
        "--cache-dir",
        str(cache),
    )
    environment = {"JAX_COMPILATION_CACHE_DIR": ""}  # whatever the test run has set: not kept here
    documents, entries = [], []
    for _ in range(2):
        result = run_cli(*args, env=environment)
        assert result.returncode == 0, result.stderr[-2000:]
        documents.append(json.loads(result.stdout))
        entries.append(sorted(p.name for p in (cache / "jax-compilation").glob("*/*-cache")))
    assert entries[0], "the first run kept no executable"
    assert entries[1] == entries[0]
    assert [c["status"] for c in documents[1]["results"]] == ["ok", "ok"]
    assert _untimed(documents[0]["results"]) == _untimed(documents[1]["results"])


def _untimed(value: object) -> object:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in ("seconds", "created")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@needs_jax
def test_speed_keeps_the_jax_builds_where_accuracy_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``speed`` compiles the JAX rows in its warm-ups: the executables go to the cache
    directory's jax-compilation folder, the one ``accuracy`` would use."""
    from gelu_audit.implementations.frameworks import keep_jax_builds

    args = ("speed", "-i", "jax-jit-gelu", "--sizes", "1K", "--samples", "3", "--target", "0", "-f", "json")
    result = run_cli(*args, env={"JAX_COMPILATION_CACHE_DIR": "", "GELU_AUDIT_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as in a CLI process, before JAX
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    monkeypatch.setattr(os, "environ", environment)
    directory = keep_jax_builds(tmp_path)  # where accuracy would keep them, from the same settings
    if directory is None:
        pytest.skip("nothing is kept here: not Linux, no CPU features listed, or no torch")
    kept = sorted((tmp_path / "jax-compilation").glob("*/*-cache"))
    assert kept and {p.parent for p in kept} == {directory}
