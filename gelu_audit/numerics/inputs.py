"""Input sets: every bit pattern of a 16-bit format, or a stratified sample of fp32/fp64.

A sampled audit is only a lower bound on the true maximum error, so the sample is built to
find errors: an equal share of points in every binade of both signs (subnormals included),
a dense share in the regions where GELU kernels go wrong (the negative tail where
1 + erf(x/√2) cancels, the core around the minimum at −0.75, the zone where GELU(x) → x),
and the special values. Every set records how it was chosen so a report can say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gelu_audit.errors import UsageError
from gelu_audit.numerics.formats import FloatFormat, all_patterns, patterns_to_values, values_to_patterns

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
        return (
            f"{self.fmt}: stratified sample of {len(self):,} inputs{where} (requested "
            f"{self.samples:,}, seed {self.seed}); maxima are the largest errors found"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "dtype": self.fmt.name,
            "method": self.method,
            "count": len(self),
            "requested_samples": self.samples,
            "seed": self.seed,
            "range": [self.value_range.lo, self.value_range.hi] if self.value_range else None,
            "description": self.describe(),
        }


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
    chosen: list[np.ndarray] = []

    # Half the budget: the same number of points in every binade of both signs.
    strata = []
    for a, b in _binade_strata(fmt):
        for sign in (1, -1):
            low_value = float(patterns_to_values(fmt, _ordinal_to_pattern(fmt, [sign * a]))[0])
            high_value = float(patterns_to_values(fmt, _ordinal_to_pattern(fmt, [sign * (b - 1)]))[0])
            s_lo, s_hi = min(low_value, high_value), max(low_value, high_value)
            if s_hi < lo or s_lo > hi:
                continue
            strata.append((sign, a, b))
    # fp64 has more binades (4,196) than a small budget: then a random half of them get one.
    if len(strata) > samples // 2:
        keep = np.sort(rng.choice(len(strata), size=max(1, samples // 2), replace=False))
        strata = [strata[i] for i in keep]
    per_stratum = max(1, (samples // 2) // max(1, len(strata)))
    for sign, a, b in strata:
        count = min(per_stratum, b - a)
        ords = rng.integers(a, b, size=count, dtype=np.int64) * sign
        chosen.append(_ordinal_to_pattern(fmt, ords))

    # The other half: uniform in value over the regions where kernels fail.
    tail = underflow_threshold(fmt) + 1.0
    regions = [(-tail, -3.0, 0.4), (-3.0, 3.0, 0.4), (3.0, 12.0, 0.2)]
    remaining = max(0, samples - sum(len(c) for c in chosen))
    for region_lo, region_hi, share in regions:
        region_lo, region_hi = max(region_lo, lo), min(region_hi, hi)
        if region_lo >= region_hi:
            continue
        drawn = rng.uniform(region_lo, region_hi, size=int(remaining * share))
        chosen.append(values_to_patterns(fmt, drawn))

    specials = special_values(fmt)
    if value_range is not None:
        specials = specials[value_range.contains(specials)]
    chosen.append(values_to_patterns(fmt, specials))

    patterns = np.unique(np.concatenate(chosen).astype(fmt.uint_dtype))
    values = patterns_to_values(fmt, patterns)
    if value_range is not None:
        keep = value_range.contains(values)
        patterns, values = patterns[keep], values[keep]
    return InputSet(fmt, patterns, values, "stratified", samples, seed, value_range)


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
