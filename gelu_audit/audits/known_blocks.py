"""Known blocks: where the correctly rounded answer's statistics are a prototype block's,
scaled by a power of two or unchanged, instead of being computed point by point.

Most blocks of most kernels are answered with RN_T(y) throughout, and then their statistics
are RN_T(y)'s own (compare first, ``ErrorAccumulator.add_block``). In three regions of x,
which hold 85% of the fp32 inputs for erf (84–86% for the other formulas and GELU′), those
statistics are the same from binade to binade, up to the scaling and the block's own inputs.
So they need not be computed for every block.

**Tiny** (:data:`TINY`): 2^(emin+2) ≤ |x| < 2^(−p−4), the fast tier's own tiny region (GELU′:
2^(−p−3)). This is fp32's 96 binades of each sign, 37% of its inputs.
- f(x) is x/2 + c·x² + O(x⁴) with 0 < c < 1/2 for every formula, and RN_T(y) is x/2.
- The fast tier's reference is the double-double (hi, lo) = (x/2 / 2^b, c·x·2hi), where b is
  the binade of x/2.
- Take the blocks at the same positions of two binades: their inputs are x and 2^k·x. Every
  float64 operation behind their ULP statistics is exact under a power-of-two scaling as long
  as no value leaves the normal range: c·x, the residual |lo|·2^(p−1), the pairwise sum of the
  residuals, and their float32 sketch bins.
- So the residuals, their sum and their maximum are 2^k times the other block's. The sketch
  bins move up by k·2^7 (the float32 exponent field, shifted by ``SKETCH_SHIFT``). The residuals
  keep their order, so the worst inputs are at the same positions.
- Everything else that the ULP statistics hold is the same in both blocks. Every point is
  finite, correctly rounded, normal (x/2 ≥ 2^(emin+1)) and in the histogram's bin ≤0.5. There
  is no failure, flush, non-finite answer or wrong zero.
- The statistics against y as float64 (the absolute and relative residuals, every tolerance
  policy's ratio) do not scale: y as float64 is x/2 + c·x² rounded to float64. Up to
  :data:`FLOAT64_EXACT_TOP_BINADE` that is x/2 itself (c·x² is below half a float64 ulp of x/2
  for |x| < 2^−55), so they are 0 and carry over too. Above it (fp32's 27 binades from 2^−55 to
  2^−28), each block computes them from its references in a few passes
  (:meth:`KnownBlock._float64_errors`), and carries the rest.

**Saturated** (:data:`SATURATED`, x ≥ the formula's ``saturated_from``: RN_T(y) = x) and
**underflowed** (:data:`UNDERFLOWED`, x ≤ its ``underflowed_below``: RN_T(y) = −0). There
x·(1 − σ) is 0 in float64 (f(x) = x to double-double), respectively |y| < 2^−2000, so every
residual is exactly 0 (``ReferenceBlock.exact``) and the statistics do not depend on the binade
at all. Only the inputs named in them (the worst, each policy's worst) and the profile's segment
change. For erf that is x ≥ 64 and x ≤ −64, 24% of fp32's inputs each (tanh: ±32; sigmoid: 512
and −1024, 23%).

**The gradient** (``--pass backward``) has the same three regions (:data:`GRADIENT_REGIONS`).
- In the tiny range, GELU′ = ½ + 2c·x + O(x³) rounds to ½, and its residual scales with x.
- For x ≥ ``flat_from``, RN_T(GELU′) is 1 with no residual.
- For x ≤ −``flat_from``, it is −0 with no residual.

Each worker process computes, per region, block position in the binade, sign and settings,
one prototype block in the region's prototype binade, with the ordinary arithmetic. A block
anywhere in the region then gets that summary, scaled, with its own named inputs (their
references come from the fast tier, for those few points alone) and its own profile segment.
A chunk that a kernel answers with RN_T(y) throughout gets its blocks' prototypes, merged, in
one carry (:class:`KnownChunk`).

Before a prototype serves, its own statistics are checked against every premise above:
- RN_T(y) is the region's, bit for bit;
- every point is correct, in one histogram bin;
- no absolute or relative residual, failure, flush, subnormal, non-finite answer, wrong zero
  or policy break.

The scaled maximum must also stay within the tolerance and the histogram's bin, and the
sketch's bins within float32's normal range; a tiny block that computes its float64 errors
must have RN_T(y) = x/2 and every y normal. An answer that differs from RN_T(y) gets the
ordinary path (``sub_block``, ``full``: :class:`~gelu_audit.audits.deferred_blocks.DeferredBlock`),
as a stored block does.

Tested against the arithmetic block by block, in every binade of every region
(tests/audits/test_known_blocks.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from gelu_audit.audits import fused
from gelu_audit.audits.deferred_blocks import DeferredBlock
from gelu_audit.audits.policies import Tolerance, violation_ratios
from gelu_audit.audits.profile import ProfileAccumulator, segment_keys
from gelu_audit.audits.stats import (
    SKETCH_BINS,
    SKETCH_SHIFT,
    AnswerBits,
    Candidate,
    ErrorAccumulator,
    PolicyTally,
    ReferenceBlock,
    answer_values,
    block_slices,
    consecutive_block_slices,
    differing_mask,
)
from gelu_audit.numerics.formats import BlockInputs, FloatFormat, patterns_to_values, values_to_patterns
from gelu_audit.numerics.formulas import Derivative, Formula, Function
from gelu_audit.numerics.ulp import HISTOGRAM_EDGES

# The references these blocks compute (for differing points, a tiny slice's float64 errors,
# prototypes) are decided by the regions before ``fast``, which run in NumPy whatever the
# stream's --reference-tier (references/tiers.py): the default tier serves them.
from gelu_audit.references.fast_gradient import fast_references_of, tiny_bound_of
from gelu_audit.references.fast_tier import BLOCK, REGIONS, TierCounts

FLOAT64_EXACT_TOP_BINADE = -56
"""The largest binade of x where y as float64 is RN_T(y) itself: below 2^−55, c·x² < 2^−54·|x/2|
for c < 1/2, so x/2 + c·x², rounded to float64, is x/2 (GELU′: ½ + 2c·x is ½). Tiny blocks
above it compute their absolute and relative errors (:meth:`KnownBlock._float64_errors`)."""
_EXPONENT = 23 - SKETCH_SHIFT
"""A sketch bin shifted right by this is its float32 exponent field (1 … 254: normal)."""


def tiny_bounds(function: Function, fmt: FloatFormat) -> tuple[float, float] | None:
    """[lowest, highest) of |x| served as tiny: x/2 and RN_T(y) normal numbers of T, in the
    fast tier's tiny region (|x| < 2^(−p−4), for GELU′ 2^(−p−3)), for a formula with c in
    (0, 1/2); None where that is empty (fp16)."""
    formula = function if isinstance(function, Formula) else function.of
    lowest, highest = math.ldexp(1.0, fmt.emin + 2), tiny_bound_of(function, fmt)
    if not 0 < formula.series_coefficient < 0.5 or lowest >= highest:
        return None
    return lowest, highest


def _in_tiny(function: Function, fmt: FloatFormat, lowest: float, highest: float) -> bool:
    bounds = tiny_bounds(function, fmt)
    if bounds is None:
        return False
    low, high = bounds
    return (low <= lowest and highest < high) or (-high < lowest and highest <= -low)


@dataclass(frozen=True)
class KnownRegion:
    """A region of x where RN_T(y) is known without evaluating f, and its statistics follow
    from a prototype block's."""

    name: str
    """The fast tier's name for it (the report's region counts)."""
    holds: Callable[[Function, FloatFormat, float, float], bool]
    """Whether every x in [lowest, highest] lies in it (False for NaN)."""
    rounded: Callable[[np.ndarray], np.ndarray]
    """RN_T(y), exactly."""
    prototype_binade: int
    """The binade of x whose blocks are computed and carried to the others."""
    scales: bool
    """True: the residuals scale by 2^k with the binade. False: they are all 0."""
    constant: bool = False
    """RN_T(y) is one value over the region (then a constant answer's statistics carry too)."""
    rounded_patterns: Callable[[FloatFormat, np.ndarray], np.ndarray] | None = None
    """RN_T(y)'s bit patterns from the inputs', in integer arithmetic (a chunk given by its
    patterns is then not decoded to be compared), or its one pattern where RN_T(y) is one value
    and the region is not ``constant`` (GELU′'s tiny region: ½)."""


