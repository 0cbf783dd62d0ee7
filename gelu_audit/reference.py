"""Correctly rounded GELU references in mpmath, their compact storage and the on-disk cache.

Each exact value y = f(x) is stored as a binade b = floor(log2|y|) and a double-double
mantissa (hi + lo) = y / 2^b, so values far below float64's range (GELU(-60000) ≈ e^-1.8e9)
keep their size and sign, together with RN_T(y), the correctly rounded value in the target
format. mpmath gives no rigorous error bound, so each evaluation assumes a generous one
(2^8 working-precision ulps times the formula's condition number) and raises the precision
until the whole interval y·(1 ± bound) rounds to one value of the target format and lies in
one binade (Ziv's strategy). The test suite checks the results against rigorous arb balls.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gelu_audit.formats import FORMATS, FloatFormat, all_patterns, patterns_to_values, round_mpf

if TYPE_CHECKING:  # pragma: no cover
    import mpmath

FORMULAS: dict[str, str] = {
    "erf": "x·Φ(x) = (x/2)·erfc(−x/√2)  (exact GELU)",
    "tanh": "(x/2)·(1 + tanh(√(2/π)·(x + 0.044715·x³)))",
    "sigmoid": "x·σ(1.702·x)",
}
"""Formula ids and the exact real function each stands for."""

REFERENCE_VERSION = 1
"""Bump when the reference computation changes: cached tables of another version are rebuilt."""

BINADE_FLOOR = -(1 << 60)
"""Binades below this are stored as this (GELU(−3e38) ≈ 2^(−1e77) fits no integer array).
It is far below every format's smallest subnormal, so no error figure depends on the rest."""

MAX_PRECISION = 1 << 16
"""Give up raising the working precision past this many bits (only an exact tie gets there)."""

ASSUMED_ERROR_BITS = 8
"""mpmath's functions are accurate to about an ulp; we assume up to 2^8 working ulps."""


class ReferenceError(RuntimeError):
    """The rounding of a reference value could not be decided (an exact tie): a bug."""


# --- the three formulas in mpmath -------------------------------------------------------------


ASYMPTOTIC_FROM = 30.0
"""From |x| = 30 on, erfc(|x|/√2) is summed from its asymptotic series with w² = x²/2 exact."""


def _erfc_tail(x: mpmath.mpf) -> mpmath.mpf | None:
    """erfc(|x|/√2) for |x| ≥ 30 from e^(−w²)/(w√π)·Σ (−1)^n (2n−1)!!/(2w²)^n.

    w² = x²/2 is formed exactly, so the huge exponent carries no rounding error and no extra
    precision is needed however large |x| is (mpmath's own erfc needs 2·log2|x| extra bits
    and overflows near |x| = 1e154). Returns None when the working precision asks for more
    than the series can give (its smallest term is about e^(−w²)); the caller then falls back.
    """
    import mpmath

    w2 = mpmath.ldexp(mpmath.fmul(x, x, exact=True), -1)
    tolerance = mpmath.ldexp(1, -mpmath.mp.prec - 8)
    term = total = mpmath.mpf(1)
    n = 1
    while abs(term) >= tolerance:
        ratio = (2 * n - 1) / (2 * w2)
        if ratio >= 1:
            return None  # terms would grow: the series cannot reach this precision
        term *= -ratio
        total += term
        n += 1
    w = abs(x) / mpmath.sqrt(2)
    return mpmath.exp(-w2) / (w * mpmath.sqrt(mpmath.pi)) * total


def _gelu_erf(x: mpmath.mpf) -> mpmath.mpf:
    import mpmath

    if abs(x) >= ASYMPTOTIC_FROM:
        tail = _erfc_tail(x)  # erfc(|x|/√2); erfc(−|x|/√2) = 2 − tail
        if tail is not None:
            return x / 2 * (tail if x < 0 else 2 - tail)
    return x / 2 * mpmath.erfc(-x / mpmath.sqrt(2))


