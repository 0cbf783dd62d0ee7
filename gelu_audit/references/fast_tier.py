"""The fast reference tier: correctly rounded GELU references at nanoseconds a point.

mpmath costs tens of microseconds a point, which rules out the 2^32 inputs of fp32. This tier
splits the inputs into regions and decides RN_T(f(x)) in each with vectorized float64 code,
falling back to mpmath (:func:`gelu_audit.references.mpmath_ziv.reference_point`) only for the points it
cannot decide (Ziv's strategy):

* ``trivial``: NaN, ±inf and ±0, whose values are known exactly.
* ``tiny``: |x| < 2^(−p−4). f(x) = x/2 + c·x² + O(x⁴) with c > 0 for all three formulas, and
  c·x² is below a quarter of T's spacing at x/2. x/2 is either a number of T (the answer) or
  exactly a midpoint between two (x's last bit falls off in T's subnormals); the true value lies
  just above the midpoint, so it rounds toward +∞. No float64 evaluation could see that x² term.
* ``saturated``: x > 0 with x·(1 − σ) below half the gap under x: RN_T(f(x)) = x.
* ``underflow``: x < 0 with |f(x)| below half T's smallest subnormal: RN_T(f(x)) = −0, decided
  in log space (``log_ndtr``), which also gives the binade far below float64's range.
* ``fast``: everything else, evaluated in float64 with the relative error bound
  :data:`FAST_ERROR_ULPS` · 2^−53 · amplification(x). If y·(1 ± bound) rounds to one value of T
  in one binade, that value is RN_T(f(x)).
* ``mpmath``: the rest (the interval straddles a rounding boundary or a binade), and for fp64
  the whole ``fast`` region, since float64 cannot decide roundings to float64.

The bound is an assumption the test suite checks: ``tests/references/test_fast_tier.py`` measures the
float64 evaluation against mpmath on every binade of both signs, the negative tail and tiny |x|,
and fails if any point exceeds it.
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gelu_audit.numerics.array_ops import NUMPY_OPS, Array, ArrayOps
from gelu_audit.numerics.exact_values import BINADE_FLOOR, ReferenceValues
from gelu_audit.numerics.formats import FloatFormat
from gelu_audit.numerics.formulas import Formula, Function
from gelu_audit.numerics.native import address, load_library
from gelu_audit.references.mpmath_ziv import compute_references
from gelu_audit.references.tiers import SCIPY_TIER, FastRegion, ReferenceTier

FAST_ERROR_ULPS = 64.0
"""Assumed bound on the float64 evaluation's error, in float64 ulps (2^−53 relative) times the
formula's amplification at x. The test suite measures the real worst case (about 5, see
docs/methodology.md) and fails if any point exceeds this."""

SATURATION_MARGIN = 2.0**-20
"""Relative error allowed on x·(1 − σ) when deciding that f(x) rounds to x."""

LOG_FLOOR = -(2.0**30)
"""Below 2^LOG_FLOOR, log-space binades lose mantissa precision in float64: such values are
stored at BINADE_FLOOR (mpmath stores them down to 2^BINADE_FLOOR). No figure depends on it."""

SATURATION_FROM = 2.0
"""No format saturates below x = 2 (1 − σ is still above 2^−9 there)."""

NO_DEFECT_FROM = 1000.0
"""From here on x·(1 − σ) underflows float64 for every formula: f(x) = x to double-double."""

UNDERFLOW_FROM = -2.0
"""No format underflows above x = −2."""

REGIONS = ("trivial", "tiny", "saturated", "underflow", "fast", "mpmath")
"""How each point was decided, in the order counts are reported."""

# --- float64 evaluation -------------------------------------------------------------------------


def fast_gelu(formula: Formula, x: Array, ops: ArrayOps = NUMPY_OPS) -> Array:
    """f(x) in float64 for inputs of formats with at most 24 significant bits (see
    :attr:`~gelu_audit.numerics.formulas.Formula.float64_value`); ``x`` an array of ``ops``."""
    with ops.errstate():
        return formula.float64_value(ops.float64(x), ops)


def fast_bound(formula: Formula, x: Array, ops: ArrayOps = NUMPY_OPS) -> Array:
    """The relative error bound of :func:`fast_gelu` at each x."""
    amp = formula.amplification_bits_array(ops.abs(ops.float64(x)), ops)
    return FAST_ERROR_ULPS * ops.pow2(ops.to_int32(amp - 53))


# --- rounding to the target format --------------------------------------------------------------


def binades(v: np.ndarray) -> np.ndarray:
    """floor(log2|v|) of nonzero float64 values, exactly (int32)."""
    return np.frexp(v)[1] - 1


def round_to_format(fmt: FloatFormat, v: np.ndarray) -> np.ndarray:
    """RN_T(v) for float64 ``v``: nearest-even, gradual underflow, overflow to ±inf.

    v is scaled by T's spacing at its binade (an exact power-of-two scaling), rounded to an
    integer with rint (ties to even) and scaled back: one rounding, straight from the float64.
    """
    if fmt.precision >= 53:
        return np.asarray(v, dtype=np.float64).copy()
    v = np.asarray(v, dtype=np.float64)
    quantum = np.maximum(binades(v), fmt.emin) - (fmt.precision - 1)
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = np.ldexp(np.rint(np.ldexp(v, -quantum)), quantum)
        return np.where(np.abs(rounded) > fmt.largest_finite, np.where(v > 0, np.inf, -np.inf), rounded)


def spacing_at(fmt: FloatFormat, v: np.ndarray) -> np.ndarray:
    """T's spacing in the binade of |v| (gradual underflow below emin)."""
    return np.ldexp(1.0, np.maximum(binades(v), fmt.emin) - (fmt.precision - 1))