def _minus_zero(x: np.ndarray) -> np.ndarray:
    return np.full_like(x, -0.0)


def _saturated(f: Function, fmt: FloatFormat, lowest: float, highest: float) -> bool:
    return isinstance(f, Formula) and lowest >= f.saturated_from and highest < math.inf


def _underflowed(f: Function, fmt: FloatFormat, lowest: float, highest: float) -> bool:
    return isinstance(f, Formula) and -math.inf < lowest and highest <= f.underflowed_below


def _flat(f: Function, fmt: FloatFormat, lowest: float, highest: float) -> bool:
    return isinstance(f, Derivative) and lowest >= f.flat_from and highest < math.inf


def _flat_below(f: Function, fmt: FloatFormat, lowest: float, highest: float) -> bool:
    return isinstance(f, Derivative) and -math.inf < lowest and highest <= -f.flat_from


def _one_binade_lower(fmt: FloatFormat, patterns: np.ndarray) -> np.ndarray:
    """The patterns of x/2 where x/2 is a normal number (the exponent field less 1)."""
    return patterns - patterns.dtype.type(1 << fmt.mantissa_bits)


TINY = KnownRegion("tiny", _in_tiny, lambda x: 0.5 * x, -90, True, rounded_patterns=_one_binade_lower)
SATURATED = KnownRegion("saturated", _saturated, lambda x: x, 40, False, rounded_patterns=lambda fmt, p: p)
UNDERFLOWED = KnownRegion("underflow", _underflowed, _minus_zero, 40, False, constant=True)
FORWARD_REGIONS = (TINY, SATURATED, UNDERFLOWED)


