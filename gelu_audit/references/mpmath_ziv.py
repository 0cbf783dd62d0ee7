"""Correctly rounded GELU references in mpmath, by Ziv's strategy.

mpmath gives no rigorous error bound, so each evaluation assumes a generous one (2^8
working-precision ulps times the formula's condition number) and raises the precision until
the whole interval y·(1 ± bound) rounds to one value of the target format and lies in one
binade. The test suite checks the results against rigorous arb balls. Results are
:class:`~gelu_audit.numerics.exact_values.ReferenceValues`.
May import: numerics.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gelu_audit.numerics.exact_values import BINADE_FLOOR, ReferenceValues
from gelu_audit.numerics.formats import FORMATS, FloatFormat, round_mpf
from gelu_audit.numerics.formulas import FUNCTIONS, Derivative, Function

if TYPE_CHECKING:  # pragma: no cover
    import mpmath

REFERENCE_VERSION = 1
"""Bump when the reference computation changes: cached tables of another version are rebuilt."""

MAX_PRECISION = 1 << 16
"""Give up raising the working precision past this many bits (only an exact tie gets there)."""

ASSUMED_ERROR_BITS = 8
"""mpmath's functions are accurate to about an ulp; we assume up to 2^8 working ulps."""


class UndecidedRoundingError(RuntimeError):
    """The rounding of a reference value could not be decided (an exact tie): a bug."""


@dataclass(frozen=True)
class ReferencePoint:
    """The exact value of a formula at one input, as stored in :class:`ReferenceValues`."""

    binade: int
    mant_hi: float
    mant_lo: float
    rounded: float


def reference_point(function: Function, fmt: FloatFormat, x: float) -> ReferencePoint:
    """Compute f(x) (or f′(x)) with the precision raised until RN_fmt of it and its binade are
    certain."""
    if isinstance(function, Derivative):
        return _derivative_point(function, fmt, x)

    formula = function
    if math.isnan(x):
        return ReferencePoint(0, math.nan, 0.0, math.nan)
    if math.isinf(x):  # GELU(+inf) = +inf; GELU(-inf) = -0, the limit from below.
        return ReferencePoint(0, math.inf, 0.0, math.inf) if x > 0 else ReferencePoint(0, -0.0, 0.0, -0.0)
    if x == 0:
        return ReferencePoint(0, x, 0.0, x)  # f(±0) = ±0 exactly, sign kept

    def value(xm: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
        y = formula.mpmath_value(xm)
        return y, abs(y)

    return _ziv(formula, fmt, x, value, formula.amplification_bits(x), forward=True)


def _derivative_point(derivative: Derivative, fmt: FloatFormat, x: float) -> ReferencePoint:
    """f′(x): its limits, its value at 0 and its flat tails exactly, the rest by Ziv's loop with
    the error bounded by the magnitudes of its two terms (they cancel near its zero)."""
    if math.isnan(x):
        return ReferencePoint(0, math.nan, 0.0, math.nan)
    if x == 0:
        return ReferencePoint(-1, 1.0, 0.0, 0.5)  # f′(±0) = 1/2 exactly
    if x >= derivative.flat_from:  # 1 + δ, 0 < δ < 2^−1100: rounds to 1 in every format
        return ReferencePoint(0, 1.0, 0.0, 1.0)
    if x <= -derivative.flat_from:  # −δ, 0 < δ < 2^−1100: −0 in every format, the limit at −∞
        return ReferencePoint(BINADE_FLOOR, -1.0, 0.0, -0.0)

    def value(xm: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
        a, b = derivative.mpmath_terms(xm)
        return a + b, abs(a) + abs(b)

    return _ziv(derivative, fmt, x, value, derivative.amplification_bits(x), forward=False)


def _ziv(
    function: Function,
    fmt: FloatFormat,
    x: float,
    value: Callable[[mpmath.mpf], tuple[mpmath.mpf, mpmath.mpf]],
    amp: int,
    forward: bool,
) -> ReferencePoint:
    """Ziv's loop: ``value`` gives the result and the magnitude its error scales with, at the
    working precision; the precision doubles until the error interval rounds to one value in
    one binade."""
    import mpmath

    # For tiny |x|, f(x) = x/2 + x²/√(2π) + … can sit within |x|·ulp of a rounding boundary
    # (x/2 may be an exact midpoint), and f′(x) = 1/2 + 2x/√(2π) + … just below 1/2 is in the
    # binade below it: start with enough bits to see the term in x.
    tiny_bits = max(0, -math.frexp(x)[1])
    precision = fmt.precision + 40 + amp + ASSUMED_ERROR_BITS + tiny_bits
    xm = mpmath.mpf(x)
    while precision <= MAX_PRECISION:
        with mpmath.workprec(precision):
            y, scale = value(xm)
        good_bits = precision - ASSUMED_ERROR_BITS - amp
        radius = mpmath.ldexp(scale, -good_bits)
        low = mpmath.fsub(y, radius, exact=True)
        high = mpmath.fadd(y, radius, exact=True)
        rounded = round_mpf(fmt, low)
        rounded_high = round_mpf(fmt, high)
        same_rounding = rounded == rounded_high and math.copysign(1.0, rounded) == math.copysign(
            1.0, rounded_high
        )
        binade = _binade(y) if y != 0 else 0
        straddles_binades = y == 0 or low * high <= 0 or _binade(low) != _binade(high)
        if forward and straddles_binades and _is_power_of_two(x) and x > 0:
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
    raise UndecidedRoundingError(f"cannot decide the rounding of {function}({x!r}) to {fmt}")


def _is_power_of_two(x: float) -> bool:
    return math.frexp(x)[0] in (0.5, -0.5)


def _binade(y: mpmath.mpf) -> int:
    _sign, _man, exp, bc = y._mpf_
    return int(exp + bc - 1)


# --- arrays of reference values ---------------------------------------------------------------


def _reference_chunk(formula_name: str, fmt_name: str, values: np.ndarray) -> ReferenceValues:
    """Worker: references for one chunk of inputs (module level so processes can pickle it)."""
    fmt, formula = FORMATS[fmt_name], FUNCTIONS[formula_name]
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
    formula: Function,
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
            parts.append(_reference_chunk(formula.name, fmt.name, chunk))
            if progress:
                progress(len(chunk))
        return ReferenceValues.concatenate(parts)
    import multiprocessing
    import multiprocessing.context

    # NOTE: fork where the platform has it: "spawn" re-imports the caller's __main__, which
    # fails from stdin or a notebook. The workers run mpmath only, never torch's thread pools.
    # Once JAX is loaded (its rows ran), its runtime threads make a fork unsafe (JAX warns of
    # deadlocks), so the workers come from a forkserver, started clean, instead.
    methods = multiprocessing.get_all_start_methods()
    context: multiprocessing.context.BaseContext
    if "fork" in methods and "jax" not in sys.modules:
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_reference_chunk, formula.name, fmt.name, c) for c in chunks]
        parts = []
        for future, chunk in zip(futures, chunks):
            parts.append(future.result())
            if progress:
                progress(len(chunk))
    return ReferenceValues.concatenate(parts)