def _gelu_tanh(x: mpmath.mpf) -> mpmath.mpf:
    # (x/2)(1 + tanh(u)) = x·σ(2u): no cancellation for negative x.
    import mpmath

    u = mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)
    return x / (1 + mpmath.exp(-2 * u))


def _gelu_sigmoid(x: mpmath.mpf) -> mpmath.mpf:
    import mpmath

    return x / (1 + mpmath.exp(-mpmath.mpf("1.702") * x))


_FUNCTIONS: dict[str, Callable[[mpmath.mpf], mpmath.mpf]] = {
    "erf": _gelu_erf,
    "tanh": _gelu_tanh,
    "sigmoid": _gelu_sigmoid,
}


def gelu_mpmath(formula: str, x: float | mpmath.mpf, precision: int = 128) -> mpmath.mpf:
    """Evaluate a formula id at ``x`` in mpmath at the given working precision (in bits)."""
    import mpmath

    with mpmath.workprec(precision):
        return _FUNCTIONS[formula](mpmath.mpf(x))


def _amplification_bits(formula: str, x: float) -> int:
    """log2 of a bound on how much the formula amplifies relative rounding errors at ``x``.

    erf: the argument w = −x/√2 carries a rounding error that erfc amplifies by at most
    2w² + 2 = x² + 2 (the condition number of erfc for large w); past ASYMPTOTIC_FROM the
    series takes w² exactly and only a few roundings remain. tanh and sigmoid: σ(t) has
    condition number |t|·(1 − σ(t)) ≤ |t|, and t itself collects a few roundings.
    """
    ax = abs(x)
    if formula == "erf":
        # From ASYMPTOTIC_FROM on the exponent is formed exactly (see _erfc_tail).
        log2_amp = math.log2(2.0 + ax * ax) if ax < ASYMPTOTIC_FROM else 4.0
    elif formula == "tanh":
        t = 2 * math.sqrt(2 / math.pi) * (ax + 0.044715 * ax**3) if ax < 1e100 else math.inf
        log2_amp = (
            math.log2(6 * (t + 1)) if math.isfinite(t) else 3 * math.log2(ax) + 3
        )
    else:
        log2_amp = 1 + math.log2(1.702 * ax + 1) if ax < 1e300 else math.log2(ax) + 2
    return max(0, math.ceil(log2_amp))


@dataclass(frozen=True)
class ReferencePoint:
    """The exact value of a formula at one input, as stored in :class:`ReferenceValues`."""

    binade: int
    mant_hi: float
    mant_lo: float
    rounded: float


def reference_point(formula: str, fmt: FloatFormat, x: float) -> ReferencePoint:
    """Compute f(x) with the precision raised until RN_fmt(f(x)) and its binade are certain."""
    import mpmath

    if math.isnan(x):
        return ReferencePoint(0, math.nan, 0.0, math.nan)
    if math.isinf(x):  # GELU(+inf) = +inf; GELU(-inf) = -0, the limit from below.
        return ReferencePoint(0, math.inf, 0.0, math.inf) if x > 0 else ReferencePoint(0, -0.0, 0.0, -0.0)
    if x == 0:
        return ReferencePoint(0, x, 0.0, x)  # f(±0) = ±0 exactly, sign kept
    amp = _amplification_bits(formula, x)
    # For tiny |x|, f(x) = x/2 + x²/√(2π) + … can sit within |x|·ulp of a rounding boundary
    # (x/2 may be an exact midpoint): start with enough bits to see the x² term.
    tiny_bits = max(0, -math.frexp(x)[1])
    precision = fmt.precision + 40 + amp + ASSUMED_ERROR_BITS + tiny_bits
    xm = mpmath.mpf(x)
    while precision <= MAX_PRECISION:
        with mpmath.workprec(precision):
            y = _FUNCTIONS[formula](xm)
        good_bits = precision - ASSUMED_ERROR_BITS - amp
        radius = mpmath.ldexp(abs(y), -good_bits)
        low = mpmath.fsub(y, radius, exact=True)
        high = mpmath.fadd(y, radius, exact=True)
        rounded = round_mpf(fmt, low)
        rounded_high = round_mpf(fmt, high)
        same_rounding = rounded == rounded_high and math.copysign(1.0, rounded) == math.copysign(
            1.0, rounded_high
        )
        binade = _binade(y)
        straddles_binades = _binade(low) != _binade(high)
        if straddles_binades and _is_power_of_two(x) and x > 0:
            # 0 < f(x) < x for x > 0 in every formula, and f(x) is x minus a tiny amount when x
            # is large: its binade is the one just below x, which no finite precision can see.
            binade = math.frexp(x)[1] - 2
        elif straddles_binades:
            same_rounding = False
        if same_rounding:
            if binade < BINADE_FLOOR:
                return ReferencePoint(BINADE_FLOOR, -1.0 if y < 0 else 1.0, 0.0, rounded)
            with mpmath.workprec(max(precision, 128)):
                mantissa = mpmath.ldexp(y, -binade)
                hi = float(mantissa)
                lo = float(mantissa - hi)
            return ReferencePoint(binade, hi, lo, rounded)
        precision *= 2
    raise ReferenceError(f"cannot decide the rounding of {formula}({x!r}) to {fmt}")


