"""The formulas an implementation can claim: the exact GELU (erf) and its tanh and sigmoid forms.

Each :class:`Formula` is one value that carries everything the rest of the tool needs to know
about it, so adding a formula is a one-place change and no code compares formula names:

* its exact constants (√(2/π) exact, 0.044715 and 1.702 as exact decimals);
* its evaluation in mpmath, in a cancellation-free form, at the working precision in effect;
* its float64 evaluation for the fast reference tier, with the relative-error amplification
  bound that tier's Ziv test uses (and the scalar bound the mpmath Ziv loop uses);
* the facts the fast tier's shortcut regions rest on: the series coefficient c of
  f(x) = x/2 + c·x² + O(x⁴), the tail mass 1 − σ for x > 0, log2|f(x)| for x < 0, and where
  f(x) is certainly below every format's range.

Each formula's derivative is a :class:`Derivative` (``ERF.derivative``): what a backward kernel
computes with grad_output = 1, written as two cancellation-free terms whose sum is f′(x), so the
mpmath Ziv loop can bound the error by their magnitudes where they cancel (GELU′ has a zero
near x ≈ −0.7518). :class:`Pass` says which of the two an audit measures.
numpy, scipy and mpmath are imported when a formula is evaluated, never when this module loads:
the command line names the formulas in ``--help``, which must stay instant.
The float64 forms the fast tier's ``fast`` region uses (``float64_value``, ``float64_terms``
and the amplification bounds for arrays) take an :class:`~gelu_audit.numerics.array_ops.ArrayOps`:
the same expressions run by NumPy/SciPy or by torch, from primitives both compute alike.

May import: numerics.array_ops.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gelu_audit.numerics.array_ops import NUMPY_OPS, ArrayOps

if TYPE_CHECKING:  # pragma: no cover
    import mpmath
    import numpy as np

TANH_CUBIC = "0.044715"
"""The cubic coefficient of the tanh form, as the exact decimal it is written as."""
SIGMOID_SLOPE = "1.702"
"""The slope of the sigmoid form, as the exact decimal it is written as."""

TANH_CUBIC_F64 = float(TANH_CUBIC)
SIGMOID_SLOPE_F64 = float(SIGMOID_SLOPE)
SQRT_2_OVER_PI_F64 = math.sqrt(2 / math.pi)
"""The constants as the nearest float64: what float64 evaluations and kernels compute with."""

ASYMPTOTIC_FROM = 30.0
"""From |x| = 30 on, erfc(|x|/√2) is summed from its asymptotic series with w² = x²/2 exact."""

_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_LN2 = math.log(2.0)


class _AmplificationBits:
    """The amplification bound as whole bits, for a formula and a derivative alike."""

    amplification: Callable[[float], float]
    amplification_array: Callable[[np.ndarray, ArrayOps], np.ndarray]

    def amplification_bits(self, x: float) -> int:
        """The amplification bound at ``x`` as a whole number of bits (≥ 0)."""
        return max(0, math.ceil(self.amplification(abs(x))))

    def amplification_bits_array(self, ax: np.ndarray, ops: ArrayOps = NUMPY_OPS) -> np.ndarray:
        """:meth:`amplification_bits` for an array of |x| (int64)."""
        with ops.errstate():
            bits = self.amplification_array(ax, ops)
        return ops.to_int64(ops.at_least(ops.ceil(bits), 0))


@dataclass(frozen=True)
class Formula(_AmplificationBits):
    """One formula an implementation may claim, with its evaluations and error bounds."""

    name: str
    """The id in reports, options and plugin claims: ``erf``, ``tanh`` or ``sigmoid``."""
    exact_function: str
    """The exact real function it stands for, for people."""
    mpmath_value: Callable[[mpmath.mpf], mpmath.mpf]
    """f(x) in mpmath at the working precision in effect (cancellation-free)."""
    float64_value: Callable[[np.ndarray, ArrayOps], np.ndarray]
    """f(x) in float64 for inputs of at most 24 significant bits (the fast tier), from the
    primitives of the given :class:`~gelu_audit.numerics.array_ops.ArrayOps`."""
    amplification: Callable[[float], float]
    """log2 of a bound on how much the formula amplifies relative rounding errors at x."""
    amplification_array: Callable[[np.ndarray, ArrayOps], np.ndarray]
    """The same bound for an array of |x| (the same expressions, vectorized)."""
    series_coefficient: float
    """c in f(x) = x/2 + c·x² + O(x⁴): decides the rounding of tiny |x| exactly."""
    tail_mass: Callable[[np.ndarray], np.ndarray]
    """1 − σ for x > 0, so that x − f(x) = x·tail_mass(x)."""
    log2_magnitude: Callable[[np.ndarray], np.ndarray]
    """log2|f(x)| for x < 0, without forming f(x) (it may be far below float64's range)."""
    deep_below: float
    """Below this x, log2|f(x)| is certainly below −2^30 (e.g. erf: |f(x)| ≤ e^(−x²/2))."""
    saturated_from: float
    """From this x on (a power of two), x·tail_mass(x) is 0 in float64: f(x) = x to
    double-double, so RN_T(y) = x with no residual at all (the known region ``saturated``)."""
    underflowed_below: float
    """At or below this x (a power of two), log2|f(x)| < −2000: RN_T(y) = −0 in every format
    the fast tier decides, with no residual even scaled to T's ulps (the known region
    ``underflow``)."""

    def __str__(self) -> str:
        return self.name

    @property
    def derivative(self) -> Derivative:
        """f′: the function a backward kernel computes (with grad_output = 1)."""
        return DERIVATIVES[self.name]


class Pass(enum.Enum):
    """Which function of GELU an audit measures: the forward value or the gradient."""

    FORWARD = "forward"
    BACKWARD = "backward"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Derivative(_AmplificationBits):
    """f′ of one formula, for the gradient audit (GELU′(x), what backward computes with
    grad_output = 1).

    Its limits are GELU′(−∞) = −0 (every form's derivative approaches 0 from below) and
    GELU′(+∞) = 1 (from above); GELU′(±0) = 1/2 exactly. Beyond ±``flat_from`` the distance to
    those limits is below 2^−1100, so the value rounds to −0 or to 1 in every format.
    """

    of: Formula
    exact_function: str
    mpmath_terms: Callable[[mpmath.mpf], tuple[mpmath.mpf, mpmath.mpf]]
    """Two terms whose sum is f′(x), each without cancellation (at the precision in effect);
    the Ziv loop bounds the error by the sum of their magnitudes."""
    amplification: Callable[[float], float]
    """log2 of a bound on how much the terms amplify relative rounding errors at |x|."""
    flat_from: float
    """For x ≥ flat_from, RN(f′(x)) = 1 in every format; for x ≤ −flat_from, −0."""
    float64_terms: Callable[[np.ndarray, ArrayOps], tuple[np.ndarray, np.ndarray]]
    """The two terms in float64, each to a few ulps times ``amplification`` (the fast tier),
    for inputs of at most 24 significant bits; exact where a term underflows is not promised:
    the tier only trusts results whose terms are normal numbers."""
    log2_magnitude: Callable[[np.ndarray], np.ndarray]
    """log2|f′(x)| for x ≤ −2, without forming f′(x) (it may be far below float64's range)."""
    excess: Callable[[np.ndarray], np.ndarray]
    """f′(x) − 1 > 0 for x ≥ 2, without cancellation (f′ approaches 1 from above)."""
    amplification_array: Callable[[np.ndarray, ArrayOps], np.ndarray]
    """``amplification`` for an array of |x| (the same expressions, vectorized)."""

    @property
    def name(self) -> str:
        """The key of its reference tables and caches, e.g. ``erf-grad``."""
        return f"{self.of.name}-grad"

    def __str__(self) -> str:
        return f"{self.of.name}′"


# --- erf: the exact GELU, x·Φ(x) = (x/2)·erfc(−x/√2) -------------------------------------------


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


def _erf_mpmath(x: mpmath.mpf) -> mpmath.mpf:
    import mpmath

    if abs(x) >= ASYMPTOTIC_FROM:
        tail = _erfc_tail(x)  # erfc(|x|/√2); erfc(−|x|/√2) = 2 − tail
        if tail is not None:
            return x / 2 * (tail if x < 0 else 2 - tail)
    return x / 2 * mpmath.erfc(-x / mpmath.sqrt(2))


def _erfc_half_x_squared(x: np.ndarray, ops: ArrayOps) -> tuple[np.ndarray, np.ndarray]:
    """erfcx(|x|/√2) and e^(−x²/2), whose product is erfc(|x|/√2): x² is exact (48 bits), so
    the exponential carries no amplified argument error, and erfcx is well conditioned. (Not
    erf or erfc themselves: torch's and SciPy's differ in the last bits, erfcx and exp do
    not; see :mod:`~gelu_audit.numerics.array_ops`.)"""
    return ops.erfcx(ops.abs(x) * _SQRT1_2), ops.exp(-0.5 * (x * x))


def _erf_float64(x: np.ndarray, ops: ArrayOps) -> np.ndarray:
    """For x < 0, (x/2)·erfc(|x|/√2); for x ≥ 0, (x/2)·(2 − erfc(x/√2)), with 2 − erfc in
    [1, 2]: erfc(|x|/√2) from :func:`_erfc_half_x_squared` on both sides."""
    scaled, gauss = _erfc_half_x_squared(x, ops)
    return ops.where(x < 0, 0.5 * x * scaled * gauss, 0.5 * x * (2.0 - scaled * gauss))


def _erf_amplification(ax: float) -> float:
    """The argument w = −x/√2 carries a rounding error that erfc amplifies by at most
    2w² + 2 = x² + 2 (erfc's condition number for large w); past ASYMPTOTIC_FROM the series
    takes w² exactly and only a few roundings remain."""
    return math.log2(2.0 + ax * ax) if ax < ASYMPTOTIC_FROM else 4.0


def _erf_amplification_array(ax: np.ndarray, ops: ArrayOps) -> np.ndarray:
    return ops.where(ax < ASYMPTOTIC_FROM, ops.log2(2.0 + ax * ax), 4.0)


def _erf_tail_mass(x: np.ndarray) -> np.ndarray:
    import numpy as np
    from scipy import special

    with np.errstate(over="ignore", under="ignore"):
        return 0.5 * special.erfc(x * _SQRT1_2)


def _erf_log2_magnitude(x: np.ndarray) -> np.ndarray:
    import numpy as np
    from scipy import special

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        return np.log2(np.abs(x)) + special.log_ndtr(x) / _LN2


# --- tanh: (x/2)·(1 + tanh(√(2/π)·(x + 0.044715·x³))) = x·σ(2u) ---------------------------


def _tanh_mpmath(x: mpmath.mpf) -> mpmath.mpf:
    # (x/2)(1 + tanh(u)) = x·σ(2u): no cancellation for negative x.
    import mpmath

    u = mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf(TANH_CUBIC) * x**3)
    return x / (1 + mpmath.exp(-2 * u))