def _half(fmt: FloatFormat, patterns: np.ndarray) -> np.ndarray:
    """The one pattern of ½ (which broadcasts)."""
    return values_to_patterns(fmt, np.array([0.5]))


GRADIENT_TINY = KnownRegion(
    "tiny", _in_tiny, lambda x: np.full_like(x, 0.5), -90, True, rounded_patterns=_half
)
"""GELU′ = ½ + 2c·x + O(x³) rounds to ½. Its residual, 4c·|x|·2^(p−1) (8c for x < 0, a binade
lower), scales with x as the forward's does, and y as float64 is ½ itself below 2^−54."""
GRADIENT_SATURATED = KnownRegion("saturated", _flat, lambda x: np.full_like(x, 1.0), 40, False, constant=True)
"""x ≥ ``flat_from``: GELU′ is 1 to double-double."""
GRADIENT_UNDERFLOWED = KnownRegion("underflow", _flat_below, _minus_zero, 40, False, constant=True)
"""x ≤ −``flat_from``: |GELU′| is below 2^−1100, and RN_T is −0."""
GRADIENT_REGIONS = (GRADIENT_TINY, GRADIENT_SATURATED, GRADIENT_UNDERFLOWED)


def known_region(function: Function, fmt: FloatFormat, lowest: float, highest: float) -> KnownRegion | None:
    """The region holding every x in [lowest, highest], for a formula (forward) or its
    derivative (backward), in a format the fast tier decides in float64 (not fp64, which goes
    to mpmath); else None."""
    if fmt.precision >= 53:
        return None
    regions = FORWARD_REGIONS if isinstance(function, Formula) else GRADIENT_REGIONS
    region = next((r for r in regions if r.holds(function, fmt, lowest, highest)), None)
    if region is None or not fmt.emin + 2 <= region.prototype_binade <= fmt.emax:  # fp16: no prototype
        return None
    return region


def known_blocks(
    function: Function,
    fmt: FloatFormat,
    x: np.ndarray,
    index: np.ndarray,
    top: int,
    shared: bool,
    consecutive: bool = False,
) -> tuple[KnownChunk, TierCounts] | None:
    """:func:`known_blocks_of` inputs given as their values and indices."""
    return known_blocks_of(function, fmt, BlockInputs(fmt, x=x, index=index), top, shared, consecutive)


