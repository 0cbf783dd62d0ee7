"""The float64 primitives the fast reference tier's ``fast`` region is written in, for NumPy and
for torch.

The region (each formula's float64 value and error bound, each derivative's two terms, Ziv's
one-rounding test) is written once, against :class:`ArrayOps`, and run either by NumPy/SciPy in
the audit's process (the SciPy tier) or by torch on a device (the torch tier,
:mod:`gelu_audit.references.tiers`). Only primitives that give the same bits in both libraries
on the CPU are offered: ``benchmarks/torch_primitives.py`` compares them at 2^20 inputs, and
erfcx, exp, log2, arithmetic, frexp and rint agree at every one, where erf, erfc, log_ndtr,
exp2, tanh, log1p and ``x**3`` do not; torch's ``ldexp`` and powers of two are built here from
exact powers of two (:meth:`TorchOps.pow2`). So on the CPU both tiers compute the same values
bit for bit, which ``tests/references/test_tiers.py`` checks wherever the suite runs (a CPU or
a build whose exp or erfcx differ would fail it). On a GPU, torch's erfcx, exp and log2 are
the device's own, and only the tier's bound test against mpmath on that device vouches for
them (docs/methodology.md).

Arrays are NumPy arrays or torch tensors according to the instance; both libraries' operators
(``+``, ``*``, ``<``, ``&``) serve for the rest.

numpy, scipy and torch are imported when first used. May import: nothing of gelu_audit.
"""

from __future__ import annotations

from typing import Any

Array = Any
"""A NumPy array or a torch tensor, as the :class:`ArrayOps` instance works on."""


class ArrayOps:
    """The primitives, by NumPy and SciPy (this class) or by torch (:class:`TorchOps`)."""

    def float64(self, x: Array) -> Array:
        """``x`` as this library's float64 array (a tier's points arrive as such already)."""
        import numpy as np

        return np.asarray(x, dtype=np.float64)

    def erfcx(self, x: Array) -> Array:
        from scipy import special

        return special.erfcx(x)

    def exp(self, x: Array) -> Array:
        import numpy as np

        return np.exp(x)

    def log2(self, x: Array) -> Array:
        import numpy as np

        return np.log2(x)

    def abs(self, x: Array) -> Array:
        import numpy as np

        return np.abs(x)

    def where(self, condition: Array, a: Array | float, b: Array | float) -> Array:
        import numpy as np

        return np.where(condition, a, b)

    def frexp(self, x: Array) -> tuple[Array, Array]:
        """(m, e) with x = m·2^e, 0.5 ≤ |m| < 1 (0, ±inf and NaN: e = 0), e as int32."""
        import numpy as np

        return np.frexp(x)

    def ldexp(self, x: Array, e: Array) -> Array:
        """x·2^e with one rounding (exact unless the result leaves float64's normal range)."""
        import numpy as np

        return np.ldexp(x, e)

    def pow2(self, e: Array) -> Array:
        """2^e as float64, for integer arrays e within float64's range."""
        import numpy as np

        return np.ldexp(1.0, e)

    def rint(self, x: Array) -> Array:
        """To the nearest integer, ties to even."""
        import numpy as np

        return np.rint(x)

    def ceil(self, x: Array) -> Array:
        import numpy as np

        return np.ceil(x)

    def copysign(self, magnitude: Array, sign: Array) -> Array:
        import numpy as np

        return np.copysign(magnitude, sign)

    def at_least(self, a: Array, lowest: int | float) -> Array:
        """max(a, lowest), element by element."""
        import numpy as np

        return np.maximum(a, lowest)

    def isfinite(self, x: Array) -> Array:
        import numpy as np

        return np.isfinite(x)

    def to_int64(self, x: Array) -> Array:
        import numpy as np

        return np.asarray(x).astype(np.int64)

    def to_int32(self, x: Array) -> Array:
        import numpy as np

        return np.asarray(x).astype(np.int32)

    def errstate(self) -> Any:
        """A context that silences floating-point warnings (NumPy's; torch has none)."""
        import numpy as np

        return np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore")


NUMPY_OPS = ArrayOps()
"""NumPy and SciPy in this process: the SciPy tier, and the default everywhere."""


class TorchOps(ArrayOps):
    """The same primitives as torch operations on float64 tensors (any device)."""

    def float64(self, x: Array) -> Array:
        return x  # ReferenceTier.run sends float64 tensors

    def erfcx(self, x: Array) -> Array:
        import torch

        return torch.special.erfcx(x)

    def exp(self, x: Array) -> Array:
        import torch

        return torch.exp(x)

    def log2(self, x: Array) -> Array:
        import torch

        return torch.log2(x)

    def abs(self, x: Array) -> Array:
        import torch

        return torch.abs(x)

    def where(self, condition: Array, a: Array | float, b: Array | float) -> Array:
        import torch

        return torch.where(condition, a, b)

    def frexp(self, x: Array) -> tuple[Array, Array]:
        import torch

        return torch.frexp(x)

    def ldexp(self, x: Array, e: Array) -> Array:
        """x·2^e as one product with an exact power of two (torch's own ldexp multiplies by
        pow(2, e), which a GPU's pow need not compute exactly): NumPy's ldexp wherever 2^e is
        a float64 number, −1074 ≤ e ≤ 1023. The tier scales by T's spacings and their inverses,
        within ±1000."""
        return x * self.pow2(e)

    def pow2(self, e: Array) -> Array:
        """2^e as the product of two normal powers of two built from their bits: exact, or
        rounded once (to 0 or ∞) outside float64's range, for −2044 ≤ e ≤ 2046. A float64
        subnormal y makes Ziv's test ask for 2^e below 2^−1022 (2^−1050 in fp16); the tier's
        tests hold it to NumPy's over [−1100, 1029]."""
        import torch

        e = e.to(torch.int64)
        half = e >> 1  # both halves normal exponents, [−1022, 1023], for e in [−2044, 2046]

        def power(k: Array) -> Array:
            return ((k + 1023) << 52).view(torch.float64)

        return power(half) * power(e - half)

    def rint(self, x: Array) -> Array:
        import torch

        return torch.round(x)  # ties to even, as rint

    def ceil(self, x: Array) -> Array:
        import torch

        return torch.ceil(x)

    def copysign(self, magnitude: Array, sign: Array) -> Array:
        import torch

        return torch.copysign(magnitude, sign)

    def at_least(self, a: Array, lowest: int | float) -> Array:
        import torch

        return torch.clamp(a, min=lowest)

    def isfinite(self, x: Array) -> Array:
        import torch

        return torch.isfinite(x)

    def to_int64(self, x: Array) -> Array:
        import torch

        return x.to(torch.int64)

    def to_int32(self, x: Array) -> Array:
        import torch

        return x.to(torch.int32)

    def errstate(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


TORCH_OPS = TorchOps()
