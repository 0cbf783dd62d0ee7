"""The on-disk cache of exhaustive 16-bit reference tables (fp16 and bf16: 65,536 points each).

Tables are written atomically and checked on read (metadata and a SHA-256 of the arrays): a
damaged, foreign or outdated file is never trusted, only rebuilt.
May import: numerics, references.mpmath_ziv, user_cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FloatFormat, all_patterns, patterns_to_values
from gelu_audit.numerics.formulas import Function
from gelu_audit.references.mpmath_ziv import REFERENCE_VERSION, ProgressCallback, compute_references
from gelu_audit.user_cache import write_atomically

_ARRAY_NAMES = ("binade", "mant_hi", "mant_lo", "rounded")


def _cache_meta(formula: Function, fmt: FloatFormat) -> dict[str, object]:
    return {
        "kind": "gelu-audit exhaustive reference table",
        "format": fmt.name,
        "formula": formula.name,
        "reference_version": REFERENCE_VERSION,
        "points": fmt.pattern_count,
    }


def _digest(meta: dict[str, object], arrays: dict[str, np.ndarray]) -> str:
    sha = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in _ARRAY_NAMES:
        sha.update(np.ascontiguousarray(arrays[name]).tobytes())
    return sha.hexdigest()


def cache_path(cache_dir: Path, formula: Function, fmt: FloatFormat) -> Path:
    return Path(cache_dir) / f"reference-{fmt.name}-{formula.name}-v{REFERENCE_VERSION}.npz"


def load_cached_table(path: Path, formula: Function, fmt: FloatFormat) -> ReferenceValues | None:
    """The cached table at ``path`` if it is intact and is the one asked for, else None.

    Anything unexpected (truncated file, foreign file, other version, wrong shape, checksum
    mismatch) makes the cache untrusted: the caller recomputes and overwrites it.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {name: data[name] for name in _ARRAY_NAMES}
            digest = str(data["digest"])
    except Exception:  # noqa: BLE001 - any unreadable file is simply not trusted
        return None
    if meta != _cache_meta(formula, fmt):
        return None
    if any(a.shape != (fmt.pattern_count,) for a in arrays.values()):
        return None
    if digest != _digest(meta, arrays):
        return None
    return ReferenceValues(
        arrays["binade"].astype(np.int64),
        arrays["mant_hi"].astype(np.float64),
        arrays["mant_lo"].astype(np.float64),
        arrays["rounded"].astype(np.float64),
    )


def save_npz_atomically(path: Path, **arrays: Any) -> None:
    """Write an ``.npz`` file atomically (see :func:`~gelu_audit.user_cache.write_atomically`):
    readers never see half a file, and a failed write leaves nothing behind."""
    write_atomically(path, lambda handle: np.savez(handle, **arrays))


def save_table(path: Path, formula: Function, fmt: FloatFormat, table: ReferenceValues) -> None:
    """Write a table atomically, with its metadata and digest."""
    meta = _cache_meta(formula, fmt)
    arrays = {name: getattr(table, name) for name in _ARRAY_NAMES}
    save_npz_atomically(path, meta=json.dumps(meta), digest=_digest(meta, arrays), **arrays)


@dataclass(frozen=True)
class TableSource:
    """Where an exhaustive table came from, for the report."""

    path: str
    cached: bool
    rebuilt_reason: str | None


def exhaustive_table(
    formula: Function,
    fmt: FloatFormat,
    cache_dir: Path | None,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
) -> tuple[ReferenceValues, TableSource]:
    """The reference for every bit pattern of a 16-bit format, from the cache when intact.

    With ``cache_dir`` None the table is computed and not stored.
    """
    path = cache_path(cache_dir, formula, fmt) if cache_dir is not None else None
    reason = None
    if path is not None and path.exists():
        table = load_cached_table(path, formula, fmt)
        if table is not None:
            return table, TableSource(str(path), True, None)
        reason = "cache file damaged or foreign; rebuilt"
    values = patterns_to_values(fmt, all_patterns(fmt))
    table = compute_references(formula, fmt, values, jobs=jobs, progress=progress)
    if path is not None:
        try:
            save_table(path, formula, fmt, table)
        except OSError as error:
            reason = f"cache not written: {error}"
    return table, TableSource(str(path) if path else "", False, reason)
