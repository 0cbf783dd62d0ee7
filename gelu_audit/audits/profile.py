"""Where the error is: maximum ULP error per segment of the input axis (per binade and sign).

A report's maximum says how bad; engineers debugging a kernel need where: the negative tail
where 1 + erf cancels, the band where an approximation drifts, the binade where a polynomial
switches pieces. Keeping every point is impossible for 2^32 inputs, so each case keeps, per
segment of x, the number of points, the maximum error, and how many points exceed the
tolerance or are non-finite mismatches. That is enough to draw error-against-x (``gelu-audit
plot``) and the terminal sparkline from a saved JSON report, and it merges like every other
statistic (max and sums).

Segments follow the float format: one per binade and sign; the core binades, |x| in [1/8, 16),
split in :data:`CORE_SPLIT` equal parts (where GELU bends, and where approximations differ);
subnormals (and ±0) form one segment per sign; beyond 2^±:data:`GROUP_BEYOND`, binades are
grouped :data:`GROUP_WIDTH` at a time (fp64 has 2,046 binades per sign). NaN and ±inf inputs
belong to no segment.
"""

from __future__ import annotations

import decimal
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from gelu_audit.numerics.formats import FloatFormat, values_to_patterns

CORE_BINADES = range(-3, 4)
"""Binades split finer: |x| in [2^−3, 2^4)."""
CORE_SPLIT = 8
"""Parts per core binade (the top 3 fraction bits)."""
GROUP_BEYOND = 64
GROUP_WIDTH = 32


@dataclass(frozen=True)
class SegmentTable:
    """The segments of one format: a key per (exponent field, top 3 fraction bits) of |x|,
    and each key's interval of |x|."""

    key_of: np.ndarray
    """Index: exponent field << 3 | top 3 fraction bits. Value: segment number, −1 for NaN/inf."""
    lo: np.ndarray
    """|x| lower bound of each segment (inclusive)."""
    hi: np.ndarray
    """|x| upper bound of each segment (exclusive)."""

    @property
    def count(self) -> int:
        """Segments per sign."""
        return len(self.lo)


def _pow2(e: float) -> float:
    """2^e, +inf past float64's range (fp64's top segment ends at 2^1024)."""
    return math.inf if e > 1023 else math.ldexp(1.0, int(e))


@cache
def segment_table(fmt: FloatFormat) -> SegmentTable:
    exponent_fields = 1 << (fmt.width - 1 - fmt.mantissa_bits)
    key_of = np.full(exponent_fields << 3, -1, np.int64)
    lo: list[float] = []
    hi: list[float] = []
    for field in range(exponent_fields - 1):  # the all-ones field is NaN/inf
        e = fmt.emin if field == 0 else field - fmt.exponent_bias
        if field == 0:  # ±0 and subnormals
            lo.append(0.0)
            hi.append(fmt.smallest_normal)
            key_of[0:8] = len(lo) - 1
        elif e in CORE_BINADES:
            for part in range(CORE_SPLIT):
                lo.append(math.ldexp(1 + part / CORE_SPLIT, e))
                hi.append(math.ldexp(1 + (part + 1) / CORE_SPLIT, e))
                key_of[field << 3 | part] = len(lo) - 1
        elif abs(e) > GROUP_BEYOND:
            group = (e - GROUP_BEYOND - 1) // GROUP_WIDTH if e > 0 else (e + GROUP_BEYOND) // GROUP_WIDTH
            first = GROUP_BEYOND + 1 + group * GROUP_WIDTH if e > 0 else -GROUP_BEYOND + group * GROUP_WIDTH
            start = max(first, fmt.emin)
            if not lo or lo[-1] != math.ldexp(1.0, start):
                lo.append(math.ldexp(1.0, start))
                hi.append(_pow2(min(first + GROUP_WIDTH, fmt.emax + 1)))
            key_of[field << 3 : (field + 1) << 3] = len(lo) - 1
        else:
            lo.append(_pow2(e))
            hi.append(_pow2(e + 1))
            key_of[field << 3 : (field + 1) << 3] = len(lo) - 1
    return SegmentTable(key_of, np.array(lo), np.array(hi))


