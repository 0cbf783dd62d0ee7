"""The optional compiled passes: C that ``pip install`` builds where a compiler is at hand
(pyproject.toml: optional extensions, so an install without one still succeeds), loaded with
ctypes (plain C, no Python API).

Each library says which calling convention it was built with (an ``*_abi_version`` function),
and is loaded only where that is the one its Python caller was written for: an editable install
not rebuilt after the C changed is left alone, and the NumPy path it stands in for runs, with the
same numbers. Each can be switched off by an environment variable set to 0, for comparisons and
debugging. May import: numpy.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy as np


def load_library(module: str, abi_function: str, abi_version: int, switch: str) -> ctypes.CDLL | None:
    """The extension ``module`` (a dotted name), or None: not built with this install, built from
    another version of its source (``abi_function()`` is not ``abi_version``), or switched off
    (``switch`` set to 0 in the environment)."""
    if os.environ.get(switch, "1") == "0":
        return None
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    try:
        loaded = ctypes.CDLL(spec.origin)
        version = getattr(loaded, abi_function)
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_int64
    return loaded if version() == abi_version else None


def address(values: np.ndarray, dtype: type, length: int) -> int:
    """Where a compiled pass reads or writes ``values``: a contiguous array of ``dtype`` with at
    least ``length`` items. The caller keeps ``values`` alive for the call. Raw addresses rather
    than ctypes' checked array types, whose checks cost as much as a small block's pass; these
    checks are the ones that matter."""
    if values.dtype != dtype or not values.flags.c_contiguous or len(values) < length:
        raise ValueError(f"a compiled pass needs contiguous {np.dtype(dtype)} arrays of {length} or more")
    return int(values.ctypes.data)