def known_blocks_of(
    function: Function,
    fmt: FloatFormat,
    inputs: BlockInputs,
    top: int,
    shared: bool,
    consecutive: bool = False,
) -> tuple[KnownChunk, TierCounts] | None:
    """A stream's chunk as known blocks, with the fast tier's region counts for it; None unless
    its inputs are consecutive bit patterns (its indices: their patterns; a prototype is found
    by the block's first pattern and length), all in one known region, each block in one
    binade. ``consecutive``: the caller made the inputs as a range of patterns, so neither
    that nor their extremes need a pass over the chunk (:func:`_range_extremes`), and inputs
    given by their patterns are decoded only where the blocks need them."""
    n = len(inputs)
    if not n:
        return None
    first_index, last_index = inputs.index_at(0), inputs.index_at(n - 1)
    consecutive = consecutive and last_index - first_index == n - 1  # a cheap guard
    ends = inputs.values_at([0, n - 1])
    extremes = (
        _range_extremes(fmt, float(ends[0]), float(ends[1]), first_index, last_index) if consecutive else None
    )
    lowest, highest = extremes or (float(inputs.x.min()), float(inputs.x.max()))
    region = known_region(function, fmt, lowest, highest)
    if region is None or int(values_to_patterns(fmt, ends[:1])[0]) != first_index:
        return None
    if not consecutive and not np.all(np.diff(inputs.index) == 1):
        return None
    blocks = []
    for part in block_slices(inputs.index) if not consecutive else consecutive_block_slices(first_index, n):
        binades = np.frexp(inputs.values_at([part.start, part.stop - 1]))[1] - 1
        if binades[0] != binades[1]:
            return None
        blocks.append(
            KnownBlock(fmt, function, inputs.cut(part), top, region, int(binades[0]), shared=shared)
        )
    one_binade = blocks[0].binade == blocks[-1].binade  # (a chunk of the stream always is)
    whole = _WholeChunk(fmt, function, inputs, top, region, blocks[0].binade, blocks, shared=shared)
    chunk = KnownChunk(blocks, whole if one_binade else None)
    counts = dict.fromkeys(REGIONS, 0)
    counts[region.name] = n
    return chunk, TierCounts(counts)


def _range_extremes(
    fmt: FloatFormat, first: float, last: float, first_index: int, last_index: int
) -> tuple[float, float] | None:
    """The least and greatest of inputs that are a range of patterns within one sign, from its
    two ends (their values and patterns): such inputs rise (or fall, below 0) with their
    patterns, and NaN patterns are the top of each sign's range, so an end that is not NaN has
    none beyond it. NaN at an end gives NaN, as ``min`` and ``max`` would (no region holds
    it); a range that crosses the sign bit gives None (the caller then takes ``min`` and
    ``max``)."""
    if (first_index ^ last_index) >> (fmt.width - 1):
        return None
    if math.isnan(first) or math.isnan(last):
        return math.nan, math.nan
    return min(first, last), max(first, last)


@dataclass
class _Prototype:
    """The statistics of RN_T(y) (or of a constant answer) on the inputs of a block or a
    chunk, moved to the region's prototype binade."""

    summary: ErrorAccumulator
    first_index: int
    sketch_bins: np.ndarray
    """The sketch bins it holds points in, and how many in each (the summary's own sketch is
    left empty: a thousand full ones would take 260 MiB a process)."""
    sketch_counts: np.ndarray


_EMPTY_SKETCH = np.zeros(SKETCH_BINS + 1, np.int64)
_EMPTY_SKETCH.setflags(write=False)
"""Every prototype's summary's sketch (its bins are kept apart, in :class:`_Prototype`)."""
_PROTOTYPES: dict[tuple[object, ...], _Prototype | None] = {}
"""Per worker process: each prototype, or None where one does not meet the premises."""


def _answer_bits(answer: float | None) -> int | None:
    """A constant answer as a key: its bits (−0 and +0 differ)."""
    return None if answer is None else int(np.float64(answer).view(np.int64))


