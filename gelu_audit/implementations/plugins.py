"""Your own GELU: implementations loaded from an import string or an installed entry point.

Two routes, one result (an :class:`~gelu_audit.implementations.model.Implementation`):

* ``--impl package.module:function`` on the command line (or ``impl = [...]`` in the config):
  the function is imported, and what it claims comes from the ``--impl-*`` options, or from
  :func:`gelu_kernel` metadata on the function itself, which wins;
* an installed package declares ``[project.entry-points."gelu_audit.implementations"]``,
  ``name = "package.module:function"``; the implementation is then known by ``name``
  everywhere (``list``, ``-i name``, the config).

The object may also be an ``Implementation`` built by hand. A plugin runs under a timeout
(:func:`~gelu_audit.implementations.runner.with_timeout`): one that never returns is reported as an
error for its case and the audit goes on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from gelu_audit.errors import UsageError
from gelu_audit.implementations.isolation import isolated
from gelu_audit.implementations.model import ALL_DTYPES, Implementation, first_line, reportable
from gelu_audit.numerics.formats import FloatFormat
from gelu_audit.numerics.formulas import ERF, FORMULA_NAMES, FORMULAS, Function

ENTRY_POINT_GROUP = "gelu_audit.implementations"
METADATA_ATTRIBUTE = "__gelu_audit__"
DEFAULT_TIMEOUT_S = 60.0
BACKENDS = ("torch", "numpy")
DEVICE_KINDS = ("cpu", "cuda")
_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class PluginOptions:
    """What an import-string implementation claims when the function does not say itself."""

    formula: str = "erf"
    backend: str = "torch"
    dtypes: tuple[str, ...] = ALL_DTYPES
    devices: tuple[str, ...] = DEVICE_KINDS
    timeout: float | None = DEFAULT_TIMEOUT_S
    """Seconds one call may take before the case is reported as an error; None: no limit."""
    isolate: bool = False
    """Run each plugin in a child process of its own (``--isolate``), so a crash is its case's
    error (:mod:`~gelu_audit.implementations.isolation`)."""


def gelu_kernel(
    *,
    formula: str = "erf",
    backend: str = "torch",
    dtypes: tuple[str, ...] | None = None,
    devices: tuple[str, ...] | None = None,
    description: str | None = None,
    backward: Callable[[Any, Any], Any] | None = None,
) -> Callable[[Any], Any]:
    """Decorate a GELU to say what it computes, so no ``--impl-*`` option is needed::

    @gelu_kernel(formula="tanh", backend="numpy", dtypes=("fp16", "fp32"))
    def my_gelu(x): ...

    ``backward(grad_output, x)`` is its own gradient kernel (``--pass backward`` audits it with
    grad_output = 1); without it a torch GELU is differentiated through autograd.
    """
    if backward is not None and not callable(backward):
        raise UsageError(f"gelu_kernel: backward must be a function, not {type(backward).__name__}")
    metadata = {
        "formula": formula,
        "backend": backend,
        "dtypes": dtypes,
        "devices": devices,
        "description": description,
        "backward": backward,
    }
    _check_claims(metadata, "gelu_kernel")

    def mark(function: Any) -> Any:
        setattr(function, METADATA_ATTRIBUTE, metadata)
        return function

    return mark


def _check_claims(claims: dict[str, Any], where: str) -> None:
    if claims.get("formula") not in FORMULA_NAMES:
        raise UsageError(
            f"{where}: formula must be one of {', '.join(FORMULA_NAMES)}, not {claims.get('formula')!r}"
        )
    if claims.get("backend") not in BACKENDS:
        raise UsageError(
            f"{where}: backend must be one of {', '.join(BACKENDS)}, not {claims.get('backend')!r}"
        )
    for dtype in claims.get("dtypes") or ():
        if dtype not in ALL_DTYPES:
            raise UsageError(f"{where}: unknown dtype {dtype!r} (choose from {', '.join(ALL_DTYPES)})")
    for device in claims.get("devices") or ():
        if device not in DEVICE_KINDS:
            raise UsageError(f"{where}: unknown device kind {device!r} (choose from cpu, cuda)")


def is_import_string(name: str) -> bool:
    return ":" in name


def implementation_from(obj: Any, name: str, options: PluginOptions, origin: str) -> Implementation:
    """An Implementation from a loaded object: an Implementation as is (renamed), or a callable
    with its :func:`gelu_kernel` claims, else the ``options``; to run in a child process of its
    own with ``options.isolate``."""
    impl = _implementation_from(obj, name, options, origin)
    if options.isolate:
        in_child = replace(options, isolate=False)
        return isolated(impl, partial(reload_plugin, name, in_child), key=(name, in_child))
    return impl


def _implementation_from(obj: Any, name: str, options: PluginOptions, origin: str) -> Implementation:
    if isinstance(obj, Implementation):
        claimed: Function | str = obj.formula
        if isinstance(claimed, str):  # built by hand with a formula's name (before Formula objects)
            if claimed not in FORMULAS:
                known = ", ".join(FORMULA_NAMES)
                raise UsageError(f"{origin}: formula must be one of {known}, not {claimed!r}")
            claimed = FORMULAS[claimed]
        return replace(obj, name=name, timeout=options.timeout, formula=claimed)
    if not callable(obj):
        raise UsageError(f"{origin} is a {type(obj).__name__}, not a function")
    claims = dict(getattr(obj, METADATA_ATTRIBUTE, None) or {})
    formula = claims.get("formula") or options.formula
    backend = claims.get("backend") or options.backend
    dtypes = tuple(claims.get("dtypes") or options.dtypes)
    devices = tuple(claims.get("devices") or options.devices)
    _check_claims({"formula": formula, "backend": backend, "dtypes": dtypes, "devices": devices}, origin)
    doc_lines = (obj.__doc__ or "").strip().splitlines()
    description = claims.get("description") or (doc_lines[0] if doc_lines else "")
    return Implementation(
        name,
        backend,
        FORMULAS[formula],
        obj,
        f"{origin}{': ' + description if description else ''}",
        dtypes=dtypes,
        cpu_only="cuda" not in devices or backend == "numpy",
        notes=("plugin",) + (() if "cpu" in devices else ("declared for CUDA only",)),
        requires=None if "cpu" in devices else _cuda_only,
        timeout=options.timeout,
        backward=None if claims.get("backward") is None else _with_unit_grad(claims["backward"], backend),
    )


def _with_unit_grad(backward: Callable[[Any, Any], Any], backend: str) -> Callable[[Any], Any]:
    """A declared ``backward(grad_output, x)`` as x ↦ backward(1, x): GELU′(x), rounded."""

    def at_unit_grad(x: Any) -> Any:
        if backend == "torch":
            import torch

            return backward(torch.ones_like(x), x)
        import numpy as np

        return backward(np.ones_like(x), x)

    return at_unit_grad


def _cuda_only(device: str, fmt: FloatFormat) -> str | None:
    return "declared for CUDA only" if device == "cpu" else None


def load_import_string(spec: str, options: PluginOptions) -> Implementation:
    """``package.module:function`` (or ``module:object.attribute``) as an Implementation."""
    if not _IMPORT_STRING.match(spec):
        raise UsageError(f"--impl {spec!r}: expected MODULE:FUNCTION, e.g. mypackage.kernels:gelu")
    module_name, attribute = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except BaseException as error:  # any import failure is the user's to fix, sys.exit included
        if not reportable(error):
            raise
        raise UsageError(f"--impl {spec}: cannot import {module_name!r} ({first_line(error)})") from None
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--impl {spec}: {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    return implementation_from(obj, spec, options, spec)


def entry_point_implementations(options: PluginOptions | None = None) -> list[Implementation]:
    """Implementations registered by installed packages. One that fails to load is listed as
    unavailable with the reason, never fatal: a broken plugin must not stop other audits."""
    options = options or PluginOptions()
    found = []
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = _entry_origin(entry)
        try:
            found.append(implementation_from(entry.load(), entry.name, options, origin))
        except BaseException as error:  # a broken plugin must not stop other audits
            if not reportable(error):
                raise
            reason = str(error) if isinstance(error, UsageError) else first_line(error)
            found.append(
                Implementation(
                    entry.name,
                    "torch",
                    ERF,
                    _unloadable(reason),
                    origin,
                    notes=("plugin",),
                    requires=_failed_to_load(reason),
                )
            )
    return found


def _entry_origin(entry: importlib.metadata.EntryPoint) -> str:
    return f"entry point {entry.name} = {entry.value}"


def reload_plugin(name: str, options: PluginOptions) -> Implementation:
    """The plugin known as ``name`` (an import string or an entry point's name), loaded again:
    how an ``--isolate`` child process rebuilds what its parent loaded."""
    if is_import_string(name):
        return load_import_string(name, options)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
        return implementation_from(entry.load(), name, options, _entry_origin(entry))
    raise UsageError(f"no entry point named {name!r} in {ENTRY_POINT_GROUP}")


def _failed_to_load(reason: str) -> Callable[[str, FloatFormat], str | None]:
    """The requirement of a plugin that did not load: never met, with why."""

    def requirement(device: str, fmt: FloatFormat) -> str | None:
        return f"failed to load: {reason}"

    return requirement


def _unloadable(reason: str) -> Callable[[Any], Any]:
    def fail(x: Any) -> Any:
        raise RuntimeError(f"failed to load: {reason}")

    return fail
