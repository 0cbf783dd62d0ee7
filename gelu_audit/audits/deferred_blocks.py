"""Blocks whose correctly rounded answer's statistics are known before their references are:
a block of the reference store (:class:`~gelu_audit.audits.reference_store.StoredBlock`) and a
known block (:class:`~gelu_audit.audits.known_blocks.KnownBlock`, carried from a prototype).

Both speak :class:`~gelu_audit.audits.stats.AuditBlock`. What they share lives here: their
references come from the fast tier only when an answer differs from RN_T(y), then every
question goes to the computed :class:`~gelu_audit.audits.stats.ReferenceBlock`; and until
then an answer that differs at up to half the block gets the known summary with the differing
points' share replaced, since the full arithmetic would need the whole block's references
first. Each subclass says what it knows (``summary``, ``differs``, ``answer_summary``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gelu_audit.audits.stats import ErrorAccumulator, ReferenceBlock
from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import BlockInputs, FloatFormat
from gelu_audit.numerics.formulas import Function
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier


@dataclass
class DeferredBlock:
    """A block of inputs whose references are computed on demand, from the fast tier."""

    fmt: FloatFormat
    function: Function
    """A formula (the forward pass) or its derivative (backward)."""
    inputs: BlockInputs
    """Its inputs (a known block's made from their patterns only where it needs them)."""
    top: int
    shared: bool = field(default=False, kw_only=True)
    """Several answers will be compared with the computed block (``ReferenceBlock.shared``)."""
    tier: ReferenceTier = field(default=SCIPY_TIER, kw_only=True)
    """The fast tier's backend for the references computed on demand (the stream's)."""
    _references: ReferenceValues | None = field(default=None, kw_only=True, repr=False)
    _full: ReferenceBlock | None = field(default=None, kw_only=True, repr=False)

    @property
    def x(self) -> np.ndarray:
        """The inputs as float64 values."""
        return self.inputs.x

    @property
    def index(self) -> np.ndarray:
        """The inputs' global indices."""
        return self.inputs.index

    def knows(self, like: ErrorAccumulator) -> bool:
        """Whether the block's own summary serves ``like``'s settings (else it is computed)."""
        return True

    def worth_replacing(self, like: ErrorAccumulator, differing: int) -> bool:
        """Up to half the block while the summary is known without the references."""
        if self._full is not None:
            return self._full.worth_replacing(like, differing)
        return self.knows(like) and 2 * differing <= len(self.inputs)

    def references(self) -> ReferenceValues:
        """The block's references, from the fast tier (the same code as for any block)."""
        if self._references is None:
            self._references, _ = fast_references_of(self.function, self.fmt, self.x, tier=self.tier)
        return self._references

    def full(self) -> ReferenceBlock:
        """The block with every reference array, computed."""
        if self._full is None:
            self._full = ReferenceBlock.build(
                self.fmt, self.x, self.index, self.references(), self.top, self.shared
            )
        return self._full

    def sub_block(self, where: np.ndarray) -> ReferenceBlock:
        """The points at ``where`` as a block of their own. Their references are the whole
        block's where those are computed, else the fast tier's for those points alone: it
        decides point by point, so they are the values the whole block gets."""
        if self._full is not None:
            return self._full.sub_block(where)
        x = self.inputs.values_at(where)
        if self._references is not None:
            ref = self._references.take(where)
        else:
            ref, _ = fast_references_of(self.function, self.fmt, x, tier=self.tier)
        return ReferenceBlock.build(self.fmt, x, self.inputs.indices_at(where), ref, self.top)