def _is_power_of_two(x: float) -> bool:
    return math.frexp(x)[0] in (0.5, -0.5)


def _binade(y: mpmath.mpf) -> int:
    _sign, _man, exp, bc = y._mpf_
    return int(exp + bc - 1)


# --- arrays of reference values ---------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceValues:
    """Exact values of one formula over an array of inputs (same order as the inputs)."""

    binade: np.ndarray
    """int64 floor(log2|y|), clamped at BINADE_FLOOR; 0 where y is zero or not finite."""
    mant_hi: np.ndarray
    """float64 leading part of y / 2^binade (carries the sign; ±0 for y = ±0; NaN/±inf)."""
    mant_lo: np.ndarray
    """float64 trailing part of y / 2^binade."""
    rounded: np.ndarray
    """float64 RN_T(y): the correctly rounded value in the target format (exact in float64)."""

    def __len__(self) -> int:
        return len(self.rounded)

    def take(self, index: np.ndarray) -> ReferenceValues:
        """The references at the given positions (an index array or a boolean mask)."""
        return ReferenceValues(
            self.binade[index], self.mant_hi[index], self.mant_lo[index], self.rounded[index]
        )

    def approximate(self) -> np.ndarray:
        """y as float64 (may underflow to ±0 or overflow): for absolute and relative errors."""
        exponent = np.clip(self.binade, -4000, 4000).astype(np.int32)
        with np.errstate(over="ignore", under="ignore"):
            return np.ldexp(self.mant_hi + self.mant_lo, exponent)

    def exact_mpf(self, i: int) -> mpmath.mpf:
        """y at position ``i`` as an mpmath number (double-double precision)."""
        import mpmath

        hi, lo = float(self.mant_hi[i]), float(self.mant_lo[i])
        if not math.isfinite(hi) or hi == 0:
            return mpmath.mpf(hi)
        with mpmath.workprec(128):
            return mpmath.ldexp(mpmath.mpf(hi) + mpmath.mpf(lo), int(self.binade[i]))

    def exact_decimal(self, i: int, digits: int = 17) -> str:
        """y at position ``i`` in decimal, for reports."""
        import mpmath

        y = self.exact_mpf(i)
        if mpmath.isnan(y) or mpmath.isinf(y):
            return str(float(y))
        if y == 0:
            return "-0.0" if math.copysign(1.0, float(self.mant_hi[i])) < 0 else "0.0"
        if int(self.binade[i]) <= BINADE_FLOOR:
            return f"{'-' if y < 0 else ''}(below 2^{BINADE_FLOOR})"
        with mpmath.workprec(128):
            return mpmath.nstr(y, digits, min_fixed=-4, max_fixed=8)

    @staticmethod
    def concatenate(parts: list[ReferenceValues]) -> ReferenceValues:
        return ReferenceValues(
            np.concatenate([p.binade for p in parts]) if parts else np.zeros(0, np.int64),
            np.concatenate([p.mant_hi for p in parts]) if parts else np.zeros(0),
            np.concatenate([p.mant_lo for p in parts]) if parts else np.zeros(0),
            np.concatenate([p.rounded for p in parts]) if parts else np.zeros(0),
        )