# --- the tier -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierCounts:
    """How many points each region decided."""

    counts: dict[str, int]

    def __add__(self, other: TierCounts) -> TierCounts:
        return TierCounts({r: self.counts.get(r, 0) + other.counts.get(r, 0) for r in REGIONS})

    @staticmethod
    def zero() -> TierCounts:
        return TierCounts(dict.fromkeys(REGIONS, 0))


BLOCK = 1 << 15
"""Points per block: the temporaries of a 32K block (256 KiB) stay in cache and in malloc's heap;
from 64K on glibc returns them to the system and every block pays page faults again (measured
10x slower)."""

_CODE = {name: i for i, name in enumerate(REGIONS)}


@dataclass
class _Block:
    """The output arrays of one block, filled region by region."""

    binade: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    rounded: np.ndarray
    region: np.ndarray

    def assign(self, index, name: str, b, h, l, r) -> None:  # noqa: E741
        self.binade[index], self.hi[index], self.lo[index], self.rounded[index] = b, h, l, r
        self.region[index] = _CODE[name]


def tiny_bound(fmt: FloatFormat) -> float:
    """The region ``tiny`` is 0 < |x| < this (2^(−p−4)): there c·x² is far below half T's
    spacing at x/2, so RN_T(y) is x/2 (:func:`_tiny`)."""
    return math.ldexp(1.0, -fmt.precision - 4)


def _tiny(formula: Formula, fmt: FloatFormat, x: np.ndarray, halves_normal: bool = False) -> tuple:
    """Region ``tiny``: RN_T(x/2 + c·x²) is x/2 when x/2 is in T, else the neighbour toward +∞.

    x/2 can only miss T in T's subnormal range, where the spacing is the smallest subnormal s:
    x/2 is in T exactly when (x/2)/s is an integer, and otherwise x/2 ± s/2 are its neighbours.
    ``halves_normal``: the caller knows every |x/2| is a normal number of T, hence in T (most
    blocks of fp32's tiny region), and the test is skipped.
    """
    half = 0.5 * x
    if halves_normal:
        rounded = half
    else:
        s = fmt.smallest_subnormal
        units = half / s  # exact: a power-of-two scaling
        upper = -(-half - 0.5 * s)  # toward +∞; −(+0) = −0 keeps the sign when x = −s
        rounded = np.where(np.rint(units) == units, half, upper)
    mantissa, exponent = np.frexp(half)
    below = mantissa == -0.5  # f(x) is just above x/2 = −2^k: one binade lower
    hi = np.where(below, -2.0, 2 * mantissa)
    return exponent - 1 - below, hi, formula.series_coefficient * x * (2 * hi), rounded


