"""The compiled passes' other builds: the AVX2 and baseline code of ``_fold.c`` and ``_ziv.c``.

The installed libraries are compiled for several instruction sets (``target_clones``: AVX-512,
AVX2, baseline), and the loader runs the best the CPU has, so on an AVX-512 machine the suite
exercises only that build. Here each source is compiled again without the clones, for AVX2 and
for the baseline, and the same comparisons run with those libraries: the fold's statistics, the
residuals and the tiny span's float64 errors against the installed build's, and Ziv's test
against NumPy's passes. Skipped without a C compiler, and for AVX2 on a CPU without it.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from gelu_audit.audits import fused
from gelu_audit.audits.policies import BUILTIN_POLICIES
from gelu_audit.audits.stats import accumulate, reference_blocks
from gelu_audit.implementations.registry import registry
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FP16, FP32
from gelu_audit.numerics.formulas import ERF
from gelu_audit.references import fast_tier
from gelu_audit.references.fast_tier import fast_references, one_rounding

SOURCES = Path(fast_tier.__file__).resolve().parents[1]
CLONES = '__attribute__((target_clones("avx512f", "avx2", "default")))'


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc"):
        if name and shutil.which(name.split()[0]):
            return name.split()[0]
    return None


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _build(source: Path, flags: list[str], folder: Path) -> ctypes.CDLL:
    """``source`` compiled without its clones, with ``flags`` and the install's own options."""
    compiler = _compiler()
    assert compiler is not None
    plain = folder / source.name
    plain.write_text(source.read_text().replace(CLONES, ""))
    library = folder / f"{source.stem}{''.join(flags)}.so"
    command = [compiler, "-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", *flags]
    subprocess.run([*command, "-o", str(library), str(plain)], check=True, capture_output=True)
    return ctypes.CDLL(str(library))


BUILDS = [
    pytest.param(["-mavx2"], id="avx2"),
    pytest.param([], id="baseline"),
]


@pytest.fixture(params=BUILDS)
def flags(request: pytest.FixtureRequest) -> list[str]:
    if _compiler() is None or fused.library() is None or fast_tier._ziv_library() is None:
        pytest.skip("no C compiler here, or the installed libraries are not built")
    if request.param and (platform.machine() not in ("x86_64", "AMD64") or not _has_avx2()):
        pytest.skip("AVX2 is an x86-64 instruction set this CPU does not have")
    return request.param


def _states(patterns: np.ndarray) -> list[str]:
    """The accumulator states of three kernels' answers on these patterns' blocks (shared, two
    tolerances), folded with whichever library ``fused.library`` returns."""
    x = patterns.view(np.float32).astype(np.float64)
    ref, _ = fast_references(ERF, FP32, x)
    states = []
    for name in ("torch-gelu", "torch-gelu-aten", "numpy-erf"):
        got = run_implementation(registry()[name], FP32, "cpu", patterns)
        for tolerance, top in ((2.0, 5), (0.3, 1)):
            blocks = reference_blocks(FP32, x, patterns.astype(np.int64), ref, top, True)
            state = accumulate(blocks, got, "exact", tolerance, top, BUILTIN_POLICIES).to_state()
            states.append(json.dumps(state, sort_keys=True, default=lambda v: np.asarray(v).tolist()))
    return states


def test_the_fold_s_other_builds_give_the_installed_build_s_statistics(
    flags: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of the core of both signs, below x = -2 and from 40 up (every residual 0): the
    statistics of the fold, the residuals and the tiny span's float64 errors with the build
    for ``flags`` must be the installed build's, character for character."""
    starts = (0x3F800000, 0xBF900000, 0xC0200000, 0x42200000)
    patterns = np.concatenate([np.arange(s, s + (1 << 15), dtype=np.uint64) for s in starts]).astype(
        np.uint32
    )
    tiny = np.ldexp(np.linspace(1, 2, 5000, endpoint=False), -50)
    rules = [rule for policy in BUILTIN_POLICIES if (rule := policy.rule("fp32", "erf")) is not None]
    installed = _states(patterns), fused.tiny_float64_errors(FP32, ERF, tiny, rules)
    other = fused.declared(_build(SOURCES / "audits" / "_fold.c", flags, tmp_path))
    monkeypatch.setattr(fused, "library", lambda: other)
    assert _states(patterns) == installed[0]
    assert fused.tiny_float64_errors(FP32, ERF, tiny, rules) == installed[1]


def test_ziv_s_other_builds_give_numpy_s_bits(
    flags: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ziv's test with the build for ``flags`` against NumPy's passes, at every point: random
    doubles of every binade (0, subnormals, inf and NaN among them), radii of every size, fp32
    and fp16 (whose binade bottoms fall below float64's normal range)."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2**64, 30000, dtype=np.uint64).view(np.float64)
    y[:6] = (0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324)
    other = fast_tier.ziv_declared(_build(SOURCES / "references" / "_ziv.c", flags, tmp_path))
    for fmt in (FP32, FP16):
        for relative in (0.0, 2.0**-40, 2.0**-24, 0.5, np.inf):
            with np.errstate(invalid="ignore", over="ignore"):
                r = np.abs(y) * relative
            with monkeypatch.context() as patch:
                patch.setattr(fast_tier, "_ziv_library", lambda: None)
                numpy = one_rounding(fmt, y, r)
            with monkeypatch.context() as patch:
                patch.setattr(fast_tier, "_ziv_library", lambda: other)
                compiled = one_rounding(fmt, y, r)
            assert np.array_equal(compiled[0], numpy[0]) and np.array_equal(compiled[1], numpy[1])
            for mine, theirs in zip(compiled[2:], numpy[2:]):
                assert np.array_equal(mine.view(np.int64), theirs.view(np.int64)), (fmt, relative)
