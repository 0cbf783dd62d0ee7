"""Every implementation known by name: built-ins, compiled builds, other frameworks, plugins.

The one module that knows all the sources of implementations, so none of them needs to import
another (no cycle). May import: numerics, errors, implementations.*.
"""

from __future__ import annotations

from typing import Any

from gelu_audit.errors import UsageError
from gelu_audit.implementations.availability import claim_reason, unavailable_reason
from gelu_audit.implementations.builtins import builtin_implementations
from gelu_audit.implementations.compiled import compiled_implementations
from gelu_audit.implementations.cpu_paths import cpu_path_here
from gelu_audit.implementations.devices import device_unavailable_reason, torch_missing_reason
from gelu_audit.implementations.frameworks import framework_implementations
from gelu_audit.implementations.kept_facts import KeptFacts, kept_facts
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.plugins import (
    PluginOptions,
    entry_point_implementations,
    is_import_string,
    load_import_string,
)
from gelu_audit.numerics.formats import FloatFormat


def built_in_implementations() -> list[Implementation]:
    """The built-ins, the compiled builds and the other frameworks' GELUs: gelu-audit's own."""
    return builtin_implementations() + compiled_implementations() + framework_implementations()


def built_in_named(name: str) -> Implementation:
    """One of gelu-audit's own implementations by name, without loading any plugin (how the
    accuracy audit's helper process rebuilds a row)."""
    return next(impl for impl in built_in_implementations() if impl.name == name)


def all_implementations(plugin_options: PluginOptions | None = None) -> list[Implementation]:
    """The built-ins, the compiled builds, the other frameworks' GELUs and the installed
    plugins (entry points), in report order."""
    known = built_in_implementations()
    names = {impl.name for impl in known}
    return known + [impl for impl in entry_point_implementations(plugin_options) if impl.name not in names]


def registry(plugin_options: PluginOptions | None = None) -> dict[str, Implementation]:
    """Every implementation known by name."""
    return {impl.name: impl for impl in all_implementations(plugin_options)}


def implementation_named(
    name: str, plugin_options: PluginOptions | None = None, known: dict[str, Implementation] | None = None
) -> Implementation:
    """A registered implementation (from ``known``, else the registry), or one loaded from
    ``package.module:function``."""
    if is_import_string(name):
        return load_import_string(name, plugin_options or PluginOptions())
    known = registry(plugin_options) if known is None else known
    if name not in known:
        raise UsageError(
            f"unknown implementation {name!r}; `gelu-audit list` shows the names, "
            "and MODULE:FUNCTION audits your own"
        )
    return known[name]


def select_implementations(
    names: list[str] | None, plugin_options: PluginOptions | None = None
) -> list[Implementation]:
    """The implementations asked for by name or import string (all known ones when none are)."""
    if not names:
        return all_implementations(plugin_options)
    known = registry(plugin_options)  # built once, not once per name
    return [implementation_named(name, plugin_options, known) for name in dict.fromkeys(names)]


def availability_rows(
    formats: list[FloatFormat], devices: list[str], facts: KeptFacts | None = None
) -> list[dict[str, Any]]:
    """``gelu-audit list``: every implementation × device × dtype, whether it can run here and
    why not (the reason's message), in report order. What was measured here before on this same
    installation is read from ``facts`` (the facts file, by default), not measured again."""
    rows = []
    facts = kept_facts() if facts is None else facts
    device_reasons = {device: device_unavailable_reason(device, facts) for device in devices}  # once each
    implementations = all_implementations()
    by_name = {impl.name: impl for impl in implementations}
    for impl in implementations:
        for device in devices:
            for fmt in formats:
                # what it claims first: a CPU-only row is "CPU only" whether or not a GPU is here
                reason = (
                    claim_reason(impl, device, fmt)
                    or device_reasons[device]
                    or unavailable_reason(impl, device, fmt, facts)
                )
                path = None
                if reason is None and device == "cpu" and impl.aten_twin in by_name:
                    measured = cpu_path_here(impl, by_name[impl.aten_twin], fmt, facts)
                    if measured is None:  # torch was kept as importing, and does not now
                        reason = torch_missing_reason()
                    else:
                        path = measured.to_json()
                rows.append(
                    {
                        "implementation": impl.name,
                        "backend": impl.backend,
                        "formula": impl.formula.name,
                        "device": device,
                        "dtype": fmt.name,
                        "available": reason is None,
                        "reason": None if reason is None else reason.message,
                        "description": impl.description,
                        "notes": list(impl.notes),
                        "cpu_path": path,
                    }
                )
    return rows