def _saturated(formula: Formula, fmt: FloatFormat, x: np.ndarray) -> tuple:
    """Region ``saturated`` for x ≥ SATURATION_FROM: (decided mask, binade, hi, lo, rounded)."""
    defect = np.zeros_like(x)
    some = x < NO_DEFECT_FROM
    defect[some] = x[some] * formula.tail_mass(x[some])
    mantissa, exponent = np.frexp(x)
    power_of_two = mantissa == 0.5
    gap_below = np.where(power_of_two, 0.5, 1.0) * spacing_at(fmt, x)  # below 2^k: half the spacing
    done = defect * (1 + SATURATION_MARGIN) < 0.5 * gap_below
    b = (exponent - 1 - power_of_two)[done]
    scale = np.ldexp(1.0, -b)
    lo = (0.0 - defect[done]) * scale  # +0, not -0, where there is no defect: as a whole block gets
    return done, b, x[done] * scale, lo, x[done]


def _underflow(formula: Formula, fmt: FloatFormat, x: np.ndarray) -> tuple:
    """Region ``underflow`` for formula.deep_below < x ≤ UNDERFLOW_FROM:
    (decided, binade, hi, lo, rounded)."""
    log2y = formula.log2_magnitude(x)
    limit = fmt.emin - fmt.precision  # log2 of half the smallest subnormal
    done = log2y + 1e-6 + np.abs(log2y) * SATURATION_MARGIN < limit
    ly = log2y[done]
    floored = ly < LOG_FLOOR
    b = np.where(floored, BINADE_FLOOR, np.floor(np.where(floored, 0.0, ly)).astype(np.int64))
    h = np.where(floored, -1.0, -np.exp2(np.where(floored, 0.0, ly - b)))
    return done, b, h, 0.0, -0.0


COMPILED_SWITCH = "GELU_AUDIT_COMPILED_ZIV"
"""Set to 0 to run Ziv's test in NumPy's passes (the same decisions and values; for
comparisons and debugging)."""
_ZIV_ABI_VERSION = 1
"""``ziv_abi_version()`` of the ``_ziv.c`` this module calls."""


@functools.cache
def _ziv_library() -> ctypes.CDLL | None:
    """:func:`one_rounding` in one compiled pass (``_ziv.c``), or None: not built with this
    install, built from another source, or switched off (:data:`COMPILED_SWITCH`)."""
    loaded = load_library("gelu_audit.references._ziv", "ziv_abi_version", _ZIV_ABI_VERSION, COMPILED_SWITCH)
    return None if loaded is None else ziv_declared(loaded)


def ziv_declared(loaded: ctypes.CDLL) -> ctypes.CDLL:
    """``loaded`` (a build of ``_ziv.c``) with ``one_rounding``'s parameters declared for ctypes."""
    i64, f64, array = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
    loaded.one_rounding.restype = None
    loaded.one_rounding.argtypes = [i64, array, array, i64, i64, f64, array, array, array, array]
    return loaded