def _tanh_argument(x: np.ndarray) -> np.ndarray:
    """t = 2u for the tail and log-space evaluations (x³ as a power, as they always were)."""
    return 2 * SQRT_2_OVER_PI_F64 * (x + TANH_CUBIC_F64 * x**3)


def _tanh_product_argument(x: np.ndarray) -> np.ndarray:
    """t = 2u with x³ as x·x·x, for the fast region: a power is not the same bits in NumPy and
    torch, products are."""
    return 2.0 * SQRT_2_OVER_PI_F64 * (x + TANH_CUBIC_F64 * (x * x * x))


def _tanh_float64(x: np.ndarray, ops: ArrayOps) -> np.ndarray:
    return x / (1.0 + ops.exp(-_tanh_product_argument(x)))


def _tanh_amplification(ax: float) -> float:
    """σ(t) has condition number |t|·(1 − σ(t)) ≤ |t|, and t itself collects a few roundings."""
    t = 2 * SQRT_2_OVER_PI_F64 * (ax + TANH_CUBIC_F64 * (ax * ax * ax)) if ax < 1e100 else math.inf
    return math.log2(6 * (t + 1)) if math.isfinite(t) else 3 * math.log2(ax) + 3


def _tanh_amplification_array(ax: np.ndarray, ops: ArrayOps) -> np.ndarray:
    t = 2 * SQRT_2_OVER_PI_F64 * (ax + TANH_CUBIC_F64 * (ax * ax * ax))
    return ops.where(ops.isfinite(t), ops.log2(6 * (t + 1)), 3 * ops.log2(ax) + 3)


