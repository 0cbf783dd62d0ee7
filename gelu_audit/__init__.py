"""gelu-audit: audit GELU implementations for accuracy and speed.

Kept import-light on purpose: `gelu-audit --help` and `--version` must not load torch or mpmath.
"""

from __future__ import annotations

__version__ = "0.1.0"