def _compiled_one_rounding(fmt: FloatFormat, y: Array, radius: Array) -> tuple | None:
    """:func:`one_rounding` by ``_ziv.c``, for NumPy's one-dimensional arrays and formats with
    at most 24 significant bits (its scalings by powers of two are exact there); None otherwise,
    or where the library is not here. One pass instead of NumPy's twenty (2026-11-30, fp32
    core). The binades come back as int64 (NumPy's frexp gives int32): the same values."""
    loaded = _ziv_library()
    if loaded is None or fmt.precision > 24 or not isinstance(y, np.ndarray) or y.ndim != 1:
        return None
    y = np.ascontiguousarray(y, np.float64)
    radius = np.ascontiguousarray(np.broadcast_to(radius, y.shape), np.float64)
    n = len(y)
    done, binade = np.empty(n, np.int64), np.empty(n, np.int64)
    hi, rounded = np.empty(n), np.empty(n)
    loaded.one_rounding(
        n,
        address(y, np.float64, n),
        address(radius, np.float64, n),
        fmt.precision,
        fmt.emin,
        fmt.largest_finite,
        address(done, np.int64, n),
        address(binade, np.int64, n),
        address(hi, np.float64, n),
        address(rounded, np.float64, n),
    )
    return done != 0, binade, hi, rounded


def one_rounding(fmt: FloatFormat, y: Array, radius: Array, ops: ArrayOps = NUMPY_OPS) -> tuple:
    """Ziv's test: where y ± radius (float64; radius ≥ 0 and absolute, or NaN or ∞, which
    decide nothing) lies in one binade of one sign and rounds to one value of T, that value is
    RN_T of anything in between.

    Returns (decided mask, y's binade, 2·y's signed mantissa, RN_T), the last three over every
    point (meaningful where decided). The decisions are those of rounding both ends with
    :func:`round_to_format` and comparing them, binades and signs (tested on edge cases:
    binade and sign crossings, ties, T's subnormals, overflow), in about half the NumPy
    passes: both ends share y's binade where it matters, so one frexp of |y| gives the spacing
    both are scaled by, and their magnitudes (|y| ∓ radius) stand for ends of either sign.
    ``y`` and ``radius`` are arrays of ``ops`` (NumPy's, or torch tensors on a device). For
    NumPy's, where the library is built, one compiled pass does the same (``_ziv.c``).
    """
    if ops is NUMPY_OPS and (compiled := _compiled_one_rounding(fmt, y, radius)) is not None:
        return compiled
    ay = ops.abs(y)
    mantissa, exponent = ops.frexp(ay)
    binade = exponent - 1
    quantum = ops.at_least(binade, fmt.emin) - (fmt.precision - 1)
    with ops.errstate():
        low = ops.ldexp(ay - radius, -quantum)  # in units of T's spacing at y's binade (exact
        # wherever it matters: it rounds only far below the binade's bottom)
        high = ops.ldexp(ay + radius, -quantum)
        units = ops.rint(low)
        bottom = ops.pow2(binade - quantum)  # 2^binade in those units
        magnitude = ops.ldexp(units, quantum)
        overflows = magnitude > fmt.largest_finite  # then the upper end does too: both ±inf
        # both ends in y's binade (never so for y = 0, ±inf or NaN), and one rounding
        done = (low >= bottom) & (high < 2 * bottom) & ((units == ops.rint(high)) | overflows)
    rounded = ops.copysign(ops.where(overflows, math.inf, magnitude), y)
    return done, binade, ops.copysign(2 * mantissa, y), rounded


def fast_region(formula: Formula, fmt: FloatFormat, x: Array, ops: ArrayOps = NUMPY_OPS) -> tuple:
    """Region ``fast``: float64 value ± bound in one rounding and one binade of T. Returns
    (decided mask, binade, 2·mantissa, lo, RN_T) at every point of ``x`` (an array of ``ops``),
    meaningful where decided."""
    y = fast_gelu(formula, x, ops)
    radius = ops.abs(y) * (fast_bound(formula, x, ops) + 2.0**-52)
    done, binade, hi, rounded = one_rounding(fmt, y, radius, ops)
    return done, binade, hi, 0.0, rounded


