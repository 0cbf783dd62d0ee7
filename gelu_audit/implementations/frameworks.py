"""GELU outside PyTorch: JAX and ONNX Runtime, audited when installed, never required.

Both receive the audited dtype as a NumPy array (bf16 through ml_dtypes) and run on their
own CPU backends. When a package is missing, the rows are listed as unavailable with the
``pip install`` that enables them. An installed runtime that has no kernel for a dtype (ONNX
Runtime has no bf16 Gelu on the CPU) is found when the session is built, once per dtype, and
the row is skipped with the runtime's own message.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gelu_audit.implementations.kept_facts import file_stamp, fingerprint
from gelu_audit.implementations.model import Implementation, ImplementationUnavailable, first_line
from gelu_audit.numerics.formats import FloatFormat, format_of_array
from gelu_audit.numerics.formulas import ERF, TANH


def _missing(module: str, extra: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install 'gelu-audit[{extra}]')"
    return None


# --- JAX --------------------------------------------------------------------------------------


JAX_CACHE_SUBDIRECTORY = "jax-compilation"
"""Where, in gelu-audit's cache directory, XLA keeps the JAX rows' executables (one directory
per installation and CPU)."""


_JAX_CACHE_SETTINGS = ("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE")
"""Variables that say where and what XLA keeps, not what it compiles: not in the fingerprint."""


def keep_jax_builds(cache_dir: Path | None) -> Path | None:
    """Let XLA keep the CPU executables the JAX rows compile, between runs: the directory, or
    None where nothing is kept. To be called by the CLI before JAX is imported.

    Eager ``jax.nn.gelu`` compiles each of its primitives for each dtype, and the jitted rows
    their fused kernel: 104 compiles, 4.2 s of a warm ``gelu-audit accuracy`` under cProfile
    here (16.5 s in all; docs/speed.md). JAX's persistent compilation cache keeps each
    executable on disk and loads it in a later process instead of compiling it again; the
    executable is the compiler's own output, so the answers are the same bits. JAX keys each
    executable by its program, compile options and versions, but a loaded CPU executable is
    machine code, and an executable from another CPU or another jaxlib build can crash the
    process that loads it (reported for an in-place jaxlib reinstall). So the directory is
    named by a fingerprint of gelu-audit's installation and the CPU
    (:func:`~.kept_facts.fingerprint`: torch's install included), jax's and jaxlib's versions,
    the native libraries at the top of jaxlib's package (``jaxlib/*.so``: path, size, time) and
    the ``JAX_*``/``XLA_*`` variables other than JAX's cache settings; without CPU features,
    torch or jaxlib nothing is kept. Linux only; a user's own cache setting (a non-empty
    ``JAX_COMPILATION_CACHE_DIR``) wins, and a process where JAX is already loaded (a caller's
    own configuration) is left alone. Set through the environment, so the helper and the
    exhaustive workers keep theirs too."""
    if cache_dir is None or sys.platform != "linux" or "jax" in sys.modules:
        return None
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    spec = importlib.util.find_spec("jaxlib")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        return None
    libraries = sorted(str(path) for path in Path(locations[0]).glob("*.so"))
    if not libraries:
        return None
    steering = sorted(
        f"{name}={value}"
        for name, value in os.environ.items()
        if name.startswith(("JAX_", "XLA_")) and not name.startswith(_JAX_CACHE_SETTINGS)
    )
    try:
        versions = [f"{name}={importlib.metadata.version(name)}" for name in ("jax", "jaxlib")]
    except importlib.metadata.PackageNotFoundError:
        return None
    key = fingerprint(*versions, *(file_stamp(path) or path for path in libraries), *steering)
    if key is None:
        return None
    directory = cache_dir / JAX_CACHE_SUBDIRECTORY / key[:20]
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(directory)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # each compile is short
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    return directory


def _jax() -> Any:
    """JAX with 64-bit types enabled (else it silently computes fp64 inputs in float32)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


_JITTED: dict[tuple[str, bool], Any] = {}