@dataclass
class _KnownSpan(DeferredBlock):
    """Inputs in one binade of a known region, whose statistics for RN_T(y) (or a constant
    answer) are carried over from a prototype: a block, or a whole chunk of them."""

    region: KnownRegion
    binade: int
    """Of x (every input's)."""
    _summaries: dict[tuple[object, ...], ErrorAccumulator | None] = field(default_factory=dict, kw_only=True)

    def differs(self, got: np.ndarray) -> np.ndarray:
        return differing_mask(got, self.region.rounded(self.x))

    def _make_prototype(self, like: ErrorAccumulator, answer: float | None) -> _Prototype | None:
        raise NotImplementedError

    def _constant_answer(self, got: np.ndarray | AnswerBits) -> float | None:
        """``got``'s one value, where it is a constant over these inputs and RN_T(y) is a
        constant with no residual (the tails of :data:`UNDERFLOWED` and the gradient's flat
        tails: there a constant answer's statistics carry over too); else None."""
        if self.region.scales or not self.region.constant or not len(got):
            return None
        if isinstance(got, AnswerBits):  # one pattern throughout (then one float64 value)
            same = bool((got.bits == got.bits[0]).all())
            return float(patterns_to_values(got.fmt, got.bits[:1])[0]) if same else None
        bits = got.view(np.int64)
        return float(got[0]) if (bits == bits[0]).all() else None

    def _carried_once(self, like: ErrorAccumulator, answer: float | None) -> ErrorAccumulator | None:
        """:meth:`_carried`, kept per settings and answer (several kernels share the span)."""
        key = (like.settings, _answer_bits(answer))
        if key not in self._summaries:
            self._summaries[key] = self._carried(like, answer)
        return self._summaries[key]

    def _prototype(self, like: ErrorAccumulator, answer: float | None) -> _Prototype | None:
        offset = self.inputs.index_at(0) & ((1 << self.fmt.mantissa_bits) - 1)  # index: the patterns
        negative = bool(self.inputs.values_at([0])[0] < 0)
        where = (
            type(self).__name__,
            self.region.name,
            negative,
            offset,
            len(self.inputs),
            _answer_bits(answer),
        )
        key = (self.function.name, self.fmt.name, like.settings, self.top, *where)
        if key not in _PROTOTYPES:
            _PROTOTYPES[key] = self._make_prototype(like, answer)
        return _PROTOTYPES[key]

    def _carried(self, like: ErrorAccumulator, answer: float | None = None) -> ErrorAccumulator | None:
        """The prototype's summary for RN_T(y) (``answer`` None) or for the constant ``answer``,
        carried to these inputs; None where a premise fails here."""
        prototype = self._prototype(like, answer)
        if prototype is None:
            return None
        source = prototype.summary
        k = self.binade - self.region.prototype_binade if self.region.scales else 0
        max_ulp = math.ldexp(source.max_ulp, k)
        if max_ulp > like.tolerance or max_ulp > HISTOGRAM_EDGES[0]:
            return None
        exponents = (prototype.sketch_bins >> _EXPONENT) + k
        if k and (exponents.min() < 1 or exponents.max() > 254):  # float32 normal here as there
            return None
        n = len(self.inputs)
        first, last = segment_keys(
            self.fmt, self.inputs.values_at([0, n - 1])
        )  # |x| rises or falls through it
        if first != last:
            return None
        summary = like.empty_like()
        summary.merge(source)  # the sketch stays empty: source's is _EMPTY_SKETCH
        if k:  # (unscaled, the merged sum is the prototype's)
            total = source.total.times_power_of_two(k)
            if total is None:
                return None
            summary.total = total
        summary.sketch[prototype.sketch_bins + (k << _EXPONENT)] = prototype.sketch_counts
        summary.max_ulp = max_ulp
        # the same positions as the prototype's, with this block's points
        held = [*source.worst, *source.worst_outside_flush, *source.wrong_zeros]  # (no non-finite: a premise)
        held += [tally.worst for tally in source.tallies.values() if tally.worst is not None]
        positions = np.array(sorted({c.index - prototype.first_index for c in held}), np.int64)
        float64_errors = self.region.scales and self.binade > FLOAT64_EXACT_TOP_BINADE
        values = self.inputs.values_at(positions)
        ref, _ = fast_references_of(self.function, self.fmt, values)  # their references alone
        at = {int(p): i for i, p in enumerate(positions)}

        def here(c: Candidate) -> Candidate:
            """``c`` at this block's point: its error scaled, the answer RN_T(y) here (or the
            constant), the ordinal distance the same."""
            position = c.index - prototype.first_index
            i = at[position]
            return Candidate(
                None if c.error is None else math.ldexp(c.error, k),
                self.inputs.index_at(position),
                float(values[i]),
                float(ref.rounded[i]) if answer is None else c.got,
                int(ref.binade[i]),
                float(ref.mant_hi[i]),
                float(ref.mant_lo[i]),
                float(ref.rounded[i]),
                c.distance,
            )

        summary.worst = [here(c) for c in source.worst]
        summary.worst_outside_flush = [here(c) for c in source.worst_outside_flush]
        summary.wrong_zeros = [here(c) for c in source.wrong_zeros]
        for name, tally in summary.tallies.items():
            theirs = source.tallies[name].worst
            tally.worst = None if theirs is None else here(theirs)
        summary.profile = ProfileAccumulator()
        summary.profile.add_segment(self.fmt, int(first), n, max_ulp, 0)
        if float64_errors and not self._float64_errors(summary):
            return None
        return summary

    def _float64_errors(self, summary: ErrorAccumulator) -> bool:
        """Into a tiny block's carried summary, the statistics against y as float64, computed:
        above :data:`FLOAT64_EXACT_TOP_BINADE` y as float64 is no longer RN_T(y), and its
        rounding does not scale with the binade. These are the largest absolute and relative
        errors and each policy's ratios, as :meth:`ReferenceBlock.build` and
        :meth:`ErrorAccumulator.fold_block` compute them for RN_T(y). The ULP statistics stay
        the prototype's. False (compute the block) unless RN_T(y) is the region's here too and
        every y finite and normal, as those statistics assume.

        The compiled library computes them in one pass over x, which makes the region's
        references as it goes (``fused.tiny_float64_errors``): 60 ms a 2^20 chunk in NumPy's
        passes, for each of fp32's 432 such chunks, came to a fifth of an exhaustive audit's
        time (2026-11-30). Without it, :meth:`_float64_errors_in_numpy`."""
        rules = [(policy, rule) for policy, rule in summary.rules(self.fmt) if not rule.rounded_reference]
        computed = None
        tolerances = [rule for _, rule in rules]
        if fused.follows(tolerances):
            computed = fused.tiny_float64_errors(self.fmt, self.function, self.x, tolerances)
        if computed is None:
            computed = self._float64_errors_in_numpy(tolerances)
        if computed is None:
            return False
        summary.max_abs, summary.max_rel = computed.max_abs, computed.max_rel
        for (policy, _), count, ratio, at in zip(
            rules, computed.rule_breaks, computed.rule_ratios, computed.rule_first_max, strict=True
        ):
            worst = self.sub_block(np.array([at])).rounded_candidates(np.zeros(1, np.int64))[0]
            tally = summary.tallies[policy.name] = PolicyTally()
            tally.add(count, 0, ratio, worst)
        return True

    def _float64_errors_in_numpy(self, rules: list[Tolerance]) -> fused.Float64Errors | None:
        """:meth:`_float64_errors`' statistics in NumPy passes, BLOCK inputs at a time, each
        slice's references (the fast tier's, which decides point by point) and arrays staying
        in the core's cache (over a whole chunk at once they take twice as long), merged:
        maxima, counts, and each policy's largest ratio at its first position (a later slice
        replaces it only with a larger one, as ``np.argmax`` over the whole would choose).
        None where RN_T(y) is not the region's or a y is not finite and normal."""
        max_abs = max_rel = 0.0  # (rules against RN_T(y) itself: every ratio 0, as carried)
        breaks, largest, first_at = [0] * len(rules), [-math.inf] * len(rules), [0] * len(rules)
        for start in range(0, len(self.x), BLOCK):
            x = self.x[start : start + BLOCK]
            ref, _ = fast_references_of(self.function, self.fmt, x)  # the slice's, in cache
            if not np.array_equal(ref.rounded.view(np.int64), self.region.rounded(x).view(np.int64)):
                return None
            approx = ref.approximate()
            magnitude = np.abs(approx)
            if not (np.isfinite(approx).all() and magnitude.min() >= self.fmt.smallest_normal):
                return None
            abs_residual = np.abs(ref.rounded - approx)
            max_abs = max(max_abs, float(abs_residual.max()))
            max_rel = max(max_rel, float((abs_residual / magnitude).max()))
            for i, rule in enumerate(rules):
                ratios = violation_ratios(rule, abs_residual, magnitude, x)
                at = int(np.argmax(ratios))
                breaks[i] += int(np.count_nonzero(ratios > 1))
                if float(ratios[at]) > largest[i]:
                    largest[i], first_at[i] = float(ratios[at]), start + at
        return fused.Float64Errors(max_abs, max_rel, largest, breaks, first_at)