def _fill_block(formula: Formula, fmt: FloatFormat, x: np.ndarray, out: _Block) -> None:
    """Decide the points of one block that the regions before ``fast`` can, whole-block
    shortcuts first."""
    lowest, highest = x.min(), x.max()  # NaN if any NaN: no shortcut applies
    bound = tiny_bound(fmt)
    if (lowest >= 2.0**-1021 and highest < bound) or (-bound < lowest and highest <= -(2.0**-1021)):
        normal = 2 * fmt.smallest_normal
        out.assign(slice(None), "tiny", *_tiny(formula, fmt, x, lowest >= normal or highest <= -normal))
        return
    if lowest >= NO_DEFECT_FROM and highest < np.inf:
        mantissa, exponent = np.frexp(x)
        below = mantissa == 0.5  # f(2^k) is just under 2^k
        out.assign(slice(None), "saturated", exponent - 1 - below, np.where(below, 2.0, 2 * mantissa), 0.0, x)
        return
    if -np.inf < lowest and highest <= formula.deep_below:
        out.assign(slice(None), "underflow", BINADE_FLOOR, -1.0, 0.0, -0.0)
        return

    meets = _meets(lowest, highest)
    if meets(0.0, 0.0) or meets(np.inf, np.inf) or meets(-np.inf, -np.inf):  # (NaN: meets anything)
        ax = np.abs(x)
        trivial = np.flatnonzero(~(ax > 0) | (ax == np.inf))  # NaN, ±0, ±inf
        xt = x[trivial]
        # f(±0) = ±0, f(+inf) = +inf, f(-inf) = -0; NaN in, NaN out
        exact = np.where(np.isnan(xt), np.nan, np.where(xt == -np.inf, -0.0, xt))
        out.assign(trivial, "trivial", 0, exact, 0.0, exact)

    if meets(2.0**-1021, bound) or meets(-bound, -(2.0**-1021)):
        # (x/2 must be exact in float64: fp64 subnormal inputs go to mpmath instead.)
        ax = np.abs(x)
        tiny = np.flatnonzero((ax < bound) & (ax >= 2.0**-1021))
        out.assign(tiny, "tiny", *_tiny(formula, fmt, x[tiny]))

    nowhere = np.zeros(0, np.int64)
    saturated = meets(SATURATION_FROM, np.inf)
    underflow = meets(formula.deep_below, UNDERFLOW_FROM)
    for name, index, region in (
        (
            "saturated",
            np.flatnonzero((x >= SATURATION_FROM) & (x < np.inf)) if saturated else nowhere,
            _saturated,
        ),
        (
            "underflow",
            np.flatnonzero((x <= UNDERFLOW_FROM) & (x > formula.deep_below)) if underflow else nowhere,
            _underflow,
        ),
    ):
        if index.size:
            done, *values = region(formula, fmt, x[index])
            out.assign(index[done], name, *values)
    if meets(-np.inf, formula.deep_below):
        deep = np.flatnonzero((x <= formula.deep_below) & (x > -np.inf))
        out.assign(deep, "underflow", BINADE_FLOOR, -1.0, 0.0, -0.0)


def _meets(lowest: float, highest: float) -> Callable[[float, float], bool]:
    """Whether a block whose inputs lie in [lowest, highest] may hold one in [low, high]:
    where it cannot, a region's index set is empty and is not searched for (most blocks of the
    core meet no region but ``fast``). A NaN input makes ``lowest`` and ``highest`` NaN, and
    then every region is searched."""

    def meets(low: float, high: float) -> bool:
        return not (highest < low or lowest > high)

    return meets