def segment_keys(fmt: FloatFormat, x: np.ndarray) -> np.ndarray:
    """Each input's segment: 0 … n−1 for x ≥ +0, n … 2n−1 for x ≤ −0, −1 for NaN/±inf."""
    table = segment_table(fmt)
    patterns = values_to_patterns(fmt, x).astype(np.uint64)
    fraction_top = (patterns >> np.uint64(fmt.mantissa_bits - 3)) & np.uint64(7)
    field = (patterns >> np.uint64(fmt.mantissa_bits)) & np.uint64(
        (1 << (fmt.width - 1 - fmt.mantissa_bits)) - 1
    )
    keys = table.key_of[((field << np.uint64(3)) | fraction_top).astype(np.int64)]
    negative = (patterns >> np.uint64(fmt.width - 1)).astype(bool)
    return np.where((keys >= 0) & negative, keys + table.count, keys)


@dataclass(frozen=True)
class SegmentRuns:
    """A block's inputs grouped by segment, computed once and shared by every implementation."""

    order: np.ndarray | None
    """Positions sorted by segment (NaN/inf left out); None when the block is already in order."""
    starts: np.ndarray
    keys: np.ndarray
    """The segment of each run."""
    counts: np.ndarray
    segment: np.ndarray | int
    """Every position's segment (−1 for NaN/inf), or the one segment of them all."""

    def whole_segment(self, n: int) -> int | None:
        """The segment of all ``n`` positions where they are one run of one segment (a stream's
        block), else None: then a block's statistics per segment are its totals."""
        if self.keys.size == 1 and self.order is None and self.counts[0] == n:
            return int(self.keys[0])
        return None

    def segment_at(self, positions: np.ndarray) -> np.ndarray:
        if isinstance(self.segment, int):
            return np.full(len(positions), self.segment, np.int64)
        return self.segment[positions]

    @staticmethod
    def of(fmt: FloatFormat, x: np.ndarray) -> SegmentRuns:
        n = len(x)
        uniform = _uniform_segment(fmt, x)
        if uniform is not None:  # an exhaustive stream's block: consecutive patterns in one segment
            if uniform < 0:
                return SegmentRuns(
                    None, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), uniform
                )
            return SegmentRuns(None, np.zeros(1, np.int64), np.array([uniform]), np.array([n]), uniform)
        segment = segment_keys(fmt, x)
        kept = np.flatnonzero(segment >= 0)
        ordered = segment[kept]
        if kept.size == len(segment) and np.all(ordered[1:] >= ordered[:-1]):
            order = None
        else:
            sort = np.argsort(ordered, kind="stable")
            order, ordered = kept[sort], ordered[sort]
        starts = (
            np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
            if ordered.size
            else np.zeros(0, np.int64)
        )
        counts = np.diff(np.append(starts, ordered.size))
        return SegmentRuns(order, starts, ordered[starts] if ordered.size else starts, counts, segment)


def _uniform_segment(fmt: FloatFormat, x: np.ndarray) -> int | None:
    """The segment of every input when they are consecutive bit patterns (so monotone in |x|,
    one sign) whose first and last share a segment; else None. Segment bounds fall on multiples
    of 2^20 patterns, so the 2^15-aligned blocks of an exhaustive stream always qualify, and
    the per-point key computation (a third of the profile's cost otherwise) is skipped."""
    if len(x) < 2:
        return None
    patterns = values_to_patterns(fmt, x)  # unsigned: a decreasing step wraps and fails the test too
    if int(patterns[-1]) - int(patterns[0]) != len(x) - 1 or not np.all(np.diff(patterns) == 1):
        return None
    first, last = segment_keys(fmt, x[[0, -1]])
    return int(first) if first == last else None


@dataclass(frozen=True)
class ErrorProfile:
    """Per segment of x, in x order (−∞ to +∞), the segments holding tested inputs."""

    x_lo: tuple[float, ...]
    x_hi: tuple[float, ...]
    points: tuple[int, ...]
    max_ulp: tuple[float, ...]
    """Largest finite ULP error in the segment, rounded *up* to 4 significant digits (a picture
    needs no more, and the exact maximum of the case is in its statistics); non-finite
    mismatches are counted apart."""
    over_tolerance: tuple[int, ...]
    """Points above the accurate domain's tolerance."""
    nonfinite: tuple[int, ...]
    """Non-finite mismatches (at finite inputs: NaN and ±inf inputs belong to no segment)."""


def round_up_4(value: float) -> float:
    """The smallest 4-significant-digit decimal ≥ value, as a float (short in JSON, and still
    an upper bound: the nearest double to a decimal ≥ a double is ≥ that double)."""
    if value <= 0 or not math.isfinite(value):
        return value
    rounded = float(_CEILING_4.create_decimal(value))
    return rounded if math.isfinite(rounded) else value  # within 4 digits of float64's top