@dataclass
class KnownBlock(_KnownSpan):
    """A block of inputs in a known region: RN_T(y) from the region, and that answer's summary
    carried over from a prototype; the references computed only when an answer differs
    (:class:`~gelu_audit.audits.deferred_blocks.DeferredBlock`) or to compute the float64
    errors in the tiny region's upper binades."""

    def summary(self, like: ErrorAccumulator) -> ErrorAccumulator:
        """The prototype's summary carried to this block; the computed one where the premises
        fail (a prototype that does not meet them, a tolerance below the residuals)."""
        carried = self._carried_once(like, None)
        return carried if carried is not None else self.full().summary(like)

    def answer_summary(self, like: ErrorAccumulator, got: np.ndarray) -> ErrorAccumulator | None:
        """The statistics of an answer other than RN_T(y) that is one constant over the whole
        block, where RN_T(y) is a constant too and every residual is 0 (the tails of
        :data:`UNDERFLOWED` and the gradient's flat tails): there they do not depend on the
        binade either, and a prototype answered with the same constant serves. The case it is
        for: backward kernels return +0 where GELU′ underflows to −0. None otherwise."""
        answer = self._constant_answer(got)
        return None if answer is None else self._carried_once(like, answer)

    def _make_prototype(self, like: ErrorAccumulator, answer: float | None) -> _Prototype | None:
        return _compute_prototype(self, like, answer)


