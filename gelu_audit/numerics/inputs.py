"""Input sets: every bit pattern of a 16-bit format, or a stratified sample of fp32/fp64.

A sampled audit is only a lower bound on the true maximum error, so the sample is built to
find errors: an equal share of points in every binade of both signs (subnormals included),
a dense share in the regions where GELU kernels go wrong (the negative tail where
1 + erf(x/√2) cancels, the core around the minimum at −0.75, the zone where GELU(x) → x),
and the special values. Every set records how it was chosen so a report can say so.

The binade half is also a proper stratified random sample: each binade (within the range) is a
stratum of known size, drawn uniformly, so it yields estimates of what an exhaustive audit of
the same range would find (:mod:`gelu_audit.audits.estimates`). The rest are aimed at errors
and only raise the maxima. Each sampled set records which points are the binade draws.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from gelu_audit.errors import UsageError
from gelu_audit.numerics.formats import (
    FloatFormat,
    all_patterns,
    ordinals,
    patterns_to_values,
    values_to_patterns,
)

DEFAULT_SAMPLES: dict[str, int] = {"fp32": 20_000, "fp64": 10_000}
"""Default sample sizes of the sampled formats; fp16 and bf16 are always exhaustive."""

DEFAULT_SEED = 0


@dataclass(frozen=True)
class ValueRange:
    """A closed interval of inputs, ``--range LO:HI``."""

    lo: float
    hi: float

    def __str__(self) -> str:
        return f"{self.lo:g}:{self.hi:g}"

    def contains(self, values: np.ndarray) -> np.ndarray:
        return (values >= self.lo) & (values <= self.hi)


def parse_range(text: str) -> ValueRange:
    """Parse ``LO:HI`` (either side may be empty for ±inf, e.g. ``:0`` or ``-8:``)."""
    parts = text.split(":")
    if len(parts) != 2:
        raise UsageError(f"malformed range {text!r}: expected LO:HI, e.g. -8:8")
    try:
        lo = float(parts[0]) if parts[0].strip() else -math.inf
        hi = float(parts[1]) if parts[1].strip() else math.inf
    except ValueError:
        raise UsageError(f"malformed range {text!r}: LO and HI must be numbers, e.g. -8:8") from None
    if math.isnan(lo) or math.isnan(hi) or not lo < hi:
        raise UsageError(f"malformed range {text!r}: need LO < HI")
    return ValueRange(lo, hi)


@dataclass(frozen=True)
class InputSet:
    """The inputs of one audited format, and how they were chosen."""

    fmt: FloatFormat
    patterns: np.ndarray
    """Bit patterns in the format (unsigned integers)."""
    values: np.ndarray
    """The same inputs as float64."""
    method: str
    """``exhaustive`` or ``stratified``."""
    samples: int | None = None
    """Requested sample size (stratified only)."""
    seed: int | None = None
    value_range: ValueRange | None = None
    strata: np.ndarray | None = None
    """Stratified samples: per point, the binade stratum it was drawn in, or −1 for the points
    aimed at hard regions and the specials. None where no estimate is possible (more binades
    than half the budget: only a random subset of them was drawn)."""
    stratum_sizes: np.ndarray | None = None
    """Per stratum: how many finite bit patterns of the range it stands for."""

    def __len__(self) -> int:
        return len(self.values)

    @property
    def is_exhaustive(self) -> bool:
        return self.method == "exhaustive"

    def describe(self) -> str:
        """One line for people: how the inputs were chosen."""
        where = f" in [{self.value_range}]" if self.value_range else ""
        if self.is_exhaustive:
            return f"{self.fmt}: exhaustive, {len(self):,} bit patterns{where}"
        return f"{self.fmt}: stratified sample of {len(self):,} inputs{where} (seed {self.seed})"

    @property
    def estimable(self) -> bool:
        """Whether the sample supports estimates of the exhaustive figures."""
        return self.strata is not None and self.stratum_sizes is not None

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "dtype": self.fmt.name,
            "method": self.method,
            "count": len(self),
            "requested_samples": self.samples,
            "seed": self.seed,
            "range": [self.value_range.lo, self.value_range.hi] if self.value_range else None,
            "description": self.describe(),
        }
        if self.strata is not None and self.stratum_sizes is not None:
            document["estimation"] = {
                "strata": len(self.stratum_sizes),
                "points": int(np.count_nonzero(self.strata >= 0)),
                "population": int(self.stratum_sizes.sum()),
            }
        return document


def special_values(fmt: FloatFormat) -> np.ndarray:
    """NaN, ±inf, ±0, ±largest finite, ±smallest normal, ±smallest subnormal."""
    finite = [0.0, fmt.largest_finite, fmt.smallest_normal, fmt.smallest_subnormal]
    return np.array([math.nan, math.inf, -math.inf] + [s * v for v in finite for s in (1.0, -1.0)])


def exhaustive_inputs(fmt: FloatFormat, value_range: ValueRange | None = None) -> InputSet:
    """Every bit pattern of a 16-bit format (restricted to a range when given)."""
    patterns = all_patterns(fmt)
    values = patterns_to_values(fmt, patterns)
    if value_range is not None:
        keep = value_range.contains(values)
        patterns, values = patterns[keep], values[keep]
    return InputSet(fmt, patterns, values, "exhaustive", value_range=value_range)


def _ordinal_to_pattern(fmt: FloatFormat, ordinals: np.ndarray | list[int]) -> np.ndarray:
    ordinals = np.asarray(ordinals, dtype=np.int64)
    magnitude = np.abs(ordinals).astype(np.uint64)
    sign = np.where(ordinals < 0, np.uint64(fmt.sign_mask), np.uint64(0))
    return (magnitude | sign).astype(fmt.uint_dtype)


def _binade_strata(fmt: FloatFormat) -> list[tuple[int, int]]:
    """Ordinal intervals [a, b) of every positive binade, subnormal ones included."""
    m = fmt.mantissa_bits
    strata = [(1 << j, 1 << (j + 1)) for j in range(m)]  # subnormals by leading bit
    top = (fmt.emax + fmt.exponent_bias + 1) << m  # first pattern of the inf/NaN exponent
    strata += [(e << m, min((e + 1) << m, top)) for e in range(1, fmt.emax + fmt.exponent_bias + 1)]
    return strata


def underflow_threshold(fmt: FloatFormat) -> float:
    """Roughly where GELU(x) falls below half the smallest subnormal: the end of the tail."""
    return math.sqrt(2 * (fmt.precision - fmt.emin) * math.log(2))


def hard_regions(fmt: FloatFormat) -> list[tuple[float, float, float]]:
    """(lo, hi, share of the aimed half) of the value regions where GELU kernels fail: the
    negative tail down to underflow, the core around the minimum, the zone where GELU(x) → x."""
    tail = underflow_threshold(fmt) + 1.0
    return [(-tail, -3.0, 0.4), (-3.0, 3.0, 0.4), (3.0, 12.0, 0.2)]


def _magnitudes_within(fmt: FloatFormat, a: int, b: int, lo: float, hi: float) -> tuple[int, int]:
    """The magnitudes [a', b') ⊆ [a, b) whose positive values lie in [lo, hi] (empty: a' ≥ b'):
    values rise with the magnitude, so both ends are binary searches."""

    def value(m: int) -> float:
        return float(patterns_to_values(fmt, np.array([m], dtype=np.uint64))[0])

    magnitudes = range(a, b)  # bisect returns positions in it: offsets from a
    return a + bisect.bisect_left(magnitudes, lo, key=value), a + bisect.bisect_right(
        magnitudes, hi, key=value
    )


def _equal_shares(budget: int, sizes: list[int]) -> list[int]:
    """The budget shared equally among strata (at least one each), none given more than its
    size; what a small stratum cannot take is shared among the others."""
    shares = [0] * len(sizes)
    open_strata = list(range(len(sizes)))
    left = max(budget, len(sizes))
    while open_strata and left >= len(open_strata):
        share = left // len(open_strata)
        still_open = []
        for i in open_strata:
            take = min(share, sizes[i] - shares[i])
            shares[i] += take
            left -= take
            if shares[i] < sizes[i]:
                still_open.append(i)
        if len(still_open) == len(open_strata):
            break
        open_strata = still_open
    return shares


def _sorted_unique(patterns: np.ndarray) -> np.ndarray:
    """``np.unique`` of integers, without it: NumPy 2.4's imports ``numpy.ma`` on first use
    (65 ms, a sixth of ``gelu-audit list`` past ``import torch``)."""
    ordered = np.sort(patterns)
    keep = np.ones(len(ordered), bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def stratified_inputs(
    fmt: FloatFormat,
    samples: int,
    seed: int = DEFAULT_SEED,
    value_range: ValueRange | None = None,
) -> InputSet:
    """A deterministic stratified sample: binades of both signs, hard regions, specials."""
    if samples < 1:
        raise UsageError(f"--samples must be a positive number, not {samples}")
    rng = np.random.default_rng(seed)
    lo = value_range.lo if value_range else -math.inf
    hi = value_range.hi if value_range else math.inf

    # Half the budget: the same number of points in every binade of both signs, drawn within
    # the part of the binade inside the range (a stratum of known size).
    binades = _binade_strata(fmt)
    starts = patterns_to_values(fmt, np.array([a for a, _ in binades], dtype=np.uint64))
    ends = patterns_to_values(fmt, np.array([b - 1 for _, b in binades], dtype=np.uint64))
    strata: list[tuple[int, int, int]] = []
    for (a, b), start, end_value in zip(binades, starts.tolist(), ends.tolist()):
        for sign in (1, -1):
            low, high = (lo, hi) if sign > 0 else (-hi, -lo)  # the range for |x| on this side
            if end_value < low or start > high:
                continue  # the binade lies outside the range
            first, end = (
                (a, b) if low <= start and end_value <= high else _magnitudes_within(fmt, a, b, low, high)
            )
            if first < end:
                strata.append((sign, first, end))
    # fp64 has more binades (4,196) than a small budget: then a random half of them get one,
    # and the draws no longer stand for the binades left out: no estimates.
    estimable = len(strata) <= samples // 2
    if not estimable:
        keep = np.sort(rng.choice(len(strata), size=max(1, samples // 2), replace=False))
        strata = [strata[i] for i in keep]
    drawn: list[np.ndarray] = []
    for (sign, a, b), count in zip(strata, _equal_shares(samples // 2, [b - a for _, a, b in strata])):
        if count >= b - a:  # the whole stratum
            ords = np.arange(a, b, dtype=np.int64)
        else:
            ords = rng.integers(a, b, size=count, dtype=np.int64)
        drawn.append(_ordinal_to_pattern(fmt, ords * sign))
    sizes = [b - a for _, a, b in strata]
    for zero in (0.0, -0.0):  # ±0: a stratum each, always tested
        if lo <= zero <= hi:
            drawn.append(values_to_patterns(fmt, np.array([zero])))
            sizes.append(1)
    chosen = list(drawn)

    # The other half: uniform in value over the regions where kernels fail.
    remaining = max(0, samples - sum(len(c) for c in chosen))
    for region_lo, region_hi, share in hard_regions(fmt):
        region_lo, region_hi = max(region_lo, lo), min(region_hi, hi)
        if region_lo >= region_hi:
            continue
        values = rng.uniform(region_lo, region_hi, size=int(remaining * share))
        chosen.append(values_to_patterns(fmt, values))

    specials = special_values(fmt)
    if value_range is not None:
        specials = specials[value_range.contains(specials)]
    chosen.append(values_to_patterns(fmt, specials))

    patterns = _sorted_unique(np.concatenate(chosen).astype(fmt.uint_dtype))
    values = patterns_to_values(fmt, patterns)
    if value_range is not None:
        keep = value_range.contains(values)
        patterns, values = patterns[keep], values[keep]
    if not estimable:
        return InputSet(fmt, patterns, values, "stratified", samples, seed, value_range)
    stratum_of = np.full(len(patterns), -1, dtype=np.int64)
    for k, part in enumerate(drawn):
        stratum_of[np.searchsorted(patterns, part.astype(fmt.uint_dtype))] = k
    return InputSet(
        fmt, patterns, values, "stratified", samples, seed, value_range, stratum_of, np.array(sizes, np.int64)
    )


def lowest_value_in(fmt: FloatFormat, value_range: ValueRange) -> float | None:
    """The least value of ``fmt`` (±∞ included) in the range, or None where it holds none
    (``1e6:1e7`` in fp16, whose largest finite value is 65504): an audit of no input would pass
    any gate, so the command line refuses such a range instead."""
    lo = np.array([value_range.lo], dtype=np.float64)
    nearest = patterns_to_values(fmt, values_to_patterns(fmt, lo))[0]  # rounded by the conversion
    if nearest < value_range.lo:  # the next value up
        nearest = patterns_to_values(fmt, _ordinal_to_pattern(fmt, ordinals(fmt, np.array([nearest])) + 1))[0]
    return float(nearest) if value_range.lo <= nearest <= value_range.hi else None


def require_values_in(fmt: FloatFormat, value_range: ValueRange | None) -> None:
    """Refuse (exit 2) a ``--range`` that holds no value of ``fmt``."""
    if value_range is not None and lowest_value_in(fmt, value_range) is None:
        beyond = (
            min(abs(value_range.lo), abs(value_range.hi)) > fmt.largest_finite
            and value_range.lo * value_range.hi > 0
        )
        why = (
            f" (its finite values lie within ±{fmt.largest_finite:g})"
            if beyond
            else " (it falls between two of them)"
        )
        raise UsageError(f"--range {value_range} holds no {fmt.name} value{why}")


def default_inputs(
    fmt: FloatFormat,
    samples: int | None = None,
    seed: int = DEFAULT_SEED,
    value_range: ValueRange | None = None,
) -> InputSet:
    """Exhaustive for 16-bit formats, a stratified sample otherwise."""
    if fmt.width == 16:
        return exhaustive_inputs(fmt, value_range)
    return stratified_inputs(fmt, samples or DEFAULT_SAMPLES[fmt.name], seed, value_range)