_CEILING_4 = decimal.Context(prec=4, rounding=decimal.ROUND_CEILING)


class ProfileAccumulator:
    """Per-segment counts and maxima of one case; adds block by block, merges exactly."""

    def __init__(self) -> None:
        self.fmt: FloatFormat | None = None
        self.points: np.ndarray = np.zeros(0, np.int64)
        self.over: np.ndarray = np.zeros(0, np.int64)
        self.nonfinite: np.ndarray = np.zeros(0, np.int64)
        self.max_ulp: np.ndarray = np.zeros(0)

    def _ensure(self, fmt: FloatFormat) -> None:
        if self.fmt is None:
            n = 2 * segment_table(fmt).count
            self.fmt = fmt
            self.points, self.over, self.nonfinite = (np.zeros(n, np.int64) for _ in range(3))
            self.max_ulp = np.zeros(n)

    def add(
        self,
        fmt: FloatFormat,
        runs: SegmentRuns,
        errors: np.ndarray,
        over: np.ndarray,
        mismatched: np.ndarray,
    ) -> None:
        """``errors`` (0 where not finite) and ``over`` per position; ``mismatched`` positions."""
        self._ensure(fmt)
        whole = runs.whole_segment(len(errors))
        if whole is not None:
            self.add_segment(fmt, whole, len(errors), float(errors.max()), int(np.count_nonzero(over)))
        elif runs.keys.size:
            ordered = errors if runs.order is None else errors[runs.order]
            flags = over if runs.order is None else over[runs.order]
            self.max_ulp[runs.keys] = np.maximum(
                self.max_ulp[runs.keys], np.maximum.reduceat(ordered, runs.starts)
            )
            self.over[runs.keys] += np.add.reduceat(flags.astype(np.int64), runs.starts)
            self.points[runs.keys] += runs.counts
        keys = runs.segment_at(mismatched)
        keys = keys[keys >= 0]
        if keys.size:
            np.add.at(self.nonfinite, keys, 1)

    def add_segment(self, fmt: FloatFormat, segment: int, points: int, max_ulp: float, over: int) -> None:
        """``points`` points of one segment, their largest error and how many exceed the
        tolerance (none non-finite)."""
        self._ensure(fmt)
        self.max_ulp[segment] = max(self.max_ulp[segment], max_ulp)
        self.over[segment] += over
        self.points[segment] += points

    def merge(self, other: ProfileAccumulator) -> None:
        if other.fmt is None:
            return
        self._ensure(other.fmt)
        self.points += other.points
        self.over += other.over
        self.nonfinite += other.nonfinite
        self.max_ulp = np.maximum(self.max_ulp, other.max_ulp)

    def finish(self) -> ErrorProfile:
        if self.fmt is None:
            return ErrorProfile((), (), (), (), (), ())
        table = segment_table(self.fmt)
        n = table.count
        # x order: negative segments from the largest |x| down, then positive ones upward
        order = [n + k for k in range(n - 1, -1, -1)] + list(range(n))
        used = [k for k in order if self.points[k] or self.nonfinite[k]]
        lo = [(-table.hi[k - n] if k >= n else table.lo[k]) for k in used]
        hi = [(-table.lo[k - n] if k >= n else table.hi[k]) for k in used]
        return ErrorProfile(
            tuple(float(v) for v in lo),
            tuple(float(v) for v in hi),
            tuple(int(self.points[k]) for k in used),
            tuple(round_up_4(float(self.max_ulp[k])) for k in used),
            tuple(int(self.over[k]) for k in used),
            tuple(int(self.nonfinite[k]) for k in used),
        )

    def to_state(self) -> dict[str, Any]:
        if self.fmt is None:
            return {"format": None, "segments": []}
        used = np.flatnonzero(self.points | self.nonfinite)
        rows = [
            [int(k), int(self.points[k]), float(self.max_ulp[k]), int(self.over[k]), int(self.nonfinite[k])]
            for k in used
        ]
        return {"format": self.fmt.name, "segments": rows}

    @staticmethod
    def from_state(state: dict[str, Any]) -> ProfileAccumulator:
        from gelu_audit.numerics.formats import FORMATS

        profile = ProfileAccumulator()
        if state.get("format"):
            profile._ensure(FORMATS[state["format"]])
            for k, points, max_ulp, over, nonfinite in state["segments"]:
                profile.points[k], profile.max_ulp[k] = int(points), float(max_ulp)
                profile.over[k], profile.nonfinite[k] = int(over), int(nonfinite)
        return profile