def jax_kernel(approximate: bool, jit: bool, backward: bool = False) -> Callable[[Any], Any]:
    """``jax.nn.gelu`` (or its gradient, ``jax.vmap(jax.grad(...))``), eagerly or under
    ``jax.jit``, on a JAX array.

    ``jax.nn.gelu`` is not jitted itself: called eagerly, JAX runs its primitives one by one,
    each rounded to the dtype. Under ``jax.jit``, which is how a JAX model runs, XLA fuses
    them and may keep the intermediates in float32 (its default allows excess precision), so
    the bits differ (docs/findings.md §14): both are audited. A jitted kernel is built once
    per form; XLA compiles it again for each new shape and dtype, as in a model.
    """
    jax = _jax()

    def gelu(v: Any) -> Any:
        return jax.nn.gelu(v, approximate=approximate)

    kernel = jax.vmap(jax.grad(gelu)) if backward else gelu
    if not jit:
        return kernel
    key = ("backward" if backward else "forward", approximate)
    if key not in _JITTED:
        _JITTED[key] = jax.jit(kernel)
    return _JITTED[key]


def _on_jax_cpu(x: np.ndarray) -> Any:
    jax = _jax()
    return jax.device_put(x, jax.devices("cpu")[0])


def _jax_gelu(approximate: bool, jit: bool, backward: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The audited call: a NumPy array in, moved to JAX's CPU device, the answer back in NumPy
    (for ``backward``, the gradient at each point with grad_output = 1)."""

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(jax_kernel(approximate, jit, backward)(_on_jax_cpu(x)))

    return run


def _jax_speed_call(approximate: bool, jit: bool) -> Callable[[np.ndarray], Callable[[], Any]]:
    """What ``gelu-audit speed`` times: the kernel on an array already on JAX's device,
    waited for, as inside a JAX program; moving a NumPy array in (a copy) and back is not
    the kernel's cost (it was a fifth of jax-gelu's time at 16M fp32)."""

    def speed_call(x: np.ndarray) -> Callable[[], Any]:
        kernel, on_cpu = jax_kernel(approximate, jit), _on_jax_cpu(x)
        return lambda: kernel(on_cpu).block_until_ready()

    return speed_call


def _jax_requirement(device: str, fmt: FloatFormat) -> str | None:
    """Installed (a lookup, not an import: importing JAX takes half a second, which ``list``
    should not pay; :func:`_jax_prepare` imports it before an audit)."""
    return _missing("jax", "jax")


def _jax_prepare(device: str, fmt: FloatFormat) -> None:
    """Import JAX once before an audit: a broken install is a skip reason, not a crash."""
    try:
        _jax()
    except Exception as error:  # a broken install is a reason, not a crash
        raise ImplementationUnavailable(f"jax does not import: {first_line(error)}") from error


# --- ONNX Runtime -----------------------------------------------------------------------------

_ONNX_TYPES = {"fp16": "FLOAT16", "bf16": "BFLOAT16", "fp32": "FLOAT", "fp64": "DOUBLE"}
ONNX_OPSET = 20
"""The first opset with a standard Gelu operator (``approximate`` = "none" or "tanh")."""

_SESSIONS: dict[tuple[str, str], Any] = {}


def gelu_model(approximate: str, fmt: FloatFormat) -> bytes:
    """A one-node ONNX model: y = Gelu(x, approximate) on a 1-D tensor of ``fmt``."""
    from onnx import TensorProto, helper

    element = getattr(TensorProto, _ONNX_TYPES[fmt.name])
    node = helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)
    graph = helper.make_graph(
        [node],
        "gelu",
        [helper.make_tensor_value_info("x", element, [None])],
        [helper.make_tensor_value_info("y", element, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 10  # what onnxruntime >= 1.17 reads; newer onnx writes a newer default
    return model.SerializeToString()


def ort_session(approximate: str, fmt: FloatFormat) -> Any:
    """A CPU InferenceSession of :func:`gelu_model`, with the default (full) graph
    optimisation a deployed model gets; built once per dtype."""
    key = (approximate, fmt.name)
    if key not in _SESSIONS:
        import onnxruntime

        _SESSIONS[key] = onnxruntime.InferenceSession(
            gelu_model(approximate, fmt), providers=["CPUExecutionProvider"]
        )
    return _SESSIONS[key]


def _ort_gelu(approximate: str) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        (y,) = ort_session(approximate, format_of_array(x)).run(None, {"x": x})
        return y

    return run


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def _ort_requirement(approximate: str) -> Callable[[str, FloatFormat], str | None]:
    """Installed, and a session for this dtype can be built (milliseconds): onnxruntime has
    no CPU Gelu kernel for some dtypes and says so when the session is created."""

    def requirement(device: str, fmt: FloatFormat) -> str | None:
        if reason := _missing("onnxruntime", "onnxruntime") or _missing("onnx", "onnxruntime"):
            return reason
        try:
            ort_session(approximate, fmt)
        except Exception as error:  # noqa: BLE001 - no session for this dtype is a skip reason
            # "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find ..." -> the last part
            message = first_line(error).rsplit(" : ", 1)[-1]
            return f"onnxruntime {_ort_version()} has no CPU kernel for Gelu in {fmt}: {message}"
        return None

    return requirement


_JIT_NOTE = (
    "jitted: XLA fuses the ops and may keep float32 intermediates, so its bits can differ from "
    "the eager call's (compiled once per shape and dtype)"
)


def _jax_row(
    name: str, *, approximate: bool, jit: bool, description: str, notes: tuple[str, ...] = ()
) -> Implementation:
    """One JAX row: ``jax.nn.gelu`` in one form, eager or jitted, with its gradient and the
    call ``speed`` times."""
    return Implementation(
        name,
        "jax",
        TANH if approximate else ERF,
        _jax_gelu(approximate, jit),
        description,
        cpu_only=True,
        notes=notes,
        backward=_jax_gelu(approximate, jit, backward=True),
        requires=_jax_requirement,
        prepare=_jax_prepare,
        speed_call=_jax_speed_call(approximate, jit),
    )


def framework_implementations() -> list[Implementation]:
    """JAX and ONNX Runtime rows, in report order (listed whether or not installed)."""
    return [
        _jax_row(
            "jax-gelu",
            approximate=False,
            jit=False,
            description="jax.nn.gelu(x, approximate=False): (x/2)·erfc(−x/√2), called eagerly (op by op), "
            "XLA on the CPU",
        ),
        _jax_row(
            "jax-gelu-tanh",
            approximate=True,
            jit=False,
            description="jax.nn.gelu(x): approximate=True, JAX's default, is the tanh form; called "
            "eagerly, XLA on the CPU",
            notes=("jax.nn.gelu defaults to approximate=True (tanh)",),
        ),
        _jax_row(
            "jax-jit-gelu",
            approximate=False,
            jit=True,
            description="jax.jit(jax.nn.gelu)(x), approximate=False: XLA's fused kernel on the CPU, as in a "
            "jitted model",
            notes=(_JIT_NOTE,),
        ),
        _jax_row(
            "jax-jit-gelu-tanh",
            approximate=True,
            jit=True,
            description="jax.jit(jax.nn.gelu)(x), approximate=True (the tanh form): XLA's fused kernel on "
            "the CPU",
            notes=(_JIT_NOTE,),
        ),
        Implementation(
            "onnxruntime-gelu",
            "onnxruntime",
            ERF,
            _ort_gelu("none"),
            f'ONNX Gelu (opset {ONNX_OPSET}, approximate="none") in an onnxruntime CPU session',
            cpu_only=True,
            requires=_ort_requirement("none"),
        ),
        Implementation(
            "onnxruntime-gelu-tanh",
            "onnxruntime",
            TANH,
            _ort_gelu("tanh"),
            f'ONNX Gelu (opset {ONNX_OPSET}, approximate="tanh") in an onnxruntime CPU session',
            cpu_only=True,
            requires=_ort_requirement("tanh"),
        ),
    ]
