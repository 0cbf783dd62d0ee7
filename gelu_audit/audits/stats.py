"""Error statistics that stream and merge: block by block, process by process, shard by shard.

An exhaustive fp32 audit sees 2^32 points in blocks and cannot keep them, so every statistic is
kept in a form that adds up exactly and does not depend on how the inputs were cut:

* counts and histograms are integers;
* the sum behind the mean adds, per fixed block (:data:`BLOCK` points, aligned to the input's
  global index), three float64 sums exactly, as integers of 2^−1074: the block's residuals,
  less the residuals where the answer differs from RN_T(y), plus its errors there;
* p99 comes from a sketch: counts per float32 bit pattern of the error with its low 16 bits
  dropped (7 fraction bits, 2^−7 relative width); it reports the upper edge of the bin that
  holds the 99th-percentile point (nearest rank), capped at the maximum;
* the error profile (per segment of x: points, maximum, counts) is maxima and sums too;
* maxima, the worst inputs (largest error, then smallest index), the first non-finite
  mismatches and wrong-sign zeros (smallest index) and the accurate domain's failure bounds
  are order-independent selections.

Blocks of a reference are prepared once (:class:`ReferenceBlock`) and shared by every
implementation audited against it: where an implementation returns RN_T(y), its error is the
reference's own rounding residual, so only the points where it differs need the full error
arithmetic (:meth:`ErrorAccumulator.add_block`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gelu_audit.audits import fused
from gelu_audit.audits.estimates import SampleEstimates
from gelu_audit.audits.policies import BUILTIN_POLICIES, Policy, Tolerance, violation_ratios
from gelu_audit.audits.profile import ErrorProfile, ProfileAccumulator, SegmentRuns
from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FloatFormat, hex_pattern, patterns_to_values
from gelu_audit.numerics.formulas import Function, claimed_formula, exact_function_for
from gelu_audit.numerics.ulp import (
    HISTOGRAM_LABELS,
    histogram_bins,
    nonfinite_mismatches,
    ordinal_distances,
    ulp_errors,
    wrong_sign_zeros,
)
from gelu_audit.references.fast_tier import BLOCK  # statistics blocks are the fast tier's blocks

SKETCH_SHIFT = 16
"""p99 sketch bins: the float32 bit pattern of an error shifted right by this (7 fraction bits)."""
SKETCH_BINS = 1 << (31 - SKETCH_SHIFT)
"""Bins for every non-negative float32, +inf included; one more bin collects excluded points."""
PERCENTILE = 0.99


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointReport:
    """One input and what happened there."""

    x: float
    """The input, as a float (exact)."""
    x_hex: str
    """The input's bit pattern in the audited format."""
    got: float
    """What the implementation returned (exact)."""
    got_hex: str
    exact: str
    """The exact reference value y, in decimal (17 significant digits)."""
    rounded: float
    """RN_T(y): the correctly rounded answer."""
    ulp_error: float | None
    """|ŷ − y| / ulp_T(y); None where ŷ or y is not finite."""
    ordinal_distance: int | None
    """Representable numbers between ŷ and RN_T(y); None where either is not finite."""


@dataclass(frozen=True)
class AccurateDomain:
    """The widest interval around 0 on which every tested input stays within a tolerance."""

    tolerance: float
    """ULP tolerance used."""
    lo: float | None
    """Most negative tested input of the interval (None: fails at 0)."""
    hi: float | None
    """Most positive tested input of the interval (None: fails at 0)."""
    failure_below: float | None
    """The failing input just below ``lo`` (None: nothing below fails)."""
    failure_above: float | None
    """The failing input just above ``hi`` (None: nothing above fails)."""

    @property
    def covers_all(self) -> bool:
        return self.failure_below is None and self.failure_above is None

    def interval_text(self) -> str:
        """``[lo, hi]``, or ``none`` when it fails at 0."""
        return interval_text(self.lo, self.hi)


def _span(lo: float | None, hi: float | None) -> tuple[float, float] | None:
    return None if lo is None or hi is None else (lo, hi)


def interval_text(lo: float | None, hi: float | None) -> str:
    """An accurate domain as every report writes it: ``[lo, hi]`` to 6 digits, or ``none``."""
    return "none" if lo is None or hi is None else f"[{lo:.6g}, {hi:.6g}]"


@dataclass(frozen=True)
class SubnormalHandling:
    """Whether subnormals are flushed, apart from the accuracy figures: a kernel that flushes
    subnormal inputs (DAZ-like) or results (FTZ-like) is a property, not a narrow domain."""

    inputs: int
    """Tested subnormal inputs whose correctly rounded GELU is not 0."""
    inputs_flushed: int
    """Of those, answered ±0: the input treated as 0 (DAZ-like)."""
    outputs: int
    """Tested normal inputs whose correctly rounded GELU is subnormal."""
    outputs_flushed: int
    """Of those, answered ±0 (FTZ-like)."""

    def describe(self) -> str:
        """``inputs flushed (DAZ), results flushed (FTZ)``, or what part is; empty: none is."""
        parts = []
        for what, tested, flushed, name in (
            ("inputs", self.inputs, self.inputs_flushed, "DAZ"),
            ("results", self.outputs, self.outputs_flushed, "FTZ"),
        ):
            if flushed and flushed == tested:
                parts.append(f"subnormal {what} flushed to 0 ({name}-like)")
            elif flushed:
                parts.append(f"{flushed:,} of {tested:,} subnormal {what} flushed to 0")
        return ", ".join(parts)


@dataclass(frozen=True)
class ErrorStats:
    """Error statistics of one implementation against one reference formula."""

    against: str
    """``exact`` (true GELU) or the formula id the implementation claims."""
    finite_points: int
    """Inputs where both ŷ and y are finite: the population of every statistic below."""
    max_ulp: float
    mean_ulp: float
    p99_ulp: float
    """Upper edge of the sketch bin holding the 99th percentile (2^−7 relative), capped at max."""
    correctly_rounded: float
    """Share of finite points where ŷ = RN_T(y) (±0 equal)."""
    max_ordinal_distance: int
    max_error_bits: float
    """log2(1 + max ordinal distance): how many low bits are wrong at worst."""
    max_abs_error: float
    max_rel_error: float | None
    """Over points whose exact value is a normal number of the format; None if there are none."""
    histogram: tuple[tuple[str, int], ...]
    worst: tuple[PointReport, ...]
    """The inputs with the largest errors, largest first."""
    accurate_domain: AccurateDomain
    profile: ErrorProfile
    """Where the error is: per segment of x (binade and sign), points and maximum error."""
    flush_to_zero: FlushToZero
    """Inputs whose answer is ±0 where the correctly rounded value is not."""
    max_ulp_outside_flush: float
    """The largest error over the finite points that are not flushed to zero: where kernels
    differ, when they share a flushed tail that dominates ``max_ulp``."""
    worst_outside_flush: PointReport | None
    """Where ``max_ulp_outside_flush`` is reached (None when every point is flushed or exact)."""
    accurate_domain_normal: AccurateDomain | None = None
    """The accurate domain judged where neither the input nor the correctly rounded result is
    subnormal: where subnormals are flushed (``subnormals``), ``accurate_domain`` ends at the
    first one, and this says how far the kernel is accurate on normal numbers."""
    subnormals: SubnormalHandling = SubnormalHandling(0, 0, 0, 0)
    policies: tuple[PolicyOutcome, ...] = ()
    """Every tolerance policy that has a rule for this dtype (:mod:`gelu_audit.audits.policies`)."""
    estimates: SampleEstimates | None = None
    """A stratified sample's estimates of the exhaustive figures (None: exhaustive inputs, or a
    sample that supports none). The fields above describe the tested points themselves."""

    @property
    def over_tolerance(self) -> int:
        """Tested finite inputs whose error exceeds the accurate domain's tolerance."""
        return sum(self.profile.over_tolerance)

    @property
    def over_tolerance_share(self) -> float:
        """The share of finite inputs over the tolerance: estimated for the whole range when
        the inputs were a stratified sample that supports it, else counted over the tested
        inputs. How often a kernel is wrong, which a shared flushed tail cannot hide the way it
        hides every difference in ``max_ulp``."""
        if self.estimates is not None:
            return self.estimates.over_tolerance.value
        return self.over_tolerance / self.finite_points if self.finite_points else 0.0


@dataclass(frozen=True)
class PolicyOutcome:
    """One tolerance policy over the tested inputs: how many break it, and the worst."""

    policy: str
    rule: str
    """The rule for this dtype and formula, as a formula."""
    violations: int
    """Inputs that break the rule, non-finite mismatches included."""
    nonfinite: int
    """Of those, the non-finite mismatches (never close)."""
    max_ratio: float
    """The largest |ŷ − y| / allowed(|y|) over finite answers: above 1 breaks the rule."""
    worst: PointReport | None
    """Where ``max_ratio`` is reached (None: every finite error is 0)."""

    @property
    def finite_breaks(self) -> int:
        return self.violations - self.nonfinite

    @property
    def passed(self) -> bool:
        """No finite answer breaks the rule (non-finite mismatches are gated apart, by
        max-nonfinite, as everywhere else)."""
        return self.finite_breaks == 0


@dataclass(frozen=True)
class FlushToZero:
    """The flushed points: how many, and the span of x they lie in on each side of 0 (the
    points in a span need not all be flushed; ``count`` says how many are)."""

    count: int
    negative: tuple[float, float] | None
    """[lowest, highest] flushed x below 0, or None."""
    positive: tuple[float, float] | None
    """[lowest, highest] flushed x above 0, or None."""


