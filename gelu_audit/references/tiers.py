"""Where the fast reference tier's ``fast`` region runs: NumPy/SciPy in the audit's process (the
SciPy tier), or torch on a device (the torch tier).

Only the ``fast`` region moves: it holds most of the points an exhaustive fp32 run computes
(the core, |x| from about 2^−28 to 16) and the bulk of the tier's float64 arithmetic. The other
regions (NaN and infinities, tiny x, the saturated and underflowing tails) are decided by a few
comparisons and, in the tails, a few special-function calls, most blocks by a whole-block
shortcut, and stay in NumPy; mpmath decides what is
left either way. The region is written once (:mod:`~gelu_audit.numerics.array_ops`): on the CPU
both tiers give the same bits, and on a GPU the same roundings, with mantissas within the
tier's bound (the bound test runs per device).

The SciPy tier decides block by block, in cache; the torch tier takes every undecided point of
the array it is given at once (in the exhaustive stream, a whole chunk's passes that are not
known), so a GPU sees a few large transfers and launches instead of many small ones.

May import: numerics.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gelu_audit.numerics.array_ops import NUMPY_OPS, TORCH_OPS, ArrayOps


class TierBackend(enum.Enum):
    """The library that runs the ``fast`` region."""

    SCIPY = "scipy"
    TORCH = "torch"


FastRegion = Callable[[Any, ArrayOps], tuple]
"""The ``fast`` region of one function and format: given points (an array of the ops) and the
ops, returns (decided mask, binade, 2·mantissa, lo, RN_T) at every point given (each value an
array over them or one scalar for all), meaningful where decided."""


@dataclass(frozen=True)
class ReferenceTier:
    """The backend and device of the ``fast`` region (``--reference-tier``)."""

    backend: TierBackend = TierBackend.SCIPY
    device: str = "cpu"
    """torch's device name (``cpu``, ``cuda:0``); the SciPy tier runs in the process."""

    def __str__(self) -> str:
        return self.spec

    @property
    def spec(self) -> str:
        """As ``--reference-tier`` takes it and reports show it: ``scipy``, ``torch:cpu``,
        ``torch:cuda:0``."""
        if self.backend is TierBackend.SCIPY:
            return "scipy"
        return f"torch:{self.device}"

    @property
    def decides_by_block(self) -> bool:
        """Whether the region runs block by block (NumPy, in cache), else once per array."""
        return self.backend is TierBackend.SCIPY

    def run(self, function: Callable[..., Any], *arrays: np.ndarray) -> Any:
        """``function(*arrays, ops)`` with this tier: the float64 ``arrays`` moved to its device,
        the answer (an array or a tuple of them and scalars) brought back as NumPy. The region
        ``fast`` runs so; so do the bound tests, on the device they vouch for."""
        if self.backend is TierBackend.SCIPY:
            return function(*arrays, NUMPY_OPS)
        import torch

        moved = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(self.device) for a in arrays]
        answer = function(*moved, TORCH_OPS)
        if isinstance(answer, tuple):
            return tuple(_to_numpy(value) for value in answer)
        return _to_numpy(answer)


def _to_numpy(value: Any) -> Any:
    """A tensor as a NumPy array in this process (a scalar stays one)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.cpu().numpy()
    return value


SCIPY_TIER = ReferenceTier()
"""The default: NumPy and SciPy, block by block, in this process."""


def parse_tier(text: str) -> ReferenceTier:
    """``scipy``, ``torch`` (on the CPU), ``torch:cpu``, ``torch:cuda`` (= ``torch:cuda:0``) or
    ``torch:cuda:N``; a ValueError that names the accepted forms otherwise."""
    name, _, device = text.strip().lower().partition(":")
    if name == "scipy" and not device:
        return SCIPY_TIER
    if name == "torch":
        device = {"": "cpu", "cuda": "cuda:0"}.get(device, device)
        if device == "cpu" or (device.startswith("cuda:") and device[5:].isdigit()):
            return ReferenceTier(TierBackend.TORCH, device)
    raise ValueError(
        f"unknown reference tier {text!r}: use scipy, torch, torch:cpu, torch:cuda or torch:cuda:N"
    )
