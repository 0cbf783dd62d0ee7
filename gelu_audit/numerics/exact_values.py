"""Exact values kept exactly: a binade and a double-double mantissa, plus the rounded value.

Each exact value y = f(x) is stored as a binade b = floor(log2|y|) and a double-double
mantissa (hi + lo) = y / 2^b, so values far below float64's range (GELU(-60000) ≈ e^-1.8e9)
keep their size and sign, together with RN_T(y), the correctly rounded value in the target
format. The references produce these arrays; the error arithmetic consumes them.
May import: numpy (mpmath lazily).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import mpmath

_ZERO_BELOW = -2200
"""A finite float64 (below 2^1024) times 2^e for e below this is below 2^−1176: ±0."""

BINADE_FLOOR = -(1 << 60)
"""Binades below this are stored as this (GELU(−3e38) ≈ 2^(−1e77) fits no integer array).
It is far below every format's smallest subnormal, so no error figure depends on the rest."""


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

    def take(self, index: np.ndarray | slice) -> ReferenceValues:
        """The references at the given positions (an index array, a boolean mask or a slice)."""
        return ReferenceValues(
            self.binade[index], self.mant_hi[index], self.mant_lo[index], self.rounded[index]
        )

    def approximate(self) -> np.ndarray:
        """y as float64 (may underflow to ±0 or overflow): for absolute and relative errors.

        Below binade −2200 any finite mantissa times 2^binade is ±0 (below 2^−1176). ldexp
        finds that out 30 times more slowly than it scales (glibc's underflow path), and
        the underflowed tail is a quarter of the fp32 space, so those points get their
        signed zero directly: the same bits."""
        mantissa = self.mant_hi + self.mant_lo
        binade = self.binade
        if not binade.size or binade.min() >= _ZERO_BELOW:  # no point in the tail: ldexp alone
            with np.errstate(over="ignore", under="ignore"):
                return np.ldexp(mantissa, np.clip(binade, -4000, 4000).astype(np.int32))
        finite_zero = np.where(np.isfinite(mantissa), np.copysign(0.0, mantissa), mantissa)  # inf, NaN kept
        if binade.max() < _ZERO_BELOW:  # all of it in the tail
            return finite_zero
        deep = binade < _ZERO_BELOW
        with np.errstate(over="ignore", under="ignore"):
            scaled = np.ldexp(mantissa, np.clip(np.where(deep, 0, binade), -4000, 4000).astype(np.int32))
        return np.where(deep, finite_zero, scaled)

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