def _tanh_tail_mass(x: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore", under="ignore"):
        return 1.0 / (1.0 + np.exp(_tanh_argument(x)))


def _logistic_log2_magnitude(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log2|x·σ(t)| for t < 0: log σ(t) = t − log(1 + e^t)."""
    import numpy as np

    return np.log2(np.abs(x)) + (t - np.log1p(np.exp(t))) / _LN2


def _tanh_log2_magnitude(x: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        return _logistic_log2_magnitude(x, _tanh_argument(x))


# --- sigmoid: x·σ(1.702·x) ------------------------------------------------------------------------


def _sigmoid_mpmath(x: mpmath.mpf) -> mpmath.mpf:
    import mpmath

    return x / (1 + mpmath.exp(-mpmath.mpf(SIGMOID_SLOPE) * x))


def _sigmoid_float64(x: np.ndarray, ops: ArrayOps) -> np.ndarray:
    return x / (1.0 + ops.exp(-(SIGMOID_SLOPE_F64 * x)))


def _sigmoid_amplification(ax: float) -> float:
    """σ(t) has condition number ≤ |t| with t = 1.702·x, plus a rounding or two."""
    return 1 + math.log2(SIGMOID_SLOPE_F64 * ax + 1) if ax < 1e300 else math.log2(ax) + 2


def _sigmoid_amplification_array(ax: np.ndarray, ops: ArrayOps) -> np.ndarray:
    return 1 + ops.log2(SIGMOID_SLOPE_F64 * ax + 1)


def _sigmoid_tail_mass(x: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore", under="ignore"):
        return 1.0 / (1.0 + np.exp(SIGMOID_SLOPE_F64 * x))


def _sigmoid_log2_magnitude(x: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        return _logistic_log2_magnitude(x, SIGMOID_SLOPE_F64 * x)


ERF = Formula(
    name="erf",
    exact_function="x·Φ(x) = (x/2)·erfc(−x/√2)  (exact GELU)",
    mpmath_value=_erf_mpmath,
    float64_value=_erf_float64,
    amplification=_erf_amplification,
    amplification_array=_erf_amplification_array,
    series_coefficient=1 / math.sqrt(2 * math.pi),
    tail_mass=_erf_tail_mass,
    log2_magnitude=_erf_log2_magnitude,
    deep_below=-40000.0,
    saturated_from=64.0,
    underflowed_below=-64.0,
)
TANH = Formula(
    name="tanh",
    exact_function=f"(x/2)·(1 + tanh(√(2/π)·(x + {TANH_CUBIC}·x³)))",
    mpmath_value=_tanh_mpmath,
    float64_value=_tanh_float64,
    amplification=_tanh_amplification,
    amplification_array=_tanh_amplification_array,
    series_coefficient=1 / math.sqrt(2 * math.pi),
    tail_mass=_tanh_tail_mass,
    log2_magnitude=_tanh_log2_magnitude,
    deep_below=-2500.0,
    saturated_from=32.0,
    underflowed_below=-32.0,
)
SIGMOID = Formula(
    name="sigmoid",
    exact_function=f"x·σ({SIGMOID_SLOPE}·x)",
    mpmath_value=_sigmoid_mpmath,
    float64_value=_sigmoid_float64,
    amplification=_sigmoid_amplification,
    amplification_array=_sigmoid_amplification_array,
    series_coefficient=SIGMOID_SLOPE_F64 / 4,
    tail_mass=_sigmoid_tail_mass,
    log2_magnitude=_sigmoid_log2_magnitude,
    deep_below=-5e8,
    saturated_from=512.0,
    underflowed_below=-1024.0,
)

FORMULAS: dict[str, Formula] = {f.name: f for f in (ERF, TANH, SIGMOID)}
"""Every formula by id, in report order."""

FORMULA_NAMES: tuple[str, ...] = tuple(FORMULAS)


# --- the derivatives ------------------------------------------------------------------------------


def _logistic_pair(t: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
    """σ(t) and 1 − σ(t), each computed directly (no 1 − σ cancellation)."""
    import mpmath

    return 1 / (1 + mpmath.exp(-t)), 1 / (1 + mpmath.exp(t))


def _erf_derivative_terms(x: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
    """Φ(x) = erfc(−x/√2)/2 and x·φ(x) = x·e^(−x²/2)/√(2π): never 1 + erf(x/√2), which cancels
    in the negative tail."""
    import mpmath

    phi = mpmath.exp(-(x * x) / 2) / mpmath.sqrt(2 * mpmath.pi)
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2, x * phi


def _erf_derivative_amplification(ax: float) -> float:
    """erfc(w) and e^(−x²/2) both amplify an argument error by about x² + 2; one bit more
    for the product with x."""
    return 1 + math.log2(2.0 + ax * ax)


def _erf_derivative_amplification_array(ax: np.ndarray, ops: ArrayOps) -> np.ndarray:
    return 1 + ops.log2(2.0 + ax * ax)


def _tanh_derivative_terms(x: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
    """d/dx x·σ(t) = σ(t) + x·σ(t)·(1 − σ(t))·t′, with t = 2√(2/π)(x + 0.044715x³) and
    t′ = 2√(2/π)(1 + 3·0.044715x²)."""
    import mpmath

    c = 2 * mpmath.sqrt(2 / mpmath.pi)
    a = mpmath.mpf(TANH_CUBIC)
    s, sbar = _logistic_pair(c * (x + a * x**3))
    return s, x * s * sbar * (c * (1 + 3 * a * x * x))


def _tanh_derivative_amplification(ax: float) -> float:
    return _tanh_amplification(ax) + 2


def _sigmoid_derivative_terms(x: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
    """d/dx x·σ(kx) = σ(kx) + kx·σ(kx)·(1 − σ(kx)), k = 1.702."""
    import mpmath

    t = mpmath.mpf(SIGMOID_SLOPE) * x
    s, sbar = _logistic_pair(t)
    return s, t * s * sbar


def _sigmoid_derivative_amplification(ax: float) -> float:
    return _sigmoid_amplification(ax) + 2


def _erf_derivative_float64(x: np.ndarray, ops: ArrayOps) -> tuple[np.ndarray, np.ndarray]:
    """Φ(x) and x·φ(x). For x < 0, Φ = ½·erfc(|x|/√2); for x ≥ 0, Φ = ½·(2 − erfc(x/√2)), in
    [½, 1]: erfc(|x|/√2) from :func:`_erfc_half_x_squared` on both sides."""
    scaled, gauss = _erfc_half_x_squared(x, ops)
    cdf = ops.where(x < 0, 0.5 * scaled * gauss, 0.5 * (2.0 - scaled * gauss))
    return cdf, x * gauss * _INV_SQRT_2PI


def _erf_derivative_log2(x: np.ndarray) -> np.ndarray:
    """log2|e^(−x²/2)·(½·erfcx(|x|/√2) + x/√(2π))|: the bracket is negative and free of
    cancellation for x ≤ −2."""
    import numpy as np
    from scipy import special

    bracket = 0.5 * special.erfcx(np.abs(x) * _SQRT1_2) + x * _INV_SQRT_2PI
    return np.log2(np.abs(bracket)) - 0.5 * (x * x) / _LN2


def _erf_derivative_excess(x: np.ndarray) -> np.ndarray:
    """x·φ(x) − (1 − Φ(x)) = e^(−x²/2)·(x/√(2π) − ½·erfcx(x/√2)): the second term is about
    1/x² of the first for x ≥ 2, so no cancellation."""
    import numpy as np
    from scipy import special

    with np.errstate(under="ignore"):
        return np.exp(-0.5 * (x * x)) * (x * _INV_SQRT_2PI - 0.5 * special.erfcx(x * _SQRT1_2))


def _logistic_float64(t: np.ndarray, ops: ArrayOps = NUMPY_OPS) -> tuple[np.ndarray, np.ndarray]:
    """σ(t) and 1 − σ(t) in float64, each directly."""
    with ops.errstate():
        return 1.0 / (1.0 + ops.exp(-t)), 1.0 / (1.0 + ops.exp(t))


def _logistic_derivative_log2(x: np.ndarray, t: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """log2|σ(t)·(1 + x·(1 − σ(t))·t′)| for t ≪ 0 (``slope`` = t′), in log space."""
    import numpy as np

    _, sbar = _logistic_float64(t)
    log_sigma = t - np.log1p(np.exp(t))
    return log_sigma / _LN2 + np.log2(np.abs(1.0 + x * sbar * slope))


def _tanh_slope(x: np.ndarray) -> np.ndarray:
    return 2 * SQRT_2_OVER_PI_F64 * (1.0 + 3 * TANH_CUBIC_F64 * (x * x))


def _tanh_derivative_float64(x: np.ndarray, ops: ArrayOps) -> tuple[np.ndarray, np.ndarray]:
    s, sbar = _logistic_float64(_tanh_product_argument(x), ops)
    return s, x * s * sbar * _tanh_slope(x)


def _tanh_derivative_log2(x: np.ndarray) -> np.ndarray:
    return _logistic_derivative_log2(x, _tanh_argument(x), _tanh_slope(x))


def _tanh_derivative_excess(x: np.ndarray) -> np.ndarray:
    """(1 − σ(t))·(x·σ(t)·t′ − 1), with x·σ·t′ ≥ 3 for x ≥ 2."""
    s, sbar = _logistic_float64(_tanh_argument(x))
    return sbar * (x * s * _tanh_slope(x) - 1.0)


def _sigmoid_derivative_float64(x: np.ndarray, ops: ArrayOps) -> tuple[np.ndarray, np.ndarray]:
    t = SIGMOID_SLOPE_F64 * x
    s, sbar = _logistic_float64(t, ops)
    return s, t * s * sbar


def _sigmoid_derivative_log2(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return _logistic_derivative_log2(x, SIGMOID_SLOPE_F64 * x, np.full_like(x, SIGMOID_SLOPE_F64))


def _sigmoid_derivative_excess(x: np.ndarray) -> np.ndarray:
    """(1 − σ(t))·(t·σ(t) − 1), t = 1.702x, with t·σ(t) ≥ 3 for x ≥ 2."""
    t = SIGMOID_SLOPE_F64 * x
    s, sbar = _logistic_float64(t)
    return sbar * (t * s - 1.0)


DERIVATIVES: dict[str, Derivative] = {
    d.of.name: d
    for d in (
        Derivative(
            ERF,
            "Φ(x) + x·φ(x)  (exact GELU′)",
            _erf_derivative_terms,
            _erf_derivative_amplification,
            flat_from=40.0,  # |x|·φ(x) < e^(−797) there
            float64_terms=_erf_derivative_float64,
            log2_magnitude=_erf_derivative_log2,
            excess=_erf_derivative_excess,
            amplification_array=_erf_derivative_amplification_array,
        ),
        Derivative(
            TANH,
            "σ(t) + x·σ(t)·(1 − σ(t))·t′,  t = 2√(2/π)·(x + 0.044715·x³)",
            _tanh_derivative_terms,
            _tanh_derivative_amplification,
            flat_from=40.0,  # |t| > 4500 there
            float64_terms=_tanh_derivative_float64,
            log2_magnitude=_tanh_derivative_log2,
            excess=_tanh_derivative_excess,
            amplification_array=lambda ax, ops: 2 + _tanh_amplification_array(ax, ops),
        ),
        Derivative(
            SIGMOID,
            "σ(kx) + kx·σ(kx)·(1 − σ(kx)),  k = 1.702",
            _sigmoid_derivative_terms,
            _sigmoid_derivative_amplification,
            flat_from=500.0,  # kx·e^(−kx) < e^(−844) there
            float64_terms=_sigmoid_derivative_float64,
            log2_magnitude=_sigmoid_derivative_log2,
            excess=_sigmoid_derivative_excess,
            amplification_array=lambda ax, ops: 2 + _sigmoid_amplification_array(ax, ops),
        ),
    )
}
"""Each formula's derivative, by the formula's id."""

Function = Formula | Derivative
"""Anything the references are computed for: a formula (forward) or its derivative (backward)."""

FUNCTIONS: dict[str, Function] = {**FORMULAS, **{d.name: d for d in DERIVATIVES.values()}}
"""Every function by its reference key (``erf``, ``erf-grad``, …): how worker processes find
the function a task names."""


def exact_function_for(function: Function) -> Function:
    """The exact reference of the pass ``function`` belongs to: ERF, or ERF′."""
    return ERF if isinstance(function, Formula) else DERIVATIVES[ERF.name]


def pass_of(function: Function) -> Pass:
    return Pass.FORWARD if isinstance(function, Formula) else Pass.BACKWARD


def claimed_formula(function: Function) -> Formula:
    """The formula an implementation claims, whichever pass is audited."""
    return function if isinstance(function, Formula) else function.of