@dataclass
class FailureBounds:
    """The failing inputs nearest 0 on each side, and whether 0 fails: an order-independent
    selection, so it merges."""

    below: float | None = None
    above: float | None = None
    at_zero: bool = False

    def note(self, below: float | None, above: float | None, at_zero: bool) -> None:
        """Narrow toward 0."""
        if below is not None:
            self.below = below if self.below is None else max(self.below, below)
        if above is not None:
            self.above = above if self.above is None else min(self.above, above)
        self.at_zero |= at_zero

    def merge(self, other: FailureBounds) -> None:
        self.note(other.below, other.above, other.at_zero)

    def domain(self, tolerance: float, tested: InputSpace) -> AccurateDomain:
        return domain_ends(tolerance, self.below, self.above, self.at_zero, tested)

    def to_state(self) -> list[Any]:
        return [self.below, self.above, self.at_zero]

    @staticmethod
    def from_state(state: Sequence[Any]) -> FailureBounds:
        below, above, at_zero = state
        return FailureBounds(
            None if below is None else float(below), None if above is None else float(above), bool(at_zero)
        )


# --- exact sums -------------------------------------------------------------------------------


_SUM_SCALE = 1074  # every finite float64 is an integer multiple of 2^-1074


@dataclass
class ExactSum:
    """A sum of float64 values kept exactly (integer multiple of 2^−1074), so order is moot."""

    scaled: int = 0
    infinite: bool = False

    def add_float(self, value: float) -> None:
        if math.isinf(value):
            self.infinite = True
            return
        numerator, denominator = value.as_integer_ratio()
        self.scaled += numerator * ((1 << _SUM_SCALE) // denominator)

    def add(self, other: ExactSum) -> None:
        self.scaled += other.scaled
        self.infinite |= other.infinite

    def times_power_of_two(self, k: int) -> ExactSum | None:
        """This sum times 2^k, exactly; None where that would drop bits below 2^−1074."""
        if k >= 0:
            return ExactSum(self.scaled << k, self.infinite)
        if self.scaled & ((1 << -k) - 1):
            return None
        return ExactSum(self.scaled >> -k, self.infinite)

    def subtract(self, other: ExactSum) -> None:
        """Take out a finite part of this sum (exactly: the integers subtract)."""
        if other.infinite:
            raise ValueError("an infinite part cannot be taken out of a sum")
        self.scaled -= other.scaled

    def mean(self, count: int) -> float:
        if self.infinite:
            return math.inf
        if count == 0:
            return 0.0
        from fractions import Fraction

        return float(Fraction(self.scaled, count << _SUM_SCALE))


# --- the spaces of tested inputs (for the accurate domain's ends) -----------------------------


class InputSpace(Protocol):
    """Which inputs were tested: enough to name the accurate domain's ends."""

    def lowest_above(self, bound: float) -> float | None:
        """The smallest tested finite input > bound (None if there is none)."""

    def highest_below(self, bound: float) -> float | None:
        """The largest tested finite input < bound (None if there is none)."""


class InputValues:
    """An explicit set of tested inputs (a sample, or a 16-bit format's patterns)."""

    def __init__(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        self.sorted = np.unique(values[np.isfinite(values)])

    def lowest_above(self, bound: float) -> float | None:
        i = int(np.searchsorted(self.sorted, bound, side="right"))
        return float(self.sorted[i]) if i < len(self.sorted) else None

    def highest_below(self, bound: float) -> float | None:
        i = int(np.searchsorted(self.sorted, bound, side="left")) - 1
        return float(self.sorted[i]) if i >= 0 else None


def domain_ends(
    tolerance: float,
    failure_below: float | None,
    failure_above: float | None,
    fails_at_zero: bool,
    tested: InputSpace,
) -> AccurateDomain:
    """The accurate domain from the failing inputs nearest 0 on each side."""
    if fails_at_zero:
        return AccurateDomain(tolerance, None, None, 0.0, 0.0)
    lo = tested.lowest_above(-math.inf if failure_below is None else failure_below)
    hi = tested.highest_below(math.inf if failure_above is None else failure_above)
    return AccurateDomain(
        tolerance,
        lo if lo is not None and lo <= 0 else None,
        hi if hi is not None and hi >= 0 else None,
        failure_below,
        failure_above,
    )


def failure_bounds(failing_x: np.ndarray) -> tuple[float | None, float | None, bool]:
    """The failing inputs nearest 0 on each side, and whether 0 itself fails (finite x only)."""
    failing_x = failing_x[np.isfinite(failing_x)]
    negative, positive = failing_x[failing_x < 0], failing_x[failing_x > 0]
    return (
        float(negative.max()) if negative.size else None,
        float(positive.min()) if positive.size else None,
        bool((failing_x == 0).any()),
    )


def accurate_domain(x: np.ndarray, failing: np.ndarray, tolerance: float) -> AccurateDomain:
    """Widest interval around 0 of the tested inputs ``x`` with no failure."""
    return domain_ends(tolerance, *failure_bounds(x[failing]), InputValues(x))


# --- one block of a reference, prepared once --------------------------------------------------


def sketch_bins(errors: np.ndarray) -> np.ndarray:
    """The p99 sketch bin of each non-negative error."""
    with np.errstate(over="ignore"):
        return (errors.astype(np.float32).view(np.uint32) >> SKETCH_SHIFT).astype(np.int64)


def differing_mask(got: np.ndarray, rounded: np.ndarray) -> np.ndarray:
    """Where two float64 arrays differ bit for bit (a mask: its count costs a tenth of the
    positions, and most callers need only that)."""
    return got.view(np.int64) != rounded.view(np.int64)


def answer_differs(got: np.ndarray, rounded: np.ndarray, nan_rounded: np.ndarray | None) -> np.ndarray:
    """Where an answer is not RN_T(y) (``rounded``) as the statistics see it: bit for bit, but
    for a NaN where RN_T(y) is a NaN (``nan_rounded``: where it is; None: nowhere), whose sign
    and payload no statistic reads (``ReferenceBlock.differs``)."""
    mask = differing_mask(got, rounded)
    if nan_rounded is not None:
        mask &= ~(nan_rounded & np.isnan(got))
    return mask


def nan_positions(rounded: np.ndarray) -> np.ndarray | None:
    """Where RN_T(y) is a NaN, for :func:`answer_differs`; None where it is nowhere."""
    nan = np.isnan(rounded)
    return nan if nan.any() else None


@dataclass
class ReferenceBlock:
    """One block of inputs with its reference and the errors of the correctly rounded answer."""

    fmt: FloatFormat
    x: np.ndarray
    index: np.ndarray
    """Each point's global index (pattern number, or position in a sample): the tie-breaker."""
    ref: ReferenceValues
    finite: np.ndarray
    """y finite (and so RN_T(y) too: GELU(x) ≤ x never overflows)."""
    residual: np.ndarray
    """|RN_T(y) − y| / ulp_T(y), 0 where y is not finite."""
    top: int
    shared: bool = False
    """Several answers will be compared with this block (more than one case, or a reference
    store to write): its summary is worth computing for the first answer that is RN_T(y)
    throughout, since the others that are take it as it is (and a store keeps it)."""
    exact: bool = False
    """RN_T(y) is y itself at every point, as far as the error arithmetic can see (every
    residual is exactly 0: :func:`_exact_block`). Half the fp32 space is such blocks (the
    saturated x above ~38 and the underflowed x below ~−42), and an answer equal to RN_T(y)
    there has statistics that need no per-point arithmetic (:meth:`ErrorAccumulator.fold_block`)."""
    _threshold: float | None = None
    _runs: SegmentRuns | None = None
    _summaries: dict[tuple[Any, ...], ErrorAccumulator] = field(default_factory=dict)
    _policy_ratios: dict[Tolerance, np.ndarray] = field(default_factory=dict)
    _residual_arrays: ResidualArrays | None = None
    _fused_arrays: fused.BlockArrays | None = None

    @property
    def abs_residual(self) -> np.ndarray:
        """|RN_T(y) − y| per point, 0 where y is not finite."""
        return self.residual_arrays().abs_residual

    @property
    def rel_residual(self) -> np.ndarray:
        """|RN_T(y) − y| / |y| where y is a normal number of T, else 0."""
        return self.residual_arrays().rel_residual

    @property
    def normal(self) -> np.ndarray:
        """y finite and a normal number of T."""
        return self.residual_arrays().normal

    @property
    def sketch(self) -> np.ndarray:
        """Each residual's p99 sketch bin (SKETCH_BINS where y is not finite)."""
        return self.residual_arrays().sketch

    @property
    def histogram(self) -> np.ndarray:
        """Each residual's histogram bin (the last, excluded, where y is not finite)."""
        return self.residual_arrays().histogram

    def residual_arrays(self) -> ResidualArrays:
        """RN_T(y)'s own statistics point by point, computed on first use: NumPy's arithmetic
        needs them, the compiled loop (:mod:`fused`) does not, so a block it folds never pays
        for them."""
        if self._residual_arrays is None:
            self._residual_arrays = ResidualArrays.of(self.fmt, self.ref, self.finite, self.residual)
        return self._residual_arrays

    def fused_arrays(self) -> fused.BlockArrays:
        """The block's arrays as the compiled loop reads them, made on first use and shared by
        every answer it folds here."""
        if self._fused_arrays is None:
            self._fused_arrays = fused.BlockArrays.of(self.x, self.ref, self.residual)
        return self._fused_arrays

    def policy_ratios(self, rule: Tolerance) -> np.ndarray:
        """The rule's ratio error / allowance for RN_T(y) itself at every point: 0 throughout
        for a rule that compares with RN_T(y); otherwise computed once per rule and shared by
        every answer."""
        if rule.rounded_reference or self.exact:
            return np.zeros(len(self.x))  # every ratio is 0/allowance: nothing worth keeping
        if rule not in self._policy_ratios:
            self._policy_ratios[rule] = violation_ratios(rule, self.abs_residual, self.magnitude(), self.x)
        return self._policy_ratios[rule]

    def full(self) -> ReferenceBlock:
        """The block with every reference array (this one; a stored block computes them)."""
        return self

    def answer_summary(self, like: ErrorAccumulator, got: np.ndarray) -> ErrorAccumulator | None:
        """None: a computed block knows no answer's statistics but RN_T(y)'s (:meth:`summary`)."""
        return None

    def rounded_candidates(self, where: np.ndarray) -> list[Candidate]:
        """The points at positions ``where`` as the correctly rounded answer's candidates: the
        answer RN_T(y), the error its residual, the distance 0."""
        return _candidates(self, self.ref.rounded, where, self.residual, np.zeros(len(where), np.int64))

    def differs(self, got: np.ndarray) -> np.ndarray:
        """Where ``got`` is not RN_T(y) bit for bit, as a mask (the sign of zero counts): elsewhere
        the answer's statistics are :meth:`summary`'s. A NaN where RN_T(y) is a NaN is not marked,
        whatever its sign and payload: no statistic reads them (such a point is neither an error
        nor a non-finite mismatch), and kernels pass their input's payload through, so each of
        fp32's 2^24 NaN inputs would otherwise differ and be folded point by point, in NumPy
        (0.15-0.2 s a 2^20 chunk, for each kernel: 2.5 CPU-s of a further kernel's audit of the
        space, 2026-11-30). Their one trace: a policy's worst input while its largest ratio is
        0, which no report shows (``PolicyTally.finish``), holds RN_T(y)'s NaN where the summary
        served (tests/audits/test_stats.py)."""
        return answer_differs(got, self.ref.rounded, self._nan_references)

    @cached_property
    def _nan_references(self) -> np.ndarray | None:
        """Where RN_T(y) is a NaN; None where it is nowhere (almost every block)."""
        return None if self.finite.all() else nan_positions(self.ref.rounded)

    def sub_block(self, where: np.ndarray) -> ReferenceBlock:
        """The block's points at positions ``where``, as a block of their own."""
        return ReferenceBlock.build(
            self.fmt, self.x[where], self.index[where], self.ref.take(where), self.top
        )

    @cached_property
    def residual_sum(self) -> float:
        """The block's residuals summed in float64 (NumPy's pairwise sum): a block's error sum is
        this, less the residuals where an answer differs, plus its errors there."""
        return float(np.sum(self.residual))

    def worth_replacing(self, like: ErrorAccumulator, differing: int) -> bool:
        """Whether :meth:`summary` serves this answer: it is RN_T(y) at every point, and the
        summary is at hand (or the block is shared, so it will serve other answers). An answer
        that differs anywhere is folded whole: the fold makes errors only where the answer
        differs (NumPy) or in one compiled pass, and replacing even a few points' share of the
        summary costs more (``benchmarks/compare_first.py``, 2^18 fp32 core points, 2026-11-30,
        for 0.01-25% of the points: 22-41 ns a point against 15-16 with the loop, 38-83 against
        37-66 in NumPy alone). A stored or known block, whose full references cost more than
        its summary, decides for itself (:class:`~gelu_audit.audits.deferred_blocks.DeferredBlock`)."""
        return differing == 0 and (self.shared or like.settings in self._summaries)

    def summary(self, like: ErrorAccumulator) -> ErrorAccumulator:
        """The statistics of a correctly rounded answer on this block, computed once and shared.

        Most blocks of most kernels are correctly rounded throughout (75-88% of the fp32 space's
        32K blocks for the built-ins), and their statistics are those of RN_T(y) itself: the
        residuals. Folding this summary in is exactly what folding in the block would do (every
        part of the accumulator merges), so a second implementation pays for a comparison, not
        for the arithmetic, and the numbers do not depend on which path a block took.
        """
        if like.settings not in self._summaries:
            summary = like.empty_like()
            summary.fold_block(self, self.ref.rounded)
            self._summaries[like.settings] = summary
        return self._summaries[like.settings]

    def magnitude(self) -> np.ndarray:
        """|y| per point (0 where y is not finite), for the tolerance policies; computed on
        first use and shared by every implementation."""
        return self.residual_arrays().magnitude

    def runs(self) -> SegmentRuns:
        """The block's inputs grouped by profile segment; computed on first use, shared."""
        if self._runs is None:
            self._runs = SegmentRuns.of(self.fmt, self.x)
        return self._runs

    def threshold(self) -> float:
        """The (2·top)-th largest residual (−inf if fewer points): an implementation that
        differs from RN_T(y) at fewer than ``top`` points finds its worst correct points above
        it. Computed on first use and shared by every implementation."""
        if self._threshold is None:
            keep, n = 2 * self.top, len(self.x)
            self._threshold = (
                -math.inf if n <= keep else float(np.partition(self.residual, n - keep)[n - keep])
            )
        return self._threshold

    @staticmethod
    def build(
        fmt: FloatFormat,
        x: np.ndarray,
        index: np.ndarray,
        ref: ReferenceValues,
        top: int,
        shared: bool = False,
    ) -> ReferenceBlock:
        if _exact_block(fmt, ref):
            n = len(x)
            normal = np.abs(ref.rounded) >= fmt.smallest_normal  # RN_T(y) is y as float64 here
            arrays = ResidualArrays(
                np.zeros(n), np.zeros(n), normal, np.full(n, _ZERO_SKETCH_BIN), np.zeros(n, np.int64),
                np.abs(ref.rounded),
            )  # fmt: skip
            return ReferenceBlock(
                fmt, x, index, ref, np.ones(n, bool), np.zeros(n), top, shared, exact=True,
                _residual_arrays=arrays,
            )  # fmt: skip
        residual = fused.rounded_residuals(fmt, ref) if len(x) else None  # (every y finite then)
        if residual is not None:
            return ReferenceBlock(fmt, x, index, ref, np.ones(len(x), bool), residual, top, shared)
        finite = np.isfinite(ref.mant_hi)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            residual = np.where(finite, ulp_errors(fmt, ref.rounded, ref), 0.0)
        return ReferenceBlock(fmt, x, index, ref, finite, residual, top, shared)


@dataclass(frozen=True)
class ResidualArrays:
    """A block's RN_T(y) statistics point by point, beyond its residuals (0 where y is not
    finite; the bins: the excluded one)."""

    abs_residual: np.ndarray
    rel_residual: np.ndarray
    normal: np.ndarray
    sketch: np.ndarray
    histogram: np.ndarray
    magnitude: np.ndarray
    """|y|, for the tolerance policies."""

    @staticmethod
    def of(
        fmt: FloatFormat, ref: ReferenceValues, finite: np.ndarray, residual: np.ndarray
    ) -> ResidualArrays:
        approx = ref.approximate()
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            abs_residual = np.where(finite, np.abs(ref.rounded - approx), 0.0)
            magnitude = np.where(finite, np.abs(approx), 0.0)
            normal = finite & (magnitude >= fmt.smallest_normal)
            rel_residual = np.where(normal, abs_residual / magnitude, 0.0)
        sketch = np.where(finite, sketch_bins(residual), SKETCH_BINS)
        histogram = np.where(finite, histogram_bins(residual), len(HISTOGRAM_LABELS))
        return ResidualArrays(abs_residual, rel_residual, normal, sketch, histogram, magnitude)


def _subnormal_masks(block: ReferenceBlock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: RN_T(y) is not zero; x is subnormal; RN_T(y) is subnormal."""
    fmt, x, rounded = block.fmt, block.x, block.ref.rounded
    nonzero = rounded != 0
    subnormal_x = (x != 0) & (np.abs(x) < fmt.smallest_normal)
    return nonzero, subnormal_x, nonzero & (np.abs(rounded) < fmt.smallest_normal)


def _patched(base: np.ndarray, where: np.ndarray, values: Callable[[], np.ndarray]) -> np.ndarray:
    """``base`` with the positions ``where`` set to ``values()``: a copy, or, where there are
    none (an answer equal to RN_T(y) on the whole block, the common case), ``base`` itself,
    which the caller then only reads."""
    if not where.size:
        return base
    if where.size == len(base):  # every position (``where`` holds each once): no copy to overwrite
        return np.asarray(values(), dtype=base.dtype)
    patched = base.copy()
    patched[where] = values()
    return patched


_ZERO_SKETCH_BIN = int(sketch_bins(np.zeros(1))[0])
_EXACT_BINADES = 1000
"""Binades within ±this: y = hi·2^binade and RN_T(y) scale by the same power of two without
rounding in :func:`~gelu_audit.numerics.ulp.ulp_errors` (any format up to fp64)."""
_UNDERFLOW_MARGIN = 1100
"""A binade this far below T's smallest ulp: y scaled to T's ulps underflows float64 to ±0."""


def _exact_block(fmt: FloatFormat, ref: ReferenceValues) -> bool:
    """Whether every residual |RN_T(y) − y| / ulp_T(y) of the block is exactly 0, as
    :func:`~gelu_audit.numerics.ulp.ulp_errors` computes it, decided from a few passes over the
    data rather than from how the references were made (the fast tier, mpmath or a store).

    It is, where ``mant_lo`` is ±0, y as float64 (``approx``) is RN_T(y) bit for bit and
    finite (``mant_hi`` in [1, 2) in magnitude, as every source of references writes it), and
    the binades are either moderate (the two scale to T's ulps exactly, and
    subtract to 0: the saturated x, where f(x) = x to double-double) or so far below T's
    range that y scaled to its ulps is ±0 (the underflowed tail, where RN_T(y) = −0 and
    ``approx`` is −0 too). The first point rules out most other blocks at once.
    """
    lo, rounded = ref.mant_lo, ref.rounded
    if not len(lo) or lo[0] != 0 or ref.take(slice(0, 1)).approximate()[0] != rounded[0]:
        return False
    approx = ref.approximate()
    if lo.any() or not np.array_equal(approx.view(np.int64), rounded.view(np.int64)):
        return False
    if not np.isfinite(approx).all():
        return False
    low, high = int(ref.binade.min()), int(ref.binade.max())
    moderate = low >= -_EXACT_BINADES and high <= _EXACT_BINADES
    return moderate or high <= fmt.emin - fmt.precision - _UNDERFLOW_MARGIN


def reference_blocks(
    fmt: FloatFormat, x: np.ndarray, index: np.ndarray, ref: ReferenceValues, top: int, shared: bool = False
) -> list[ReferenceBlock]:
    """Cut an in-memory input set into blocks at global indices that are multiples of BLOCK;
    ``shared``: several answers will be compared with them (see ``ReferenceBlock.shared``)."""
    return [
        ReferenceBlock.build(fmt, x[sl], index[sl], ref.take(sl), top, shared) for sl in block_slices(index)
    ]


def block_slices(index: np.ndarray) -> list[slice]:
    """The positions of each block: runs of points whose global index lies in one multiple of
    BLOCK (so a chunk that starts mid-block starts with a short one)."""
    n = len(index)
    if n and int(index[-1]) - int(index[0]) == n - 1:  # consecutive (a chunk of patterns): arithmetic
        return consecutive_block_slices(int(index[0]), n)
    cuts = [0, *(np.flatnonzero(np.diff(index // BLOCK)) + 1).tolist(), n]
    return [slice(a, b) for a, b in pairwise(cuts) if b > a]


def consecutive_block_slices(first_index: int, n: int) -> list[slice]:
    """:func:`block_slices` of ``n`` consecutive indices from ``first_index``."""
    cuts = [0, *range(-first_index % BLOCK or BLOCK, n, BLOCK), n]
    return [slice(a, b) for a, b in pairwise(cuts) if b > a]


class AuditBlock(Protocol):
    """What the accumulator needs of a block: a :class:`ReferenceBlock`, or a block that knows
    RN_T(y) and its summary and computes the rest only when an answer differs
    (:class:`~gelu_audit.audits.deferred_blocks.DeferredBlock`: a block of the reference store,
    or a known block)."""

    @property
    def x(self) -> np.ndarray:
        """The block's inputs as float64 values."""
        ...

    def differs(self, got: np.ndarray) -> np.ndarray: ...

    def worth_replacing(self, like: ErrorAccumulator, differing: int) -> bool: ...

    def summary(self, like: ErrorAccumulator) -> ErrorAccumulator: ...

    def sub_block(self, where: np.ndarray) -> ReferenceBlock: ...

    def full(self) -> ReferenceBlock: ...

    def answer_summary(self, like: ErrorAccumulator, got: np.ndarray) -> ErrorAccumulator | None:
        """The statistics of ``got``, an answer that differs from RN_T(y), where the block
        knows them without the arithmetic; None where it does not (most blocks)."""
        ...


# --- the accumulator --------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A point kept for the report, with what is needed to describe it later."""

    error: float | None
    index: int
    x: float
    got: float
    binade: int
    mant_hi: float
    mant_lo: float
    rounded: float
    distance: int | None

    def point(self, fmt: FloatFormat) -> PointReport:
        ref = ReferenceValues(
            np.array([self.binade]),
            np.array([self.mant_hi]),
            np.array([self.mant_lo]),
            np.array([self.rounded]),
        )
        return PointReport(
            self.x,
            hex_pattern(fmt, self.x),
            self.got,
            hex_pattern(fmt, self.got),
            ref.exact_decimal(0),
            self.rounded,
            self.error,
            self.distance,
        )

    def to_state(self) -> list[Any]:
        return [
            self.error,
            self.index,
            self.x,
            self.got,
            self.binade,
            self.mant_hi,
            self.mant_lo,
            self.rounded,
            self.distance,
        ]

    @staticmethod
    def from_state(state: Sequence[Any]) -> Candidate:
        e, i, x, g, b, h, lo, r, d = state
        return Candidate(
            None if e is None else float(e),
            int(i),
            float(x),
            float(g),
            int(b),
            float(h),
            float(lo),
            float(r),
            None if d is None else int(d),
        )


def _candidates(
    block: ReferenceBlock,
    got: np.ndarray,
    where: np.ndarray,
    errors: np.ndarray | None,
    distances: np.ndarray | None,
) -> list[Candidate]:
    """Candidates for the block positions ``where`` (``distances``: one per position, in order)."""
    ref = block.ref
    return [
        Candidate(
            None if errors is None else float(errors[i]),
            int(block.index[i]),
            float(block.x[i]),
            float(got[i]),
            int(ref.binade[i]),
            float(ref.mant_hi[i]),
            float(ref.mant_lo[i]),
            float(ref.rounded[i]),
            None if distances is None else int(distances[k]),
        )
        for k, i in enumerate(where.tolist())
    ]


def _distances_at(where: np.ndarray, differs: np.ndarray, dist_sub: np.ndarray) -> np.ndarray:
    """Ordinal distances at block positions ``where``: from ``dist_sub`` (one per position in
    ``differs``, sorted), 0 where the answer is RN(y)."""
    distances = np.zeros(len(where), np.int64)
    position = np.searchsorted(differs, where)
    hit = position < len(differs)
    hit[hit] = differs[position[hit]] == where[hit]
    distances[hit] = np.maximum(dist_sub[position[hit]], 0)
    return distances


def _fused_candidates(
    block: ReferenceBlock, got: np.ndarray, where: np.ndarray, folded: fused.FusedFold
) -> list[Candidate]:
    """:func:`_candidates` from the compiled loop's errors and ordinal distances."""
    return _candidates(block, got, where, folded.errors, folded.distances[where])


def _rank(error: float | None, index: int) -> tuple[float, int]:
    """The worst inputs' order: the larger error first, then the smaller index."""
    return -(error or 0.0), index


def _worst_first(candidates: list[Candidate], top: int) -> list[Candidate]:
    return sorted(candidates, key=lambda c: _rank(c.error, c.index))[:top]


def _first(candidates: list[Candidate], top: int) -> list[Candidate]:
    return sorted(candidates, key=lambda c: c.index)[:top]


def _rule_ratios(
    rule: Tolerance,
    block: ReferenceBlock,
    where: np.ndarray | slice,
    got: np.ndarray,
    abs_error: np.ndarray,
    mismatched: np.ndarray,
) -> np.ndarray:
    """A rule's error / allowance at the block positions ``where`` (a slice: all of them):
    against RN_T(y) for a rule with a rounded reference (0 where the answer is not finite:
    those are counted apart), else against y (``abs_error``: the answer's, 0 where not
    finite)."""
    x = block.x[where]
    if not rule.rounded_reference:
        return violation_ratios(rule, abs_error[where], block.magnitude()[where], x)
    finite, rounded = block.finite[where], block.ref.rounded[where]
    with np.errstate(invalid="ignore"):
        distance = np.where(finite, np.abs(got[where] - rounded), 0.0)
    distance[mismatched if isinstance(where, slice) else np.isin(where, mismatched)] = 0.0
    return violation_ratios(rule, np.nan_to_num(distance), np.where(finite, np.abs(rounded), 0.0), x)


def policy_breaks(block: ReferenceBlock, got: np.ndarray, rule: Tolerance) -> np.ndarray:
    """Per point of the block, whether its finite answer breaks ``rule``: the decision the
    policy tally counts (:meth:`ErrorAccumulator.add_block`), kept point by point for a
    sample's estimates of how much of the range breaks it."""
    fmt, ref = block.fmt, block.ref
    differs = np.flatnonzero(block.differs(got))
    sub, got_sub = ref.take(differs), got[differs]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        finite_sub = ~np.isnan(ulp_errors(fmt, got_sub, sub))
        abs_sub = np.abs(got_sub - sub.approximate())
    abs_all = block.abs_residual.copy()
    abs_all[differs] = np.where(finite_sub, abs_sub, 0.0)
    mismatched = differs[nonfinite_mismatches(got_sub, sub)]
    breaks: np.ndarray = _rule_ratios(rule, block, slice(None), got, abs_all, mismatched) > 1
    return breaks


@dataclass
class PolicyTally:
    """One policy's running count of breaks and its worst finite input (largest ratio, then
    the smallest index): both merge in any order."""

    finite_breaks: int = 0
    nonfinite: int = 0
    max_ratio: float = 0.0
    worst: Candidate | None = None

    def add(self, finite_breaks: int, nonfinite: int, ratio: float, worst: Candidate | None) -> None:
        self.finite_breaks += finite_breaks
        self.nonfinite += nonfinite
        if worst is not None and self.would_keep(ratio, worst.index):
            self.max_ratio, self.worst = ratio, worst

    def would_keep(self, ratio: float, index: int) -> bool:
        """Whether an input with this ratio and index would become the worst: asked before its
        candidate is built, which costs more than the comparison (most blocks' worst is not)."""
        return self.worst is None or (ratio, -index) > (self.max_ratio, -self.worst.index)

    def merge(self, other: PolicyTally) -> None:
        self.add(other.finite_breaks, other.nonfinite, other.max_ratio, other.worst)

    def finish(self, policy: Policy, rule: Tolerance, fmt: FloatFormat) -> PolicyOutcome:
        worst = self.worst.point(fmt) if self.worst is not None and self.max_ratio > 0 else None
        violations = self.finite_breaks + self.nonfinite
        return PolicyOutcome(policy.name, rule.describe(), violations, self.nonfinite, self.max_ratio, worst)

    def to_state(self) -> list[Any]:
        worst = None if self.worst is None else self.worst.to_state()
        return [self.finite_breaks, self.nonfinite, self.max_ratio, worst]

    @staticmethod
    def from_state(state: Sequence[Any]) -> PolicyTally:
        breaks, nonfinite, ratio, worst = state
        return PolicyTally(
            int(breaks), int(nonfinite), float(ratio), None if worst is None else Candidate.from_state(worst)
        )


@dataclass
class ErrorAccumulator:
    """Statistics of one implementation against one reference, over any number of blocks."""

    against: str
    tolerance: float
    top: int
    points: int = 0
    finite: int = 0
    total: ExactSum = field(default_factory=ExactSum)
    sketch: np.ndarray = field(default_factory=lambda: np.zeros(SKETCH_BINS + 1, np.int64))
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(len(HISTOGRAM_LABELS) + 1, np.int64))
    correct: int = 0
    max_ulp: float = 0.0
    max_ordinal: int = 0
    max_abs: float = 0.0
    max_rel: float | None = None
    worst: list[Candidate] = field(default_factory=list)
    failures: FailureBounds = field(default_factory=FailureBounds)
    normal_failures: FailureBounds = field(default_factory=FailureBounds)
    """The failures where input and RN(y) are normal: the accurate domain over normal numbers."""
    subnormal_counts: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))
    """Subnormal inputs (RN(y) ≠ 0), of them flushed; subnormal results at normal inputs, of
    them flushed (:class:`SubnormalHandling`)."""
    nonfinite_count: int = 0
    nonfinite: list[Candidate] = field(default_factory=list)
    wrong_zero_count: int = 0
    wrong_zeros: list[Candidate] = field(default_factory=list)
    profile: ProfileAccumulator = field(default_factory=ProfileAccumulator)
    flush_count: int = 0
    flush_spans: list[float | None] = field(default_factory=lambda: [None, None, None, None])
    """Lowest and highest flushed x below 0, then above 0 (None: none seen)."""
    worst_outside_flush: list[Candidate] = field(default_factory=list)
    """The largest error among the points not flushed to zero (at most one)."""
    policies: tuple[Policy, ...] = BUILTIN_POLICIES
    tallies: dict[str, PolicyTally] = field(default_factory=dict)
    """Per policy name: violations and the worst input so far (policies with a rule only)."""

    def add_block(self, block: AuditBlock, got: np.ndarray) -> None:
        """Fold in one block's results ``got`` (float64, same order as the block's inputs).

        Compare first, on a block that other answers share (or a stored or known one). Where
        the answer is RN_T(y) throughout, the block's statistics are its shared summary's. Where
        it differs at some points of a stored or known block (up to half of them), whose
        summary costs less than its references, they are the summary's with those points'
        share replaced (:meth:`replaced`): the arithmetic runs on those points only. A computed
        block that differs anywhere gets the arithmetic (``worth_replacing`` says which). A known
        block may also know the statistics of an answer other than RN_T(y)
        (``answer_summary``). Every path gives the numbers of :meth:`fold_block` (tested).
        """
        got = np.asarray(got, dtype=np.float64)
        mask = block.differs(got)
        count = int(np.count_nonzero(mask))
        if count:
            known = block.answer_summary(self, got)
            if known is not None:  # a block that knows this answer's statistics (known_blocks.py)
                self.merge(known)
                return
        if block.worth_replacing(self, count):  # else the summary would serve no one else
            if not count:
                self.merge(block.summary(self))
                return
            differs = np.flatnonzero(mask)
            sub = block.sub_block(differs)
            answer = self.empty_like()
            answer.fold_block(sub, got[differs])
            flushed = sub.index[(got[differs] == 0) & (sub.ref.rounded != 0)]
            part = block.summary(self).replaced(sub.summary(self), answer, sub.index, flushed)
            if part is not None:
                self.merge(part)
                return
        self.fold_block(block.full(), got)

    def replaced(
        self, rounded: ErrorAccumulator, answer: ErrorAccumulator, where: np.ndarray, flushed: np.ndarray
    ) -> ErrorAccumulator | None:
        """This block summary with the share of the points ``where`` (global indices) taken
        out (``rounded``: their summary) and put back as ``answer`` (their statistics for an
        answer that differs from RN_T(y) at each of them, ``flushed`` of them to zero); None
        when that cannot be exact.

        Counts and exact sums subtract and add. The maxima and the worst inputs need one
        fact: a finite answer other than RN_T(y) is never nearer y than RN_T(y) is, so at
        those points every error, ratio and maximum only grows, and the largest over the
        block is the larger of this summary's and the answer's. That fails for answers whose
        error is not finite (they count as 0), and for the largest error outside the flushed
        points when the summary's own largest gets flushed: then the caller folds the block.
        Ties go to the smallest index, as ``np.argmax`` gives them in :meth:`fold_block`: a
        block's indices must rise with its positions, as every caller's do.
        """
        if answer.finite != answer.points or answer.nonfinite_count:
            return None
        taken = set(where.tolist())
        outside = self.worst_outside_flush
        if outside and outside[0].index in taken:
            if outside[0].index in set(flushed.tolist()):
                return None
            outside = []
        part = self.empty_like()
        part.merge(self)
        part.finite += answer.finite - rounded.finite
        part.total.subtract(rounded.total)
        part.total.add(answer.total)
        part.sketch += answer.sketch - rounded.sketch
        part.histogram += answer.histogram - rounded.histogram
        part.correct += answer.correct - rounded.correct
        part.max_ulp = max(self.max_ulp, answer.max_ulp)
        part.max_ordinal = max(self.max_ordinal, answer.max_ordinal)
        part.max_abs = max(self.max_abs, answer.max_abs)
        if answer.max_rel is not None:
            part.max_rel = max(self.max_rel or 0.0, answer.max_rel)
        part.worst = _worst_first([c for c in self.worst if c.index not in taken] + answer.worst, self.top)
        part.failures.merge(answer.failures)
        part.normal_failures.merge(answer.normal_failures)
        part.subnormal_counts += answer.subnormal_counts - rounded.subnormal_counts
        part.wrong_zero_count += answer.wrong_zero_count
        part.wrong_zeros = _first(part.wrong_zeros + answer.wrong_zeros, self.top)
        part.profile.over += answer.profile.over - rounded.profile.over
        part.profile.max_ulp = np.maximum(part.profile.max_ulp, answer.profile.max_ulp)
        part.flush_count += answer.flush_count
        for side in (0, 2):
            lo, hi = answer.flush_spans[side], answer.flush_spans[side + 1]
            if lo is not None and hi is not None:
                part._note_flush(side, lo, hi)
        part.worst_outside_flush = _worst_first(outside + answer.worst_outside_flush, 1)
        for name, tally in part.tallies.items():
            mine, theirs, gone = self.tallies[name], answer.tallies[name], rounded.tallies[name]
            tally.finite_breaks += theirs.finite_breaks - gone.finite_breaks
            if mine.worst is not None and mine.worst.index in taken:
                tally.max_ratio, tally.worst = 0.0, None
            tally.add(0, 0, theirs.max_ratio, theirs.worst)
        return part

    def empty_like(self) -> ErrorAccumulator:
        """No points yet, the same settings."""
        return ErrorAccumulator(self.against, self.tolerance, self.top, policies=self.policies)

    def rules(self, fmt: FloatFormat) -> list[tuple[Policy, Tolerance]]:
        """Each policy with the rule it applies to this case in ``fmt``, in the policies' order
        (a policy without one is skipped). A rule is looked up by formula; the correctly rounded
        audit (``exact``) reads erf's. Looked up once per format (every block asks)."""
        kept = self._rules.get(fmt.name)
        if kept is None or kept[0] is not self.policies:  # (policies set after construction too)
            formula = "erf" if self.against == "exact" else self.against
            rules = [(p, rule) for p in self.policies if (rule := p.rule(fmt.name, formula)) is not None]
            kept = self._rules[fmt.name] = (self.policies, rules)
        return kept[1]

    @cached_property
    def _rules(self) -> dict[str, tuple[tuple[Policy, ...], list[tuple[Policy, Tolerance]]]]:
        return {}

    @cached_property
    def settings(self) -> tuple[Any, ...]:
        """What the statistics depend on besides the answers (a block's summaries are kept per
        settings: the policies, unhashable dataclasses, by their JSON)."""
        policies = json.dumps([policy.to_json() for policy in self.policies], sort_keys=True)
        return (self.against, self.tolerance, self.top, policies)

    def fold_block(self, block: ReferenceBlock, got: np.ndarray) -> None:
        """The arithmetic of :meth:`add_block`: every statistic, point by point."""
        fmt, ref = block.fmt, block.ref
        if block.exact and self.tolerance >= 0 and not block.differs(got).any():
            self._fold_exact(block, got)
            return
        rules = self.rules(fmt)
        tolerances = [rule for _, rule in rules]
        if len(got) and fused.covers(fmt, tolerances):
            folded = fused.fold_fp32_block(
                block.fused_arrays(), got, self.tolerance, self.top, tolerances, self.sketch, SKETCH_SHIFT,
                self.histogram,
            )  # fmt: skip
            if folded is not None:
                self._fold_fused(block, got, folded, rules)
                return
        differs = np.flatnonzero(block.differs(got))
        sub, got_sub = (ref, got) if differs.size == len(got) else (ref.take(differs), got[differs])
        if differs.size:
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                err_sub = ulp_errors(fmt, got_sub, sub)
                finite_sub = ~np.isnan(err_sub)
                dist_sub = ordinal_distances(fmt, got_sub, sub)
                approx_sub = sub.approximate()
                abs_sub = np.abs(got_sub - approx_sub)
                rel_sub = abs_sub / np.abs(approx_sub)
        else:  # RN_T(y) throughout (most blocks of most answers): nothing to compute there
            err_sub, abs_sub, rel_sub = np.zeros(0), np.zeros(0), np.zeros(0)
            finite_sub, dist_sub = np.zeros(0, bool), np.zeros(0, np.int64)

        errors = _patched(block.residual, differs, lambda: np.where(finite_sub, err_sub, 0.0))
        finite = _patched(block.finite, differs, lambda: finite_sub)
        n_finite = int(np.count_nonzero(finite))
        self.points += len(got)
        self.finite += n_finite
        # the residuals' sum, less the residuals where the answer differs, plus its errors there
        self.total.add_float(block.residual_sum)
        if differs.size:
            self.total.add_float(-float(np.sum(block.residual[differs])))
            self.total.add_float(float(np.sum(errors[differs])))
        sketch = _patched(
            block.sketch,
            differs,
            lambda: np.where(finite_sub, sketch_bins(np.where(finite_sub, err_sub, 0.0)), SKETCH_BINS),
        )
        self.sketch += np.bincount(sketch, minlength=SKETCH_BINS + 1)
        hist = _patched(
            block.histogram,
            differs,
            lambda: np.where(
                finite_sub, histogram_bins(np.where(finite_sub, err_sub, 0.0)), len(HISTOGRAM_LABELS)
            ),
        )
        self.histogram += np.bincount(hist, minlength=len(HISTOGRAM_LABELS) + 1)
        wrong = finite_sub & (dist_sub > 0)
        self.correct += n_finite - int(np.count_nonzero(wrong))
        if n_finite:
            self.max_ulp = max(self.max_ulp, float(errors.max()))
        if wrong.any():
            self.max_ordinal = max(self.max_ordinal, int(dist_sub[wrong].max()))
        abs_all = _patched(block.abs_residual, differs, lambda: np.where(finite_sub, abs_sub, 0.0))
        self.max_abs = max(self.max_abs, float(abs_all.max()) if len(abs_all) else 0.0)
        mismatched = differs[nonfinite_mismatches(got_sub, sub)] if differs.size else differs
        self._tally_policies(block, got, abs_all, mismatched, errors, differs, dist_sub)
        normal = block.normal & finite
        if normal.any():
            rel_all = _patched(
                block.rel_residual,
                differs,
                lambda: np.where(block.normal[differs] & finite_sub, rel_sub, 0.0),
            )
            self.max_rel = max(self.max_rel or 0.0, float(rel_all.max()))

        # worst: every point at or above the threshold that certainly holds this block's top.
        finite_errors = err_sub[finite_sub]
        if finite_errors.size >= self.top:
            threshold = float(
                np.partition(finite_errors, finite_errors.size - self.top)[finite_errors.size - self.top]
            )
        else:
            threshold = block.threshold()
        where = self._worth_keeping(np.flatnonzero((errors >= threshold) & finite), errors, block.index)
        distances = _distances_at(where, differs, dist_sub)
        self.worst = _worst_first(self.worst + _candidates(block, got, where, errors, distances), self.top)

        # accurate domain: the failing inputs nearest 0.
        over = errors > self.tolerance
        failing = np.concatenate([np.flatnonzero(over), mismatched])
        self.failures.note(*failure_bounds(block.x[failing]))
        # over normal numbers: neither the input nor the correctly rounded result subnormal
        nonzero, subnormal_x, subnormal_rn = _subnormal_masks(block)
        normal = ~(subnormal_x | subnormal_rn)
        self.normal_failures.note(*failure_bounds(block.x[failing[normal[failing]]]))
        self.profile.add(fmt, block.runs(), errors, over, mismatched)

        self.nonfinite_count += len(mismatched)
        self.nonfinite = _first(
            self.nonfinite + _candidates(block, got, mismatched[: self.top], None, None), self.top
        )
        # flush to zero: ±0 where RN(y) is not zero; the largest error everywhere else.
        flushed = differs[finite_sub & (got_sub == 0) & (sub.rounded != 0)]
        self.flush_count += len(flushed)
        x_flushed = block.x[flushed]
        for side, x_side in ((0, x_flushed[x_flushed < 0]), (2, x_flushed[x_flushed > 0])):
            if x_side.size:
                self._note_flush(side, float(x_side.min()), float(x_side.max()))
        self._note_zero_answers(block, got, nonzero, subnormal_x, subnormal_rn)
        rest = np.where(finite, errors, -1.0)
        rest[flushed] = -1.0
        if len(rest) and rest.max() > 0:
            at = np.array([np.argmax(rest)])  # the first of equal maxima: the lowest index in the block
            self._note_outside_flush(
                float(rest[at[0]]),
                int(block.index[at[0]]),
                lambda: _candidates(block, got, at, errors, _distances_at(at, differs, dist_sub)),
            )

    def _last_kept_error(self) -> float | None:
        """The error of the last worst input kept, once ``top`` are (None before): a candidate
        below it would not enter."""
        return self.worst[-1].error if len(self.worst) >= self.top else None

    def _worth_keeping(self, where: np.ndarray, errors: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Of a block's positions ``where`` (every point at or above a threshold that holds the
        block's ``top`` worst), those worth building a candidate for: the block's ``top`` worst
        by rank where there are many, and none below the last worst input kept."""
        if where.size > 4 * self.top:
            where = where[np.lexsort((index[where], -errors[where]))[: self.top]]
        last = self._last_kept_error()
        return where if last is None else where[errors[where] >= last]

    def _fold_fused(
        self,
        block: ReferenceBlock,
        got: np.ndarray,
        folded: fused.FusedFold,
        rules: list[tuple[Policy, Tolerance]],
    ) -> None:
        """:meth:`fold_block` from the compiled loop's reductions (:mod:`fused`), on a block it
        covers: every value finite, no zero answer, input or RN_T(y), so nothing is flushed,
        mismatched or a wrong zero (a subnormal input or RN_T(y) is counted, by the loop). The
        float sums run here, over the differing points' residuals and errors in order, as
        :meth:`fold_block` sums them. The worst inputs are chosen from every point's error: the
        block's ``top`` largest hold its worst whichever points the threshold comes from."""
        fmt, n, errors = block.fmt, len(got), folded.errors
        self.points += n
        self.finite += n
        self.total.add_float(block.residual_sum)
        if folded.residual_at.size:
            self.total.add_float(-float(np.sum(folded.residual_at)))
            self.total.add_float(float(np.sum(folded.errors_at)))
        self.correct += n - folded.wrong
        self.max_ulp = max(self.max_ulp, folded.max_error)
        if folded.wrong:
            self.max_ordinal = max(self.max_ordinal, folded.max_ordinal)
        self.max_abs = max(self.max_abs, folded.max_abs)
        for (policy, _), ratio, breaks, first in zip(
            rules, folded.rule_ratios, folded.rule_breaks, folded.rule_first_max
        ):
            tally = self.tallies.setdefault(policy.name, PolicyTally())
            worst = None
            if tally.would_keep(ratio, int(block.index[first])):
                worst = _fused_candidates(block, got, np.array([first]), folded)[0]
            tally.add(breaks, 0, ratio, worst)
        if folded.any_normal:
            self.max_rel = max(self.max_rel or 0.0, folded.max_rel)

        last = self._last_kept_error()
        if self.top > 0 and (last is None or folded.max_error >= last):  # else none would enter
            threshold = folded.top_threshold  # the loop's, where it looked
            if threshold is None and n >= self.top:
                threshold = np.partition(errors, n - self.top)[n - self.top]
            where = np.flatnonzero(errors >= threshold) if n >= self.top else np.arange(n)
            where = self._worth_keeping(where, errors, block.index)
            self.worst = _worst_first(self.worst + _fused_candidates(block, got, where, folded), self.top)

        self.failures.note(folded.failure_below, folded.failure_above, False)  # no x is 0 here
        self.normal_failures.note(folded.normal_failure_below, folded.normal_failure_above, False)
        if folded.subnormal_inputs or folded.subnormal_results:  # none of them flushed: no answer is 0
            self.subnormal_counts += [folded.subnormal_inputs, 0, folded.subnormal_results, 0]
        runs = block.runs()
        whole = runs.whole_segment(n)
        if whole is not None:  # the loop's largest error and count above the tolerance serve
            self.profile.add_segment(fmt, whole, n, folded.max_error, folded.over)
        else:
            self.profile.add(fmt, runs, errors, errors > self.tolerance, np.zeros(0, np.int64))
        self.nonfinite = _first(self.nonfinite, self.top)
        if folded.max_error > 0:
            at = np.array([folded.first_max_error])
            self._note_outside_flush(
                folded.max_error, int(block.index[at[0]]), lambda: _fused_candidates(block, got, at, folded)
            )

    def _note_outside_flush(self, error: float, index: int, candidate: Callable[[], list[Candidate]]) -> None:
        """A block's largest error outside the flushed points, at its first position: kept if it
        ranks before the one kept so far, its candidate built only then."""
        kept = self.worst_outside_flush
        if not kept or _rank(error, index) < _rank(kept[0].error, kept[0].index):
            self.worst_outside_flush = _worst_first(kept + candidate(), 1)

    def _note_zero_answers(
        self,
        block: ReferenceBlock,
        got: np.ndarray,
        nonzero: np.ndarray,
        subnormal_x: np.ndarray,
        subnormal_rn: np.ndarray,
    ) -> None:
        """The subnormal inputs and results (:func:`_subnormal_masks`) and how many of them
        the answer flushed to zero; the zeros whose sign is wrong (none where no answer is 0,
        most blocks)."""
        zero_answer = got == 0
        subnormal_y = subnormal_rn & ~subnormal_x
        self.subnormal_counts += [
            np.count_nonzero(subnormal_x & nonzero),
            np.count_nonzero(subnormal_x & nonzero & zero_answer),
            np.count_nonzero(subnormal_y),
            np.count_nonzero(subnormal_y & zero_answer),
        ]
        if not zero_answer.any():
            return
        zeros = np.flatnonzero(wrong_sign_zeros(got, block.ref))
        self.wrong_zero_count += len(zeros)
        self.wrong_zeros = _first(
            self.wrong_zeros + _candidates(block, got, zeros[: self.top], None, None), self.top
        )

    def _fold_exact(self, block: ReferenceBlock, got: np.ndarray) -> None:
        """:meth:`fold_block` where every error is 0: an exact block (``block.exact``) answered
        with RN_T(y) throughout. What the arithmetic would find there, without it: every point
        finite, correctly rounded, in the histogram's and the sketch's bin of 0; no failure,
        flush or non-finite mismatch; every policy ratio 0, so each policy's worst input is the
        block's first; the worst inputs are the block's first ``top`` (equal errors: the smallest
        indices, which are the first positions because a block's indices rise with its
        positions, as every caller's do and :meth:`replaced` also needs). The same numbers as
        the arithmetic, tested block by block (tests/audits/test_exhaustive.py)."""
        fmt, n = block.fmt, len(got)
        self.points += n
        self.finite += n
        self.total.add_float(0.0)
        self.sketch[_ZERO_SKETCH_BIN] += n
        self.histogram[0] += n
        self.correct += n
        if not n:
            return
        self.max_ulp = max(self.max_ulp, 0.0)
        self.max_abs = max(self.max_abs, 0.0)
        none = np.zeros(0, np.int64)
        first = int(block.index[0])
        for policy, _ in self.rules(fmt):
            tally = self.tallies.setdefault(policy.name, PolicyTally())
            worst = (
                block.rounded_candidates(np.zeros(1, np.int64))[0] if tally.would_keep(0.0, first) else None
            )
            tally.add(0, 0, 0.0, worst)
        if block.normal.any():
            self.max_rel = max(self.max_rel or 0.0, 0.0)
        candidates = block.rounded_candidates(np.arange(min(n, self.top)))
        self.worst = _worst_first(self.worst + candidates, self.top)
        self.profile.add(fmt, block.runs(), block.residual, np.zeros(n, bool), none)
        self.nonfinite = _first(self.nonfinite, self.top)
        self._note_zero_answers(block, got, *_subnormal_masks(block))

    def _tally_policies(
        self,
        block: ReferenceBlock,
        got: np.ndarray,
        abs_error: np.ndarray,
        mismatched: np.ndarray,
        errors: np.ndarray,
        differs: np.ndarray,
        dist_sub: np.ndarray,
    ) -> None:
        """Each policy's rule at every point of the block: count the breaks, keep the worst."""
        if not len(got):
            return
        for policy, rule in self.rules(block.fmt):
            if block.shared or rule.rounded_reference:  # RN_T(y)'s own; afresh where it differs
                ratios = block.policy_ratios(rule)
                if differs.size:
                    ratios = ratios.copy()
                    ratios[differs] = _rule_ratios(rule, block, differs, got, abs_error, mismatched)
            else:  # one answer: evaluated everywhere, nothing kept
                ratios = _rule_ratios(rule, block, slice(None), got, abs_error, mismatched)
            at = np.array([int(np.argmax(ratios))])
            ratio, tally = float(ratios[at[0]]), self.tallies.setdefault(policy.name, PolicyTally())
            worst = None
            if tally.would_keep(ratio, int(block.index[at[0]])):
                worst = _candidates(block, got, at, errors, _distances_at(at, differs, dist_sub))[0]
            tally.add(int(np.count_nonzero(ratios > 1)), len(mismatched), ratio, worst)

    def merge(self, other: ErrorAccumulator) -> None:
        """Fold in another accumulator of the same case (another process or shard)."""
        self.points += other.points
        self.finite += other.finite
        self.total.add(other.total)
        self.sketch += other.sketch
        self.histogram += other.histogram
        self.correct += other.correct
        self.max_ulp = max(self.max_ulp, other.max_ulp)
        self.max_ordinal = max(self.max_ordinal, other.max_ordinal)
        self.max_abs = max(self.max_abs, other.max_abs)
        if other.max_rel is not None:
            self.max_rel = max(self.max_rel or 0.0, other.max_rel)
        self.worst = _worst_first(self.worst + other.worst, self.top)
        self.failures.merge(other.failures)
        self.normal_failures.merge(other.normal_failures)
        self.subnormal_counts += other.subnormal_counts
        self.nonfinite_count += other.nonfinite_count
        self.nonfinite = _first(self.nonfinite + other.nonfinite, self.top)
        self.wrong_zero_count += other.wrong_zero_count
        self.wrong_zeros = _first(self.wrong_zeros + other.wrong_zeros, self.top)
        self.profile.merge(other.profile)
        self.flush_count += other.flush_count
        for side in (0, 2):
            lo, hi = other.flush_spans[side], other.flush_spans[side + 1]
            if lo is not None and hi is not None:
                self._note_flush(side, lo, hi)
        self.worst_outside_flush = _worst_first(self.worst_outside_flush + other.worst_outside_flush, 1)
        for name, tally in other.tallies.items():
            self.tallies.setdefault(name, PolicyTally()).merge(tally)

    def _note_flush(self, side: int, lo: float, hi: float) -> None:
        """Widen the span of flushed x on one side (0: below zero, 2: above)."""
        old_lo, old_hi = self.flush_spans[side], self.flush_spans[side + 1]
        self.flush_spans[side] = lo if old_lo is None else min(old_lo, lo)
        self.flush_spans[side + 1] = hi if old_hi is None else max(old_hi, hi)

    def p99(self) -> float:
        counts = self.sketch[:SKETCH_BINS]
        if self.finite == 0:
            return 0.0
        rank = math.ceil(PERCENTILE * self.finite)
        b = int(np.searchsorted(np.cumsum(counts), rank, side="left"))
        upper = np.array([(b + 1) << SKETCH_SHIFT], np.uint32).view(np.float32)[0]
        return min(float(upper), self.max_ulp)

    def finish(self, fmt: FloatFormat, tested: InputSpace) -> ErrorStats:
        n = self.finite
        counts = self.histogram[: len(HISTOGRAM_LABELS)]
        return ErrorStats(
            against=self.against,
            finite_points=n,
            max_ulp=self.max_ulp,
            mean_ulp=self.total.mean(n),
            p99_ulp=self.p99(),
            correctly_rounded=self.correct / n if n else 1.0,
            max_ordinal_distance=self.max_ordinal,
            max_error_bits=math.log2(1 + self.max_ordinal),
            max_abs_error=self.max_abs,
            max_rel_error=self.max_rel,
            histogram=tuple(zip(HISTOGRAM_LABELS, (int(c) for c in counts))),
            worst=tuple(c.point(fmt) for c in self.worst),
            accurate_domain=self.failures.domain(self.tolerance, tested),
            accurate_domain_normal=self.normal_failures.domain(self.tolerance, tested),
            subnormals=SubnormalHandling(*(int(c) for c in self.subnormal_counts)),
            profile=self.profile.finish(),
            flush_to_zero=FlushToZero(
                self.flush_count,
                _span(self.flush_spans[0], self.flush_spans[1]),
                _span(self.flush_spans[2], self.flush_spans[3]),
            ),
            max_ulp_outside_flush=(self.worst_outside_flush[0].error or 0.0)
            if self.worst_outside_flush
            else 0.0,
            worst_outside_flush=self.worst_outside_flush[0].point(fmt) if self.worst_outside_flush else None,
            policies=tuple(
                self.tallies[policy.name].finish(policy, rule, fmt)
                for policy in self.policies
                if policy.name in self.tallies
                and (rule := policy.rule(fmt.name, "erf" if self.against == "exact" else self.against))
            ),
        )

    # --- state for shard files ---

    def to_state(self) -> dict[str, Any]:
        nonzero = np.flatnonzero(self.sketch)
        return {
            "against": self.against,
            "tolerance": self.tolerance,
            "top": self.top,
            "points": self.points,
            "finite": self.finite,
            "sum_scaled_2^-1074": str(self.total.scaled),
            "sum_infinite": self.total.infinite,
            "sketch": [[int(b), int(self.sketch[b])] for b in nonzero],
            "histogram": [int(c) for c in self.histogram],
            "correct": self.correct,
            "max_ulp": self.max_ulp,
            "max_ordinal": self.max_ordinal,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "worst": [c.to_state() for c in self.worst],
            "failure_below": self.failures.below,
            "failure_above": self.failures.above,
            "fails_at_zero": self.failures.at_zero,
            "normal_failures": self.normal_failures.to_state(),
            "subnormal_counts": [int(c) for c in self.subnormal_counts],
            "nonfinite_count": self.nonfinite_count,
            "nonfinite": [c.to_state() for c in self.nonfinite],
            "wrong_zero_count": self.wrong_zero_count,
            "wrong_zeros": [c.to_state() for c in self.wrong_zeros],
            "profile": self.profile.to_state(),
            "flush_count": self.flush_count,
            "flush_spans": self.flush_spans,
            "policies": [policy.to_json() for policy in self.policies],
            "tallies": {name: tally.to_state() for name, tally in self.tallies.items()},
            "worst_outside_flush": [c.to_state() for c in self.worst_outside_flush],
        }

    @staticmethod
    def from_state(state: dict[str, Any]) -> ErrorAccumulator:
        def num(v: Any) -> float | None:
            return None if v is None else float(v)  # "inf"/"nan" strings read back too

        acc = ErrorAccumulator(str(state["against"]), float(state["tolerance"]), int(state["top"]))
        acc.points, acc.finite = int(state["points"]), int(state["finite"])
        acc.total = ExactSum(int(state["sum_scaled_2^-1074"]), bool(state["sum_infinite"]))
        for b, c in state["sketch"]:
            acc.sketch[int(b)] = int(c)
        acc.histogram = np.array(state["histogram"], np.int64)
        acc.correct = int(state["correct"])
        acc.max_ulp, acc.max_ordinal = float(state["max_ulp"]), int(state["max_ordinal"])
        acc.max_abs, acc.max_rel = float(state["max_abs"]), num(state["max_rel"])
        acc.worst = [Candidate.from_state(c) for c in state["worst"]]
        acc.failures = FailureBounds(
            num(state["failure_below"]), num(state["failure_above"]), bool(state["fails_at_zero"])
        )
        acc.normal_failures = FailureBounds.from_state(state["normal_failures"])
        acc.subnormal_counts = np.array(state["subnormal_counts"], np.int64)
        acc.nonfinite_count = int(state["nonfinite_count"])
        acc.nonfinite = [Candidate.from_state(c) for c in state["nonfinite"]]
        acc.wrong_zero_count = int(state["wrong_zero_count"])
        acc.wrong_zeros = [Candidate.from_state(c) for c in state["wrong_zeros"]]
        acc.profile = ProfileAccumulator.from_state(state["profile"])
        acc.flush_count = int(state["flush_count"])
        acc.flush_spans = [num(v) for v in state["flush_spans"]][:4]
        acc.worst_outside_flush = [Candidate.from_state(c) for c in state["worst_outside_flush"]][:1]
        acc.policies = tuple(Policy.from_json(p) for p in state["policies"])
        acc.tallies = {str(name): PolicyTally.from_state(t) for name, t in state["tallies"].items()}
        acc.check()
        return acc

    def check(self) -> None:
        """The counts of a state read from a file must add up (every point is in one histogram
        bin and one sketch bin, excluded ones in the last); ValueError names what does not."""
        if not 0 <= self.correct <= self.finite <= self.points:
            raise ValueError(
                f"counts out of order: correct {self.correct}, finite {self.finite}, points {self.points}"
            )
        if int(self.histogram.sum()) != self.points or int(self.sketch.sum()) != self.points:
            raise ValueError(f"histogram and sketch do not add up to the {self.points} points")
        if len(self.histogram) != len(HISTOGRAM_LABELS) + 1 or not self.max_ulp >= 0:
            raise ValueError("histogram bins or maximum out of range")
        if len(self.flush_spans) != 4 or not 0 <= self.flush_count <= self.points:
            raise ValueError("flush-to-zero counts or spans out of range")


def against_label(function: Function) -> str:
    """What statistics against ``function``'s references are labelled: "exact" for the exact
    GELU (or GELU′), else the formula claimed ("tanh", in either pass)."""
    return "exact" if function is exact_function_for(function) else claimed_formula(function).name


class AnswerBits:
    """A kernel's answers as the bit patterns of its format, decoded to float64 on first use.

    The exhaustive stream hands a chunk's answers over in this form: where the chunk is known
    (:class:`~gelu_audit.audits.known_blocks.KnownChunk`, seven eighths of fp32) and a kernel
    answers it with RN_T(y) throughout, the patterns alone say so, and the chunk's statistics
    are carried over without decoding the answers or comparing them as float64 (about 2 ms a
    2^20 chunk for each kernel, 2026-11-30)."""

    def __init__(self, fmt: FloatFormat, bits: np.ndarray) -> None:
        self.fmt = fmt
        self.bits = bits

    def __len__(self) -> int:
        return len(self.bits)

    @cached_property
    def values(self) -> np.ndarray:
        """The answers as float64, exactly."""
        return patterns_to_values(self.fmt, self.bits)


def answer_values(got: np.ndarray | AnswerBits) -> np.ndarray:
    """Answers as float64 values, decoding them if they came as bit patterns."""
    return got.values if isinstance(got, AnswerBits) else got


@runtime_checkable
class KnownAnswers(Protocol):
    """A sequence of blocks that may know the statistics of a whole answer at once, without
    asking each block (:class:`~gelu_audit.audits.known_blocks.KnownChunk`)."""

    def whole_summary(self, like: ErrorAccumulator, got: np.ndarray | AnswerBits) -> ErrorAccumulator | None:
        """The statistics of ``got`` over every block, the same as folding in each block would
        give; None where they are not known (then each block is asked)."""
        ...


def accumulate(
    blocks: Sequence[AuditBlock],
    got: np.ndarray | AnswerBits,
    against: str,
    tolerance: float,
    top: int,
    policies: tuple[Policy, ...] = BUILTIN_POLICIES,
    into: ErrorAccumulator | None = None,
) -> ErrorAccumulator:
    """Fold the results ``got`` (in the blocks' order, concatenated) into one accumulator:
    ``into`` (the same numbers as a fresh one merged into it, and its worst inputs so far let
    most blocks skip building candidates that would not be kept), else a new one."""
    acc = ErrorAccumulator(against, tolerance, top, policies=policies) if into is None else into
    if isinstance(blocks, KnownAnswers):
        known = blocks.whole_summary(acc, got)
        if known is not None:
            acc.merge(known)
            return acc
    got = answer_values(got)
    start = 0
    for block in blocks:
        acc.add_block(block, got[start : start + len(block.x)])
        start += len(block.x)
    return acc


@dataclass
class CaseAccumulators:
    """One case's statistics: against the exact GELU, and against the formula it claims (None
    when that is erf). Merges like its parts, for chunks, processes and shards alike."""

    exact: ErrorAccumulator
    own: ErrorAccumulator | None = None

    @staticmethod
    def empty(
        formula: Function, tolerance: float, top: int, policies: tuple[Policy, ...] = BUILTIN_POLICIES
    ) -> CaseAccumulators:
        """No points yet (a shard may hold none of a case's points)."""
        own = (
            None
            if formula is exact_function_for(formula)
            else ErrorAccumulator(against_label(formula), tolerance, top, policies=policies)
        )
        return CaseAccumulators(ErrorAccumulator("exact", tolerance, top, policies=policies), own)

    def merge(self, other: CaseAccumulators) -> None:
        self.exact.merge(other.exact)
        if other.own is not None and self.own is not None:
            self.own.merge(other.own)

    def to_state(self) -> dict[str, Any]:
        return {"exact": self.exact.to_state(), "own": None if self.own is None else self.own.to_state()}

    @staticmethod
    def from_state(state: dict[str, Any]) -> CaseAccumulators:
        own = None if state["own"] is None else ErrorAccumulator.from_state(state["own"])
        return CaseAccumulators(ErrorAccumulator.from_state(state["exact"]), own)


def case_accumulators(
    blocks: Mapping[str, Sequence[AuditBlock]],
    got: np.ndarray | AnswerBits,
    formula: Function,
    tolerance: float,
    top: int,
    policies: tuple[Policy, ...] = BUILTIN_POLICIES,
    into: CaseAccumulators | None = None,
) -> CaseAccumulators:
    """Against the exact GELU (or GELU′), and against the claimed formula (or its derivative;
    None when that is the exact one); folded into ``into`` when given (see :func:`accumulate`)."""
    exact_function = exact_function_for(formula)
    exact = accumulate(
        blocks[exact_function.name],
        got,
        "exact",
        tolerance,
        top,
        policies,
        None if into is None else into.exact,
    )
    own = (
        None
        if formula is exact_function
        else accumulate(
            blocks[formula.name],
            got,
            against_label(formula),
            tolerance,
            top,
            policies,
            None if into is None else into.own,
        )
    )
    return CaseAccumulators(exact, own)
