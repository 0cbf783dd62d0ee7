"""The built-in implementations: what people run, in PyTorch (eager) and NumPy.

May import: numerics, implementations.model, implementations.gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gelu_audit.implementations.gradient import autograd_backward
from gelu_audit.implementations.model import Implementation
from gelu_audit.numerics.formulas import (
    ERF,
    SIGMOID,
    SIGMOID_SLOPE_F64,
    SQRT_2_OVER_PI_F64,
    TANH,
    TANH_CUBIC_F64,
)


def _torch_gelu(x: Any) -> Any:
    import torch.nn.functional as F

    return F.gelu(x)


def _torch_gelu_aten(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    with torch.backends.mkldnn.flags(enabled=False):
        return F.gelu(x)


def _torch_gelu_aten_backward(approximate: str) -> Any:
    """The backward under the same flag as the forward: oneDNN is chosen when the backward
    runs, so a flag around the forward call alone would leave the gradient to oneDNN."""

    def backward(x: Any) -> Any:
        import torch
        import torch.nn.functional as F

        with torch.backends.mkldnn.flags(enabled=False):
            return autograd_backward(lambda v: F.gelu(v, approximate=approximate))(x)

    return backward


def _torch_gelu_tanh(x: Any) -> Any:
    import torch.nn.functional as F

    return F.gelu(x, approximate="tanh")


def _torch_gelu_tanh_aten(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    with torch.backends.mkldnn.flags(enabled=False):
        return F.gelu(x, approximate="tanh")


def _torch_quick_gelu(x: Any) -> Any:
    import torch

    return x * torch.sigmoid(SIGMOID_SLOPE_F64 * x)


def _torch_erf_composite(x: Any) -> Any:
    import torch

    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _torch_tanh_pow(x: Any) -> Any:
    import torch

    inner = SQRT_2_OVER_PI_F64 * (x + TANH_CUBIC_F64 * torch.pow(x, 3.0))
    return 0.5 * x * (1.0 + torch.tanh(inner))


FAST_TANH_CONSTANT = 0.7978845608
"""√(2/π) truncated to 10 decimals, as model code often writes it (√(2/π) = 0.79788456080286…)."""


def _torch_tanh_fast(x: Any) -> Any:
    import torch

    return 0.5 * x * (1.0 + torch.tanh(FAST_TANH_CONSTANT * x * (1.0 + TANH_CUBIC_F64 * x * x)))


def _torch_gelu_clip10(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    return torch.clamp(F.gelu(x), -10.0, 10.0)


def _numpy_erf(x: np.ndarray) -> np.ndarray:
    wide = x.astype(np.float64)
    erf = np.frompyfunc(math.erf, 1, 1)
    y = 0.5 * wide * (1.0 + np.asarray(erf(wide / math.sqrt(2.0)), dtype=np.float64))
    return y.astype(x.dtype)


def _constant(value: float, like: np.ndarray) -> np.ndarray:
    # A 0-d array of the input's dtype: Python scalars would promote bfloat16 to float32.
    return np.asarray(value, dtype=like.dtype)


def _numpy_tanh(x: np.ndarray) -> np.ndarray:
    c = lambda v: _constant(v, x)  # noqa: E731
    inner = c(SQRT_2_OVER_PI_F64) * (x + c(TANH_CUBIC_F64) * x * x * x)
    return c(0.5) * x * (c(1.0) + np.tanh(inner))


def _numpy_sigmoid(x: np.ndarray) -> np.ndarray:
    c = lambda v: _constant(v, x)  # noqa: E731
    with np.errstate(over="ignore"):
        return x * (c(1.0) / (c(1.0) + np.exp(-(c(SIGMOID_SLOPE_F64) * x))))


_ONEDNN_NOTE = (
    "CPU: oneDNN or ATen's kernel, chosen by dtype and instruction set (non-contiguous and fp64 "
    "tensors: ATen)"
)


def builtin_implementations() -> list[Implementation]:
    """The built-in implementations, in report order."""
    return [
        Implementation(
            "torch-gelu",
            "torch",
            ERF,
            _torch_gelu,
            "torch.nn.functional.gelu(x)",
            notes=(_ONEDNN_NOTE,),
            aten_twin="torch-gelu-aten",
            torch_gelu_approximate="none",
        ),
        Implementation(
            "torch-gelu-aten",
            "torch",
            ERF,
            _torch_gelu_aten,
            "F.gelu(x) with oneDNN off (torch.backends.mkldnn.flags): ATen's own CPU kernel",
            cpu_only=True,
            backward=_torch_gelu_aten_backward("none"),
        ),
        Implementation(
            "torch-gelu-tanh",
            "torch",
            TANH,
            _torch_gelu_tanh,
            'torch.nn.functional.gelu(x, approximate="tanh")',
            notes=(_ONEDNN_NOTE,),
            aten_twin="torch-gelu-tanh-aten",
            torch_gelu_approximate="tanh",
        ),
        Implementation(
            "torch-gelu-tanh-aten",
            "torch",
            TANH,
            _torch_gelu_tanh_aten,
            'F.gelu(x, approximate="tanh") with oneDNN disabled: ATen\'s own CPU kernel',
            cpu_only=True,
            backward=_torch_gelu_aten_backward("tanh"),
        ),
        Implementation(
            "torch-quick-gelu",
            "torch",
            SIGMOID,
            _torch_quick_gelu,
            "x * torch.sigmoid(1.702 * x), op by op in the dtype",
        ),
        Implementation(
            "torch-erf-composite",
            "torch",
            ERF,
            _torch_erf_composite,
            "0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))), op by op in the dtype",
        ),
        Implementation(
            "torch-tanh-pow",
            "torch",
            TANH,
            _torch_tanh_pow,
            "0.5*x*(1+torch.tanh(√(2/π)*(x+0.044715*torch.pow(x, 3.0)))), op by op in the dtype",
        ),
        Implementation(
            "torch-tanh-fast",
            "torch",
            TANH,
            _torch_tanh_fast,
            "0.5*x*(1+torch.tanh(0.7978845608*x*(1+0.044715*x*x))), op by op in the dtype "
            "(truncated √(2/π), factored cubic)",
        ),
        Implementation(
            "torch-gelu-clip10",
            "torch",
            ERF,
            _torch_gelu_clip10,
            "torch.clamp(F.gelu(x), -10, 10): GELU with its output clipped to [-10, 10]",
        ),
        Implementation(
            "numpy-erf",
            "numpy",
            ERF,
            _numpy_erf,
            "0.5*x*(1+math.erf(x/√2)) in float64, rounded once to the dtype",
        ),
        Implementation(
            "numpy-tanh",
            "numpy",
            TANH,
            _numpy_tanh,
            "0.5*x*(1+np.tanh(√(2/π)*(x+0.044715*x*x*x))), op by op in the dtype (bf16 through ml_dtypes)",
        ),
        Implementation(
            "numpy-sigmoid",
            "numpy",
            SIGMOID,
            _numpy_sigmoid,
            "x*(1/(1+np.exp(-(1.702*x)))), op by op in the dtype (bf16 through ml_dtypes)",
        ),
    ]