def fill_rest(region: Callable[[np.ndarray], tuple], x: np.ndarray, out: _Block, name: str) -> None:
    """Decide by ``region`` (returning the decided mask, then the values at every point given
    it: arrays, or one scalar for all) the points of the block that no region has decided yet.
    Where that is the whole block and ``region`` decides all of it (most blocks of the core),
    the inputs and outputs go as slices, not through index arrays: the same values without two
    copies and a scatter of the block. (The mask is applied here, in NumPy: a tier on a GPU
    sends its answers back whole, with no selection and no synchronisation there.)"""
    rest = np.flatnonzero(out.region < 0)
    if not rest.size:
        return
    whole = rest.size == len(x)
    done, *values = region(x if whole else x[rest])
    if whole and done.all():
        out.assign(slice(None), name, *values)
        return
    out.assign(rest[done], name, *(v[done] if isinstance(v, np.ndarray) else v for v in values))


Fallback = Callable[[Function, FloatFormat, np.ndarray], ReferenceValues]
"""Computes mpmath references for the points the fast tier leaves undecided."""


def fast_references(
    formula: Formula,
    fmt: FloatFormat,
    values: np.ndarray,
    fallback: Fallback | None = None,
    tier: ReferenceTier = SCIPY_TIER,
) -> tuple[ReferenceValues, TierCounts]:
    """References for float64 inputs of ``fmt`` by region, mpmath only where undecided.

    ``fallback`` defaults to :func:`~gelu_audit.references.mpmath_ziv.compute_references` in this process;
    pass a parallel one when many points may need it (fp64). ``tier``: where the region
    ``fast`` runs (:mod:`~gelu_audit.references.tiers`).

    Returns the same data as :func:`~gelu_audit.references.mpmath_ziv.compute_references` with the same
    ``rounded`` values and binades; mantissas agree to the region's accuracy (double-double in
    ``tiny`` and ``saturated``, about 2^−40 in ``fast``, 2^−20 in ``underflow``).
    """
    return decide_by_blocks(
        lambda x, block: _fill_block(formula, fmt, x, block),
        lambda x, ops: fast_region(formula, fmt, x, ops),
        formula,
        fmt,
        values,
        fallback,
        tier,
    )


BlockFiller = Callable[[np.ndarray, "_Block"], None]
"""Decides what it can of one block of inputs by the regions before ``fast``, region by region
(leaving the rest at −1)."""


def decide_by_blocks(
    fill: BlockFiller,
    fast: FastRegion,
    function: Function,
    fmt: FloatFormat,
    values: np.ndarray,
    fallback: Fallback | None,
    tier: ReferenceTier = SCIPY_TIER,
) -> tuple[ReferenceValues, TierCounts]:
    """The tier's frame, for a formula or a derivative: ``fill`` each block of BLOCK inputs,
    then the region ``fast`` for the rest (not for fp64: float64 cannot decide roundings to
    float64), then mpmath (``fallback``) for whatever is left; with how many points each region
    decided.

    The SciPy tier runs ``fast`` in each block right after ``fill``, while the block is in
    cache; another tier takes the rest of every block at once (one array sent to its device, its
    answers brought back whole)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    # every point is assigned below (a region or mpmath): no need to zero 32 bytes a point first
    out = _Block(np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n), np.full(n, -1, np.int8))
    decide = (lambda rest: tier.run(fast, rest)) if fmt.precision < 53 else None
    for start in range(0, n, BLOCK):
        part = slice(start, start + BLOCK)
        block = _Block(out.binade[part], out.hi[part], out.lo[part], out.rounded[part], out.region[part])
        fill(x[part], block)
        if decide is not None and tier.decides_by_block:
            fill_rest(decide, x[part], block, "fast")
    if decide is not None and not tier.decides_by_block:
        fill_rest(decide, x, out, "fast")
    undecided = np.flatnonzero(out.region < 0)
    if undecided.size:
        slow = (fallback or compute_references)(function, fmt, x[undecided])
        out.assign(undecided, "mpmath", slow.binade, slow.mant_hi, slow.mant_lo, slow.rounded)
    return ReferenceValues(out.binade, out.hi, out.lo, out.rounded), TierCounts(
        {name: int(np.count_nonzero(out.region == i)) for i, name in enumerate(REGIONS)}
    )
