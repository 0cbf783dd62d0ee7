"""The run's environment: library versions, CPU and GPU, saved with every report.

Two reports can only be compared honestly when each says what it ran on (pyperf's lesson).
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from functools import cache
from importlib import metadata
from typing import Any

from gelu_audit import __version__


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@cache
def _cpuinfo_first(*keys: str) -> str | None:
    """The first ``/proc/cpuinfo`` line's value whose name starts with one of ``keys`` (read
    once per process per question: the CPU does not change under a running process)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith(keys):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else the platform's processor string."""
    return _cpuinfo_first("model name") or platform.processor() or platform.machine()


def cpu_features() -> str:
    """The CPU's feature flags as the OS lists them (x86 ``flags``, Arm ``Features``), or ""
    where there is no ``/proc/cpuinfo``: what decides the kernels PyTorch and Inductor pick."""
    return " ".join(sorted((_cpuinfo_first("flags", "features") or "").split()))


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity where the OS has one, else every CPU."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def timestamp() -> str:
    """Now, as every document and every kept fact records it: UTC, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def collect_environment(include_torch: bool = True) -> dict[str, Any]:
    """Versions, CPU and (when torch is importable) CUDA devices and CPU kernel capability."""
    env: dict[str, Any] = {
        "gelu_audit": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "libraries": {
            name: _version(name)
            for name in (
                "numpy",
                "mpmath",
                "ml_dtypes",
                "scipy",
                "torch",
                "jax",
                "jaxlib",
                "onnxruntime",
                "onnx",
                "rich",
                "click",
            )
        },
    }
    if include_torch and env["libraries"]["torch"]:
        import torch

        env["torch"] = {
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn_available": torch.backends.mkldnn.is_available(),
            "cuda_available": torch.cuda.is_available(),
            "cuda_version": torch.version.cuda,
            "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available()
            else [],
        }
    return env
