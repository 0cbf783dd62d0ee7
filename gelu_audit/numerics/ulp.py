"""Error arithmetic: ULP errors, ordinal distances, non-finite mismatches, histogram bins.

Pure functions on arrays of results ŷ and :class:`~gelu_audit.numerics.exact_values.ReferenceValues`.
"""

from __future__ import annotations

import numpy as np

from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FloatFormat, ordinals, ulp_exponent

HISTOGRAM_EDGES: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
"""Upper edges of the ULP histogram's bins; a bin for exactly 0 comes first, >1000 last."""

HISTOGRAM_LABELS: tuple[str, ...] = (
    "0",
    *tuple(f"≤{e:g}" for e in HISTOGRAM_EDGES),
    f">{HISTOGRAM_EDGES[-1]:g}",
)

# --- error arithmetic -------------------------------------------------------------------------


def ulp_errors(fmt: FloatFormat, got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """err = |ŷ − y| / ulp_T(y) per point; NaN where ŷ or y is not finite.

    ŷ and y are both scaled by 1/ulp_T(y) (exact power-of-two scalings) before subtracting,
    so the error keeps full float64 relative accuracy whatever the binade. It may be +inf
    when it exceeds float64's range (garbage far above a subnormal exact value in fp64).
    """
    got = np.asarray(got, dtype=np.float64)
    finite = np.isfinite(got) & np.isfinite(ref.mant_hi)
    zero_ref = ref.mant_hi == 0
    if _in_range(fmt, ref.binade) and not zero_ref.any():  # most blocks: no ldexp, no clip
        # ulp_T(y) = 2^quantum with quantum = binade − (p − 1), so y scales to mant·2^(p−1): a
        # product by a power of two is rounded once, exactly as ldexp rounds, so the same bits
        quantum = ref.binade.astype(np.int64) - (fmt.precision - 1)
        unit = 2.0 ** (fmt.precision - 1)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            scaled_got = got * ((1023 - quantum) << 52).view(np.float64)  # got·2^−quantum
            err = np.abs((scaled_got - ref.mant_hi * unit) - ref.mant_lo * unit)
        return np.where(finite, err, np.nan)
    binade = np.where(zero_ref, fmt.emin - 1, ref.binade)
    quantum = np.asarray(ulp_exponent(fmt, binade)).astype(np.int64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # NaN/inf: masked below
        scaled_got = np.ldexp(got, np.clip(-quantum, -4000, 4000).astype(np.int32))
        shift = np.clip(binade - quantum, -4000, 4000).astype(np.int32)
        err = np.abs((scaled_got - np.ldexp(ref.mant_hi, shift)) - np.ldexp(ref.mant_lo, shift))
    return np.where(finite, err, np.nan)


def _in_range(fmt: FloatFormat, binade: np.ndarray) -> bool:
    """Whether every binade is at least T's emin (so the ulp is 2^(binade − p + 1)) and that
    ulp's reciprocal a normal float64 (its exponent field built directly)."""
    if not len(binade):
        return False
    low, high = int(binade.min()), int(binade.max())
    shift = fmt.precision - 1  # the reciprocal is 2^(shift − binade)
    return fmt.emin <= low and low >= shift - 1023 and high <= shift + 1022


def ordinal_distances(fmt: FloatFormat, got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """How many representable numbers lie between ŷ and RN_T(y); -1 where either is not finite."""
    finite = np.isfinite(got) & np.isfinite(ref.rounded)
    safe_got = np.where(finite, got, 0.0)
    safe_ref = np.where(finite, ref.rounded, 0.0)
    return np.where(finite, np.abs(ordinals(fmt, safe_got) - ordinals(fmt, safe_ref)), -1)


def nonfinite_mismatches(got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """True where exactly one of ŷ and y is finite, or both are not finite but differ."""
    exact = ref.mant_hi  # NaN / ±inf exactly where y is, and finite otherwise
    got_finite, exact_finite = np.isfinite(got), np.isfinite(exact)
    both_nan = np.isnan(got) & np.isnan(exact)
    same_inf = np.isinf(got) & np.isinf(exact) & (np.sign(got) == np.sign(exact))
    return (got_finite != exact_finite) | (~got_finite & ~exact_finite & ~both_nan & ~same_inf)


def wrong_sign_zeros(got: np.ndarray, ref: ReferenceValues) -> np.ndarray:
    """True where ŷ is a zero whose sign differs from the exact value's (GELU(x) has x's sign)."""
    exact = ref.mant_hi
    return (got == 0) & np.isfinite(exact) & (np.signbit(got) != np.signbit(exact))


def histogram_bins(errors: np.ndarray) -> np.ndarray:
    """The bin of :data:`HISTOGRAM_LABELS` each non-negative error falls in (0 exactly: bin 0;
    +inf and NaN of either sign: the last).

    The bin is 1 + how many edges lie strictly below the error. The edges up to 512 are the
    powers 2^−1 … 2^9, so that count is read off the float64's exponent and whether its
    fraction is zero: integer arithmetic on the bits, twice as fast as a search over the
    edges, and the same bins (tested against that search)."""
    bits = np.asarray(errors, dtype=np.float64).view(np.int64)
    powers_below = ((bits >> 52) & 0x7FF) - 1022 + ((bits & ((1 << 52) - 1)) != 0)  # powers of 2 below
    bins = np.clip(powers_below, 0, len(HISTOGRAM_EDGES) - 1) + 1 + ~(errors <= HISTOGRAM_EDGES[-1])
    bins[errors == 0] = 0
    return bins
