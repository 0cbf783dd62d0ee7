"""Tiny blocks: where |x| is tiny, the correctly rounded answer's statistics are a prototype
block's, scaled by a power of two, instead of being computed point by point.

For 2^(emin+2) ≤ |x| < 2^−55 (fp32: 69 binades of each sign, 27% of its inputs), f(x) is
x/2 + c·x² + O(x⁴) with 0 < c < 1/2 for every formula. RN_T(y) is x/2, and the fast tier's
reference is the double-double (hi, lo) = (x/2 / 2^b, c·x·2hi), with b the binade of x/2. Take
the blocks at the same positions of two binades: their inputs are x and 2^k·x. Every float64
operation behind their statistics is exact under a power-of-two scaling as long as no value
leaves the normal range: c·x, the residual |lo|·2^(p−1), the pairwise sum of the residuals, and
their float32 sketch bins. So:

- the residuals, their sum and their maximum are 2^k times the other block's;
- the sketch bins move up by k·2^7 (the float32 exponent field, shifted by ``SKETCH_SHIFT``);
- the residuals keep their order, so the worst inputs are at the same positions.

Everything else is the same in both blocks:

- every point is finite, correctly rounded, normal (x/2 ≥ 2^(emin+1)) and in the histogram's
  bin ≤0.5;
- y as float64 is x/2 itself, because c·x² is below half a float64 ulp of x/2 for |x| < 2^−55.
  So the absolute and relative residuals and every tolerance policy's ratio are 0;
- there is no failure, flush, non-finite answer or wrong zero.

Each worker therefore computes, per block position in a binade, sign and settings, one
prototype block in binade :data:`PROTOTYPE_BINADE`, with the ordinary arithmetic. A block
anywhere in the range then gets that summary scaled, with its own worst inputs (their
references come from the fast tier, for those few points alone). The prototype's own
statistics are checked against every premise above before it serves. An answer that differs
from x/2 gets the ordinary path (``sub_block``, ``full``), as a stored block does. Tested
against the arithmetic block by block (tests/audits/test_tiny_blocks.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gelu_audit.audits.profile import ProfileAccumulator, segment_keys
from gelu_audit.audits.stats import (
    SKETCH_BINS,
    SKETCH_SHIFT,
    Candidate,
    ErrorAccumulator,
    ExactSum,
    ReferenceBlock,
    block_slices,
    differing_positions,
)
from gelu_audit.numerics.formats import FloatFormat, values_to_patterns
from gelu_audit.numerics.formulas import Formula, Function
from gelu_audit.numerics.ulp import HISTOGRAM_EDGES
from gelu_audit.references.fast_tier import REGIONS, TierCounts, fast_references

TOP_BINADE = -56
"""The largest binade of x served: below 2^−55, c·x² < 2^−54·|x/2| for c < 1/2, so y as float64
(x/2 + c·x², rounded) is x/2."""
PROTOTYPE_BINADE = -90
"""The binade of x whose blocks are computed and scaled to the others."""
_EXPONENT = 23 - SKETCH_SHIFT
"""A sketch bin shifted right by this is its float32 exponent field (1 … 254: normal)."""


def _lowest_binade(fmt: FloatFormat) -> int:
    """The smallest binade of x served: x/2 is a normal number of T, and so is RN_T(y)."""
    return fmt.emin + 2


def tiny_range(function: Function, fmt: FloatFormat) -> tuple[float, float] | None:
    """[lowest, highest) of |x| whose blocks are served for ``function``, or None: a formula's
    forward pass (c below 1/2) in a format whose fast tier decides this range as ``tiny``."""
    if not isinstance(function, Formula) or not 0 < function.series_coefficient < 0.5:
        return None
    if fmt.precision + 4 > -(TOP_BINADE + 1):  # the fast tier's tiny region is |x| < 2^(−p−4)
        return None
    return math.ldexp(1.0, _lowest_binade(fmt)), math.ldexp(1.0, TOP_BINADE + 1)


def tiny_blocks(
    function: Function, fmt: FloatFormat, x: np.ndarray, index: np.ndarray, top: int, shared: bool
) -> tuple[list[TinyBlock], TierCounts] | None:
    """A stream's chunk as tiny blocks, with the fast tier's region counts for it; None unless
    every input lies in :func:`tiny_range`, on one side of 0, each block in one binade."""
    bounds = tiny_range(function, fmt)
    if bounds is None or not len(x):
        return None
    low, high = bounds
    lowest, highest = float(x.min()), float(x.max())
    if not (low <= lowest and highest < high) and not (-high < lowest and highest <= -low):
        return None  # (NaN fails both)
    assert isinstance(function, Formula)
    blocks = []
    for part in block_slices(index):
        binades = np.frexp(x[part][[0, -1]])[1] - 1
        if binades[0] != binades[1]:
            return None
        blocks.append(TinyBlock(fmt, function, x[part], index[part], top, int(binades[0]), shared))
    counts = dict.fromkeys(REGIONS, 0)
    counts["tiny"] = len(x)
    return blocks, TierCounts(counts)


@dataclass
class _Prototype:
    """The statistics of RN_T(y) on one block of binade PROTOTYPE_BINADE."""

    summary: ErrorAccumulator
    residual_sum: float
    first_index: int
    sketch_bins: np.ndarray
    """The sketch bins it holds points in, and how many in each (the summary's own sketch is
    left empty: 512 full ones would take 130 MiB a process)."""
    sketch_counts: np.ndarray


_EMPTY_SKETCH = np.zeros(SKETCH_BINS + 1, np.int64)
_EMPTY_SKETCH.setflags(write=False)
"""Every prototype's summary's sketch (its bins are kept apart, in :class:`_Prototype`)."""
_PROTOTYPES: dict[tuple[object, ...], _Prototype | None] = {}
"""Per worker process: each prototype, or None where one does not meet the premises."""


@dataclass
class TinyBlock:
    """A block of inputs in :func:`tiny_range`: RN_T(y) = x/2, and the summary of that answer
    scaled from a prototype. Speaks :class:`~gelu_audit.audits.stats.AuditBlock`."""

    fmt: FloatFormat
    formula: Formula
    x: np.ndarray
    index: np.ndarray
    top: int
    binade: int
    """Of x (every input's)."""
    shared: bool
    _summaries: dict[tuple[object, ...], ErrorAccumulator] = field(default_factory=dict)
    _full: ReferenceBlock | None = None

    def differing(self, got: np.ndarray) -> np.ndarray:
        return differing_positions(got, 0.5 * self.x)  # RN_T(y) = x/2, exactly

    def worth_replacing(self, like: ErrorAccumulator, differing: int) -> bool:
        """Up to half the block, as for a stored block: the full arithmetic would need the
        whole block's references first."""
        if self._full is not None:
            return self._full.worth_replacing(like, differing)
        return 2 * differing <= len(self.x)

    def sub_block(self, where: np.ndarray) -> ReferenceBlock:
        """The points at ``where`` with their references from the fast tier (for those points
        alone: it decides point by point, so they are the values the whole block gets)."""
        if self._full is not None:
            return self._full.sub_block(where)
        ref, _ = fast_references(self.formula, self.fmt, self.x[where])
        return ReferenceBlock.build(self.fmt, self.x[where], self.index[where], ref, self.top)

    def full(self) -> ReferenceBlock:
        """The block's references, from the fast tier (the same code as for any block)."""
        if self._full is None:
            ref, _ = fast_references(self.formula, self.fmt, self.x)
            self._full = ReferenceBlock.build(self.fmt, self.x, self.index, ref, self.top, self.shared)
        return self._full

    def summary(self, like: ErrorAccumulator) -> ErrorAccumulator:
        """The prototype's summary scaled to this block; the computed one where the premises
        fail (a prototype that does not meet them, a tolerance below the residuals)."""
        if like.settings not in self._summaries:
            scaled = self._scaled(like)
            self._summaries[like.settings] = scaled if scaled is not None else self.full().summary(like)
        return self._summaries[like.settings]

    def _prototype(self, like: ErrorAccumulator) -> _Prototype | None:
        pattern = int(values_to_patterns(self.fmt, self.x[:1])[0])
        offset = pattern & ((1 << self.fmt.mantissa_bits) - 1)
        negative = bool(self.x[0] < 0)
        key = (self.formula.name, self.fmt.name, like.settings, self.top, negative, offset, len(self.x))
        if key not in _PROTOTYPES:
            _PROTOTYPES[key] = _compute_prototype(self, like)
        return _PROTOTYPES[key]

    def _scaled(self, like: ErrorAccumulator) -> ErrorAccumulator | None:
        prototype = self._prototype(like)
        if prototype is None:
            return None
        source = prototype.summary
        k = self.binade - PROTOTYPE_BINADE
        max_ulp = math.ldexp(source.max_ulp, k)
        if max_ulp > like.tolerance or max_ulp > HISTOGRAM_EDGES[0]:
            return None
        exponents = (prototype.sketch_bins >> _EXPONENT) + k
        if exponents.min() < 1 or exponents.max() > 254:  # float32 normal here as in the prototype
            return None
        first, last = segment_keys(self.fmt, self.x[[0, -1]])  # |x| rises or falls through the block
        if first != last:
            return None
        summary = like.empty_like()
        summary.merge(source)  # the sketch stays empty: source's is _EMPTY_SKETCH
        summary.total = ExactSum()
        summary.total.add_float(math.ldexp(prototype.residual_sum, k))
        summary.sketch[prototype.sketch_bins + (k << _EXPONENT)] = prototype.sketch_counts
        summary.max_ulp = max_ulp
        # the same positions as the prototype's, with this block's points
        held = [*source.worst, *source.worst_outside_flush]
        held += [tally.worst for tally in source.tallies.values() if tally.worst is not None]
        positions = sorted({c.index - prototype.first_index for c in held})
        points = self.sub_block(np.array(positions, np.int64))
        mine = dict(zip(positions, points.rounded_candidates(np.arange(len(positions))), strict=True))

        def here(candidate: Candidate) -> Candidate:
            return mine[candidate.index - prototype.first_index]

        summary.worst = [here(c) for c in source.worst]
        summary.worst_outside_flush = [here(c) for c in source.worst_outside_flush]
        for name, tally in summary.tallies.items():
            theirs = source.tallies[name].worst
            tally.worst = None if theirs is None else here(theirs)
        summary.profile = ProfileAccumulator()
        summary.profile.add_segment(self.fmt, int(first), len(self.x), max_ulp, 0)
        return summary


def _compute_prototype(block: TinyBlock, like: ErrorAccumulator) -> _Prototype | None:
    """The block at ``block``'s positions in binade PROTOTYPE_BINADE, with the ordinary
    arithmetic; None unless its statistics show every premise of the scaling."""
    fmt, n = block.fmt, len(block.x)
    x = np.ldexp(block.x, PROTOTYPE_BINADE - block.binade)  # exact: normal at both ends
    index = values_to_patterns(fmt, x).astype(np.int64)
    ref, _ = fast_references(block.formula, fmt, x)
    prototype = ReferenceBlock.build(fmt, x, index, ref, block.top)
    summary = like.empty_like()
    summary.fold_block(prototype, prototype.ref.rounded)
    premises = (
        np.array_equal(prototype.ref.rounded, 0.5 * x),
        summary.points == summary.finite == summary.correct == n,
        summary.histogram[1] == n,
        summary.max_abs == 0.0 and summary.max_rel == 0.0 and summary.max_ordinal == 0,
        summary.failures.to_state() == summary.normal_failures.to_state() == [None, None, False],
        not summary.subnormal_counts.any(),
        summary.nonfinite_count == summary.wrong_zero_count == summary.flush_count == 0,
        all(t.finite_breaks == t.nonfinite == 0 and t.max_ratio == 0.0 for t in summary.tallies.values()),
        summary.sketch[SKETCH_BINS] == 0,
        np.all(np.diff(index) == 1),
    )
    bins = np.flatnonzero(summary.sketch)
    if not all(premises) or (bins >> _EXPONENT).min() < 1:  # float32 normal residuals
        return None
    counts = summary.sketch[bins]
    summary.sketch = _EMPTY_SKETCH
    return _Prototype(summary, prototype.residual_sum, int(index[0]), bins, counts)
