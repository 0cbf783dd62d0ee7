"""gelu-audit: audit GELU implementations for accuracy and speed.

Kept import-light on purpose: `gelu-audit --help` and `--version` must not load torch or mpmath.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "check", "gelu_kernel"]


def __getattr__(name: str):  # PEP 562: the API loads on first use, keeping `import gelu_audit` light
    if name == "gelu_kernel":
        from gelu_audit.implementations.plugins import gelu_kernel

        return gelu_kernel
    if name in ("check", "AccuracyCheckError"):
        from gelu_audit import api

        return getattr(api, name)
    raise AttributeError(f"module 'gelu_audit' has no attribute {name!r}")
