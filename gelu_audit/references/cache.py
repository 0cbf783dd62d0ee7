"""The on-disk cache of exhaustive 16-bit reference tables (fp16 and bf16: 65,536 points each).

Tables are written atomically and checked on read (metadata and a SHA-256 of the arrays): a
damaged, foreign or outdated file is never trusted, only rebuilt.
May import: numerics, references.mpmath_ziv.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FloatFormat, all_patterns, patterns_to_values
from gelu_audit.numerics.formulas import Function
from gelu_audit.references.mpmath_ziv import REFERENCE_VERSION, ProgressCallback, compute_references


def default_cache_dir() -> Path:
    """``$GELU_AUDIT_CACHE_DIR``, else the platform's user cache directory + ``gelu-audit``."""
    override = os.environ.get("GELU_AUDIT_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gelu-audit"


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


TEMPORARY_SUFFIX = ".tmp"
"""What a file being written is called until its rename (one left behind: a killed writer)."""


def save_npz_atomically(path: Path, **arrays: Any) -> None:
    """Write an ``.npz`` file atomically (temporary file, then rename), so readers never see
    half a file; the caller's OSError (a full disk, a read-only folder) leaves nothing behind.

    The temporary file is created as any new file is (mode 0666 less the umask, the folder's
    default ACLs), not ``mkstemp``'s private 0600: a reference store shared by a team is
    readable by it (a file another user cannot read would look damaged to them, and be
    recomputed). Its name is the file's, 8 random hex digits and ``.tmp``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f"{path.name}{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 1 in 2^32
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