def _reference_chunk(formula: str, fmt_name: str, values: np.ndarray) -> ReferenceValues:
    """Worker: references for one chunk of inputs (module level so processes can pickle it)."""
    fmt = FORMATS[fmt_name]
    n = len(values)
    binade = np.zeros(n, np.int64)
    hi = np.zeros(n)
    lo = np.zeros(n)
    rounded = np.zeros(n)
    for i, x in enumerate(values.tolist()):
        point = reference_point(formula, fmt, x)
        binade[i], hi[i], lo[i], rounded[i] = point.binade, point.mant_hi, point.mant_lo, point.rounded
    return ReferenceValues(binade, hi, lo, rounded)


ProgressCallback = Callable[[int], None]
"""Called with the number of points finished since the last call."""


def compute_references(
    formula: str,
    fmt: FloatFormat,
    values: np.ndarray,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
    chunk_size: int = 4096,
) -> ReferenceValues:
    """References for ``values`` (float64 inputs in ``fmt``), in parallel over ``jobs`` processes."""
    values = np.asarray(values, dtype=np.float64)
    chunks = [values[i : i + chunk_size] for i in range(0, len(values), chunk_size)] or [values]
    if jobs <= 1 or len(chunks) == 1:
        parts = []
        for chunk in chunks:
            parts.append(_reference_chunk(formula, fmt.name, chunk))
            if progress:
                progress(len(chunk))
        return ReferenceValues.concatenate(parts)
    import multiprocessing

    # NOTE: fork where the platform has it: "spawn" re-imports the caller's __main__, which
    # fails from stdin or a notebook. The workers run mpmath only, never torch's thread pools.
    # Once JAX is loaded (its rows ran), its runtime threads make a fork unsafe (JAX warns of
    # deadlocks), so the workers come from a forkserver, started clean, instead.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and "jax" not in sys.modules:
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_reference_chunk, formula, fmt.name, c) for c in chunks]
        parts = []
        for future, chunk in zip(futures, chunks):
            parts.append(future.result())
            if progress:
                progress(len(chunk))
    return ReferenceValues.concatenate(parts)


# --- the on-disk cache of exhaustive 16-bit tables -------------------------------------------


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


def _cache_meta(formula: str, fmt: FloatFormat) -> dict[str, object]:
    return {
        "kind": "gelu-audit exhaustive reference table",
        "format": fmt.name,
        "formula": formula,
        "reference_version": REFERENCE_VERSION,
        "points": fmt.pattern_count,
    }


def _digest(meta: dict[str, object], arrays: dict[str, np.ndarray]) -> str:
    sha = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in _ARRAY_NAMES:
        sha.update(np.ascontiguousarray(arrays[name]).tobytes())
    return sha.hexdigest()


def cache_path(cache_dir: Path, formula: str, fmt: FloatFormat) -> Path:
    return Path(cache_dir) / f"reference-{fmt.name}-{formula}-v{REFERENCE_VERSION}.npz"


def load_cached_table(path: Path, formula: str, fmt: FloatFormat) -> ReferenceValues | None:
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


def save_table(path: Path, formula: str, fmt: FloatFormat, table: ReferenceValues) -> None:
    """Write a table atomically (temporary file, then rename) so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = _cache_meta(formula, fmt)
    arrays = {name: getattr(table, name) for name in _ARRAY_NAMES}
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, meta=json.dumps(meta), digest=_digest(meta, arrays), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class TableSource:
    """Where an exhaustive table came from, for the report."""

    path: str
    cached: bool
    rebuilt_reason: str | None


def exhaustive_table(
    formula: str,
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
    if path is not None:
        if path.exists():
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