class KnownChunk(list[KnownBlock]):
    """A stream's chunk in one binade of a known region, as the list of its known blocks.

    Where a kernel answers the whole chunk with RN_T(y) (or, where that is one constant, with
    another constant whose errors are all 0), the chunk's statistics are carried over at once
    (:meth:`whole_summary`): a prototype chunk's, which is its blocks' prototypes merged, then
    scaled and re-pointed as a block's is. Every statistic merges exactly (sums, counts, maxima
    and selections by value then index; the profile's segment sums), and the scaling by 2^k
    commutes with merging, so that is what folding in each block gives, for a fraction of the
    cost: one carry instead of 32. Anywhere else each block is asked, as before."""

    def __init__(self, blocks: list[KnownBlock], whole: _WholeChunk | None) -> None:
        """``whole``: the chunk's inputs as one span, where they lie in one binade (one scaling
        carries them all); None otherwise, and then each block is asked."""
        super().__init__(blocks)
        self.whole = whole

    def whole_summary(self, like: ErrorAccumulator, got: np.ndarray | AnswerBits) -> ErrorAccumulator | None:
        """The statistics of ``got`` over the chunk, where its prototype knows them
        (:class:`~gelu_audit.audits.stats.KnownAnswers`); None otherwise."""
        if self.whole is None:
            return None
        if not isinstance(got, AnswerBits):
            got = np.asarray(got, dtype=np.float64)
        return self.whole.whole_summary(like, got)


