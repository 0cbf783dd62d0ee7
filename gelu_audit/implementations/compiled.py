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
import platform
import shutil
import sys
import types
from collections.abc import Callable
from typing import Any

from gelu_audit.implementations.kept_facts import KeptFacts, fingerprint, kept_facts
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


INDUCTOR_ISAS = "inductor: every vector ISA the CPU advertises passes its base check"
"""The kept fact that lets a process skip Inductor's CPU ISA probe (see :func:`skip_known_isa_probe`)."""


_PROBE_ENVIRONMENT = ("CXX", "CPATH", "CPLUS_INCLUDE_PATH", "COMPILER_PATH", "LD_LIBRARY_PATH")
"""Environment variables that change what Inductor's probe builds and loads (the other ones that
could, ``TORCHINDUCTOR_*``, are in every fingerprint)."""


def _compiler_identity() -> str | None:
    """What Inductor's probe depends on besides torch, the CPU and the environment: the C++
    compiler Inductor itself finds (``config.cpp.cxx``, else its search) and the assembler, each
    by path, size and modification time. None where Inductor cannot name its compiler (then
    nothing is kept or skipped)."""
    try:
        import torch._inductor.config as inductor_config
        from torch._inductor.cpp_builder import get_cpp_compiler

        tools = [get_cpp_compiler(), shutil.which("as") or "as"]
        configured = repr(inductor_config.cpp.cxx)
    except Exception:  # noqa: BLE001 - no compiler, or Inductor's helpers moved
        return None
    stamps = []
    for tool in tools:
        found = shutil.which(tool) or tool
        try:
            stat = os.stat(found)
            stamps.append(f"{found}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            stamps.append(f"{found}:?")
    environment = [f"{name}={os.environ.get(name, '')}" for name in _PROBE_ENVIRONMENT]
    return "; ".join([configured, *stamps, *environment])


def skip_known_isa_probe(facts: KeptFacts) -> bool:
    """Skip the base check of Inductor's CPU ISA probe where an earlier run found its answer:
    True if skipped.

    In every process, Inductor's first CPU build checks each vector ISA the CPU advertises
    (AMX, AVX512-VNNI, AVX512, AVX2 on the Xeon) by building a test library and loading it in a
    child Python; some ISAs then check an extension the same way (AVX512-BF16, AMX-FP16). That
    costs 1–2 s before the first ``torch.compile`` row can run. Inductor's own switch
    ``cpp.vec_isa_ok = True`` (``TORCHINDUCTOR_VEC_ISA_OK=1``) passes every advertised ISA's base
    check without building or loading it (the extension checks still run), which gives the same
    ISA list, and so the same generated code, exactly when every base check would pass. That
    verdict is kept per torch, CPU, environment and compiler (:func:`keep_isa_probe_verdict`);
    the switch is set only where it was measured, never over a value the user chose, and stays
    set for the process (a later build that checked again would find the same)."""
    import torch._inductor.config as inductor_config

    if inductor_config.cpp.vec_isa_ok is not None or platform.machine() not in ("x86_64", "AMD64"):
        return False
    identity = _compiler_identity()
    if identity is None or facts.get(INDUCTOR_ISAS, fingerprint(identity)) is not True:
        return False
    inductor_config.cpp.vec_isa_ok = True
    return True


def keep_isa_probe_verdict(facts: KeptFacts) -> None:
    """After a CPU build that ran Inductor's probe: keep whether every advertised ISA passed.
    Reads Inductor's private probe functions; if they have changed, nothing is kept."""
    import torch._inductor.config as inductor_config

    if inductor_config.cpp.vec_isa_ok is not None or platform.machine() not in ("x86_64", "AMD64"):
        return
    try:
        from torch._inductor import cpu_vec_isa

        flags = cpu_vec_isa.x86_isa_checker()
        advertised = [
            isa
            for isa in cpu_vec_isa.supported_vec_isa_list
            if all(flag in flags for flag in str(isa).split())
        ]
        passed = cpu_vec_isa.valid_vec_isa_list()
        verdict = bool(advertised) and [id(isa) for isa in passed] == [id(isa) for isa in advertised]
    except Exception:  # noqa: BLE001 - Inductor's internals moved: keep nothing, probe every time
        return
    identity = _compiler_identity()
    if identity is not None:
        facts.put(INDUCTOR_ISAS, fingerprint(identity), verdict)


def _prepare(approximate: str) -> Callable[[str, FloatFormat], None]:
    def prepare(device: str, fmt: FloatFormat) -> None:
        import torch

        x = torch.linspace(-4.0, 4.0, 37, dtype=getattr(torch, fmt.torch_dtype))
        facts = kept_facts()
        probe_skipped = device == "cpu" and skip_known_isa_probe(facts)
        try:
            compiled_gelu(approximate, device, str(x.dtype))(x.to(device))
        except Exception as error:  # compiler failures become the skip reason
            raise ImplementationUnavailable(f"torch.compile failed: {first_line(error)}") from error
        if device == "cpu" and not probe_skipped:
            keep_isa_probe_verdict(facts)

    return prepare


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
        ),
    ]
