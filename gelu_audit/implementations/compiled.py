"""``torch.compile`` (Inductor) builds of GELU: a different numerical object from eager F.gelu.

Inductor does not call ATen's or oneDNN's GELU kernel: it generates its own loop (C++ with
its vectorized erf/tanh on the CPU, Triton on CUDA), and for fp16/bf16 it computes in float32
and rounds once at the end. So the compiled and eager results differ, and users who compile
their model are running the compiled one.

Each build compiles once per device and dtype (with dynamic shapes, so every input size
reuses it); :func:`prepare` does that before an audit, so a compiler that is missing or
fails turns the row into a skip with the reason rather than an error of the kernel.
"""

from __future__ import annotations

import os
import shutil
import sys
import types
from collections.abc import Callable
from typing import Any

from gelu_audit.implementations.kept_facts import KeptFacts, file_stamp, fingerprint, kept_facts
from gelu_audit.implementations.model import Implementation, ImplementationUnavailable, first_line
from gelu_audit.numerics.formats import FloatFormat
from gelu_audit.numerics.formulas import ERF, TANH

_COMPILED: dict[tuple[str, str, str], Any] = {}


def _eager_gelu(approximate: str) -> Callable[[Any], Any]:
    def gelu(x: Any) -> Any:
        import torch.nn.functional as F

        return F.gelu(x, approximate=approximate)

    return gelu


def compiled_gelu(approximate: str, device: str, dtype: str) -> Any:  # dtype: e.g. "torch.float16"
    """``torch.compile(F.gelu(x, approximate=...), dynamic=True)`` for one device and dtype,
    built once per process.

    Each build gets its own code object: Dynamo keeps its compiled graphs per code object and
    beyond ``recompile_limit`` of them silently runs the function eagerly, which would audit
    eager F.gelu under the compiled name. One code object per device and dtype stays far
    below that limit whatever the number of devices."""
    key = (approximate, device, dtype)
    if key not in _COMPILED:
        import torch

        eager = _eager_gelu(approximate)
        name = f"gelu_{approximate}_{dtype.removeprefix('torch.')}_{device.replace(':', '_')}"
        code = eager.__code__.replace(co_name=name)
        function = types.FunctionType(code, eager.__globals__, code.co_name, None, eager.__closure__)
        _COMPILED[key] = torch.compile(function, dynamic=True)
    return _COMPILED[key]


def compile_requirement(device: str, fmt: FloatFormat) -> str | None:
    """Why torch.compile cannot build for ``device`` here (cheap checks only), or None.

    Importing Dynamo and Inductor costs about 1.3 s, more than ``gelu-audit list`` may take
    in all, so when they are not loaded yet the CPU check looks for Inductor's default C++
    compiler on the PATH (``$CXX``, else g++, clang++ on macOS), as Inductor itself does.
    When they are loaded (a user changed ``torch._inductor.config``, or a build ran), their own
    checks answer. Whatever a cheap check misses, ``prepare`` finds: a failed build is a
    SETUP_FAILED skip with the compiler's message.
    """
    if "torch._dynamo" in sys.modules:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return "torch.compile is not supported on this Python/platform"
    if device == "cpu":
        return _cpp_compiler_missing()
    from torch.utils._triton import has_triton

    if not has_triton():
        return "torch.compile on CUDA needs Triton (pip install triton)"
    return None


def _cpp_compiler_missing() -> str | None:
    if "torch._inductor.config" in sys.modules:
        from torch._inductor.cpp_builder import get_cpp_compiler

        try:
            get_cpp_compiler()
        except Exception as error:  # noqa: BLE001 - any failure means no usable compiler
            return f"torch.compile on the CPU needs a C++ compiler (Inductor found none: {first_line(error)})"
        return None
    compiler = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")
    if shutil.which(compiler) is None:
        return f"torch.compile on the CPU needs a C++ compiler (no {compiler!r} on the PATH; set CXX)"
    return None


INDUCTOR_LOADS = "inductor: ISA probe libraries that loaded"
"""The kept fact that lets a process skip Inductor's ISA probe loads (see :func:`remember_probe_loads`)."""
_PROBE_LOADER_ENVIRONMENT = ("LD_LIBRARY_PATH", "LD_PRELOAD")
"""What changes whether a library loads, besides the CPU and torch (in every fingerprint)."""


