"""Which CPU kernel ``F.gelu`` takes here, per dtype: measured, not assumed.

PyTorch sends a CPU ``F.gelu`` either to oneDNN or to ATen's own kernel, and which one depends
on the dtype, the layout and the instruction set: on an Intel Xeon with AVX512-FP16, contiguous
fp16 goes to oneDNN (5.8 ULP), where on an AMD EPYC it goes to ATen (2.04 ULP). A note written
from one machine is wrong on the other, so ``gelu-audit list`` asks the machine: it runs
``F.gelu`` on probe inputs with oneDNN enabled and disabled and compares the bits. Different
bits mean the default call does not take ATen's kernel: oneDNN, detected. The same bits on every
probe mean ATen's kernel, or one that agrees with it bit for bit there.

What decides the path is the torch build, the CPU and the dispatch's environment variables, so
``list`` keeps each answer in the facts file under their fingerprint (``kept_facts``) and asks
again only when one of them changes: then ``list`` need not import torch at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from gelu_audit.environment import timestamp
from gelu_audit.implementations.devices import TORCH_IMPORTS, torch_missing_reason
from gelu_audit.implementations.kept_facts import KeptFacts, fingerprint
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.runner import run_implementation
from gelu_audit.numerics.formats import FloatFormat, all_patterns, patterns_to_values
from gelu_audit.numerics.inputs import stratified_inputs

PROBES = 20_000
"""Probe inputs for fp32/fp64 (a stratified sample); fp16 and bf16 use every finite pattern."""


@dataclass(frozen=True)
class CpuPath:
    """What one dtype's default ``F.gelu`` call does here."""

    dtype: str
    path: str
    """``oneDNN`` (its bits differ from ATen's somewhere) or ``ATen`` (the same bits)."""
    probes: int
    differing: int
    """Probe inputs whose answers differ with oneDNN on and off (−0 and +0 differ)."""
    measured_at: str
    """When the probes ran (UTC, ISO 8601)."""
    kept: bool = False
    """Read from the facts file: measured by an earlier run on this same installation."""

    def describe(self) -> str:
        if self.path == "oneDNN":
            differ = f"{self.differing:,} of {self.probes:,} inputs differ from ATen"
            what = f"{self.dtype} oneDNN, detected ({differ})"
        else:
            what = f"{self.dtype} ATen (the same bits as with oneDNN off, {self.probes:,} inputs)"
        return f"{what}, measured {self.measured_at[:10]}" if self.kept else what

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "probes": self.probes,
            "differing": self.differing,
            "measured_at": self.measured_at,
            "kept": self.kept,
        }


@cache
def probe_patterns(fmt: FloatFormat) -> np.ndarray:
    """Every finite pattern of a 16-bit format; a stratified sample of fp32/fp64 (drawn once
    per process: the erf and tanh rows share it, and ``list`` should not pay for it twice)."""
    if fmt.width == 16:
        patterns = all_patterns(fmt)
    else:
        patterns = stratified_inputs(fmt, PROBES, seed=0).patterns
    return patterns[np.isfinite(patterns_to_values(fmt, patterns))]


def detect_cpu_path(default: Implementation, aten: Implementation, fmt: FloatFormat) -> CpuPath:
    """Run the default call and its oneDNN-off twin on the probes; compare the bits."""
    patterns = probe_patterns(fmt)
    differing = np.count_nonzero(
        run_implementation(default, fmt, "cpu", patterns) != run_implementation(aten, fmt, "cpu", patterns)
    )
    return CpuPath(fmt.name, "oneDNN" if differing else "ATen", len(patterns), int(differing), timestamp())


def cpu_path_here(
    default: Implementation, aten: Implementation, fmt: FloatFormat, facts: KeptFacts
) -> CpuPath | None:
    """:func:`detect_cpu_path`, kept in ``facts``: measured once per installation, CPU and
    environment (the fingerprint), read back after that. None when torch, kept as importing
    here, does not import now (a library it needs has gone): that is kept instead, and the
    caller reports the row as unavailable."""
    name = f"cpu path: {default.name} against {aten.name}, {fmt.name}, {PROBES} probes"
    key = fingerprint()
    kept = facts.get(name, key)
    if isinstance(kept, dict) and kept.get("path") in ("oneDNN", "ATen"):
        try:
            return CpuPath(
                fmt.name,
                kept["path"],
                int(kept["probes"]),
                int(kept["differing"]),
                str(kept["measured_at"]),
                True,
            )
        except (KeyError, TypeError, ValueError):
            pass  # damaged: measured again below
    if torch_missing_reason() is not None:  # imported for real: the measurement needs it
        facts.put(TORCH_IMPORTS, key, False)
        return None
    path = detect_cpu_path(default, aten, fmt)
    facts.put(name, key, {k: v for k, v in path.to_json().items() if k != "kept"})
    return path