@dataclass
class _WholeChunk(_KnownSpan):
    """The inputs of a :class:`KnownChunk`, all at once."""

    blocks: list[KnownBlock]

    def whole_summary(self, like: ErrorAccumulator, got: np.ndarray | AnswerBits) -> ErrorAccumulator | None:
        if len(got) != len(self.inputs) or not len(got):
            return None
        if isinstance(got, AnswerBits) and got.fmt is self.fmt and self._rounded_patterns is not None:
            rounded = bool((got.bits == self._rounded_patterns).all())  # (one pattern broadcasts)
        else:
            rounded = np.array_equal(
                answer_values(got).view(np.int64), self.region.rounded(self.x).view(np.int64)
            )
        if rounded:
            return self._carried_once(like, None)
        answer = self._constant_answer(got)
        return None if answer is None else self._carried_once(like, answer)

    @cached_property
    def _rounded_patterns(self) -> np.ndarray | None:
        """RN_T(y) over the chunk as the format's bit patterns, once for all the kernels compared
        with it (a constant region's as a single pattern, which broadcasts); None where a
        value is not one of the format's (the float64 comparison then decides)."""
        given = self.inputs.patterns
        if not self.region.constant and self.region.rounded_patterns is not None and given is not None:
            return self.region.rounded_patterns(self.fmt, given)
        x = self.inputs.values_at([0]) if self.region.constant else self.x
        rounded = self.region.rounded(x)
        patterns = values_to_patterns(self.fmt, rounded)
        if not np.array_equal(patterns_to_values(self.fmt, patterns).view(np.int64), rounded.view(np.int64)):
            return None
        return patterns

    def _make_prototype(self, like: ErrorAccumulator, answer: float | None) -> _Prototype | None:
        """The blocks' prototypes, merged (each is computed once per worker and shared)."""
        parts = [block._prototype(like, answer) for block in self.blocks]
        known = [part for part in parts if part is not None]
        if len(known) < len(parts):
            return None
        summary = like.empty_like()
        for part in known:
            summary.merge(part.summary)  # the sketch stays empty: each part's is _EMPTY_SKETCH
        summary.sketch = _EMPTY_SKETCH
        held, where = np.unique(np.concatenate([part.sketch_bins for part in known]), return_inverse=True)
        counts = np.zeros(len(held), np.int64)
        np.add.at(counts, where, np.concatenate([part.sketch_counts for part in known]))
        return _Prototype(summary, known[0].first_index, held, counts)


def _compute_prototype(block: KnownBlock, like: ErrorAccumulator, answer: float | None) -> _Prototype | None:
    """The block at ``block``'s positions in the region's prototype binade, answered with
    RN_T(y) (``answer`` None) or the constant ``answer``, with the ordinary arithmetic; None
    unless its statistics show every premise of carrying them over."""
    fmt, n, region = block.fmt, len(block.x), block.region
    x = np.ldexp(block.x, region.prototype_binade - block.binade)  # exact: normal at both ends
    index = values_to_patterns(fmt, x).astype(np.int64)
    ref, _ = fast_references_of(block.function, fmt, x)
    prototype = ReferenceBlock.build(fmt, x, index, ref, block.top)
    summary = like.empty_like()
    got = prototype.ref.rounded if answer is None else np.full(n, answer)
    summary.fold_block(prototype, got)
    rounded = answer is None  # RN_T(y): correct everywhere, no wrong zero
    premises = (
        region.holds(block.function, fmt, float(x.min()), float(x.max())),
        np.array_equal(prototype.ref.rounded.view(np.int64), region.rounded(x).view(np.int64)),
        summary.points == summary.finite == n and (summary.correct == n or not rounded),
        summary.histogram[0] == n if not region.scales else summary.histogram[1] == n,
        summary.max_abs == 0.0
        and summary.max_rel in (None, 0.0)
        and (summary.max_ordinal == 0 or not rounded),
        summary.failures.to_state() == summary.normal_failures.to_state() == [None, None, False],
        not summary.subnormal_counts.any(),
        summary.nonfinite_count == summary.flush_count == 0
        and (summary.wrong_zero_count == 0 or not rounded),
        all(t.finite_breaks == t.nonfinite == 0 and t.max_ratio == 0.0 for t in summary.tallies.values()),
        summary.sketch[SKETCH_BINS] == 0,
        np.all(np.diff(index) == 1),
    )
    bins = np.flatnonzero(summary.sketch)
    if not all(premises) or (region.scales and (bins >> _EXPONENT).min() < 1):  # float32 normal residuals
        return None
    counts = summary.sketch[bins]
    summary.sketch = _EMPTY_SKETCH
    return _Prototype(summary, int(index[0]), bins, counts)