def remember_probe_loads(facts: KeptFacts) -> bool:
    """Let Inductor's CPU ISA probe skip the loads an earlier run saw succeed: True if installed.

    In every process, Inductor's first CPU build checks each vector ISA the CPU advertises (AMX,
    AVX512-VNNI, AVX512, AVX2 on the Xeon) and some extensions (AVX512-BF16, AMX-FP16): it
    builds a test library for each, once, into its cache, and then loads every one in a child
    Python of its own, in every process: 10 children here, 1–2 s before the first
    ``torch.compile`` row can run. Whether a given library loads depends on that library (its
    path is a hash of its code and flags; its size and time say it was not rebuilt), the CPU,
    torch and the loader's environment, all of which the fingerprint holds. So each library seen
    to load is kept, and the probe's load step (``VecISA._probe_load``) answers from that for a
    kept library, and asks a child as before for any other, keeping what it finds. The probe's
    builds and decisions, Inductor's configuration, and so its cache keys, are untouched. A
    failed load is never kept: it is asked again. Installed once per process; where Inductor's
    probe has changed shape, nothing is installed and it runs as it is."""
    try:
        from torch._inductor import cpu_vec_isa

        original = cpu_vec_isa.VecISA._probe_load
    except (ImportError, AttributeError):
        return False
    if getattr(original, "remembers_loads", False):
        return True
    key = fingerprint(*(f"{name}={os.environ.get(name, '')}" for name in _PROBE_LOADER_ENVIRONMENT))
    kept = facts.get(INDUCTOR_LOADS, key)
    loaded = set(kept) if isinstance(kept, list) else set()

    def probe_load(self: Any, output_path: str) -> bool:
        stamp = file_stamp(output_path)
        if stamp is not None and stamp in loaded:
            return True
        if not original(self, output_path):
            return False
        if stamp is not None:
            loaded.add(stamp)
            facts.put(INDUCTOR_LOADS, key, sorted(loaded))
        return True

    setattr(probe_load, "remembers_loads", True)  # noqa: B010 - read back by getattr above
    setattr(cpu_vec_isa.VecISA, "_probe_load", probe_load)  # noqa: B010 - mypy refuses a method assignment
    return True


def _prepare(approximate: str) -> Callable[[str, FloatFormat], None]:
    def prepare(device: str, fmt: FloatFormat) -> None:
        import torch

        x = torch.linspace(-4.0, 4.0, 37, dtype=getattr(torch, fmt.torch_dtype))
        if device == "cpu":
            remember_probe_loads(kept_facts())
        try:
            compiled_gelu(approximate, device, str(x.dtype))(x.to(device))
        except Exception as error:  # compiler failures become the skip reason
            raise ImplementationUnavailable(f"torch.compile failed: {first_line(error)}") from error

    return prepare


def inductor_untouched() -> bool:
    """True while this process has not loaded Inductor's configuration: then the accuracy
    audit's helper process builds exactly what this one would. Once it is loaded, a user may
    have changed it, so the build stays here, where their settings are; its imports are paid
    already."""
    return "torch._inductor.config" not in sys.modules


def _run(approximate: str) -> Callable[[Any], Any]:
    def run(x: Any) -> Any:
        return compiled_gelu(approximate, str(x.device), str(x.dtype))(x)

    return run


_COMPILE_NOTE = (
    "compiled with torch.compile (Inductor, dynamic shapes) once per dtype and device before the audit"
)


def compiled_implementations() -> list[Implementation]:
    """The compiled rows, in report order."""
    return [
        Implementation(
            "torch-compile-gelu",
            "torch",
            ERF,
            _run("none"),
            "torch.compile(F.gelu)(x): Inductor's generated kernel (C++ on CPU, Triton on CUDA)",
            notes=(_COMPILE_NOTE,),
            requires=compile_requirement,
            prepare=_prepare("none"),
            helper_may_build=inductor_untouched,
        ),
        Implementation(
            "torch-compile-gelu-tanh",
            "torch",
            TANH,
            _run("tanh"),
            'torch.compile(F.gelu, approximate="tanh")(x): Inductor\'s generated kernel',
            notes=(_COMPILE_NOTE,),
            requires=compile_requirement,
            prepare=_prepare("tanh"),
            helper_may_build=inductor_untouched,
        ),
    ]
