"""Sample GELU kernels for gelu-audit's plugin tests: two good ones, and one of each way a
kernel can break (raise, wrong shape, wrong dtype, NaN output, never return)."""

from __future__ import annotations

import math
import time

import numpy as np

from gelu_audit import gelu_kernel


def good_gelu(x):
    """(x/2)·erfc(−x/√2) in float32 (float64 for fp64), rounded once to the dtype."""
    import torch

    wide = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    return (0.5 * wide * torch.special.erfc(-wide / math.sqrt(2.0))).to(x.dtype)


@gelu_kernel(formula="tanh", backend="numpy", dtypes=("fp16", "fp32"), devices=("cpu",))
def numpy_tanh_gelu(x):
    """The tanh form in float64, rounded once."""
    wide = x.astype(np.float64)
    return (0.5 * wide * (1 + np.tanh(math.sqrt(2 / math.pi) * (wide + 0.044715 * wide**3)))).astype(x.dtype)


def raises(x):
    raise ValueError("this kernel is broken on purpose")


def wrong_shape(x):
    return x[:-1]


def wrong_dtype(x):
    import torch

    return x.to(torch.float64) if x.dtype != torch.float64 else x.to(torch.float32)


def nan_output(x):
    import torch

    return torch.full_like(x, float("nan"))


def never_returns(x):
    while True:
        time.sleep(0.05)


BROKEN = {"not": "a function"}
"""For the loading-error test: an attribute that cannot be a GELU."""
