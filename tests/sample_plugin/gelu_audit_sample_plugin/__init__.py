"""Sample GELU kernels for gelu-audit's plugin tests: two good ones, and one of each way a
kernel can break (raise, wrong shape, wrong dtype, NaN output, never return), and kernels that
end their process (segfault, abort, exit, killed) or answer differently on each call. The ones
that end their process have no entry point: only ``--isolate`` audits survive them."""

from __future__ import annotations

import ctypes
import itertools
import math
import os
import signal
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


def segfaults(x):
    """Reads address 8: SIGSEGV, as a native kernel with a bad pointer would."""
    return ctypes.c_char.from_address(8).value


def aborts(x):
    os.abort()


def exits(x):
    os._exit(3)


def killed(x):
    """SIGKILL, what the kernel's out-of-memory killer sends."""
    os.kill(os.getpid(), signal.SIGKILL)


def segfaults_in_fp16(x):
    """Segfaults in fp16 only: the bf16 case after it must still run."""
    import torch

    if x.dtype == torch.float16:
        segfaults(x)
    return good_gelu(x)


_CALLS = itertools.count()


def nondeterministic(x):
    """Right, except one element (a different one on each call) off in its last bit, as a
    kernel that races on a shared buffer might be."""
    import torch

    y = good_gelu(x)
    bits = y.view(torch.int16 if y.element_size() == 2 else torch.int32).clone()
    bits[next(_CALLS) % bits.numel()] ^= 1
    return bits.view(y.dtype)


BROKEN = {"not": "a function"}
"""For the loading-error test: an attribute that cannot be a GELU."""


def float64_backward(grad_output, x):
    """grad_output·(Φ(x) + x·φ(x)) in float64, Φ from erfc (not 1 + erf, which cancels for
    x < −8: ATen's own float64 backward does), rounded once."""
    import torch

    wide = x.to(torch.float64)
    cdf = 0.5 * torch.special.erfc(-wide / math.sqrt(2.0))
    pdf = torch.exp(-0.5 * wide * wide) / math.sqrt(2.0 * math.pi)
    return (grad_output.to(torch.float64) * (cdf + wide * pdf)).to(x.dtype)


@gelu_kernel(backward=float64_backward, description="good_gelu, with a declared float64 backward")
def gelu_with_float64_backward(x):
    return good_gelu(x)


def backward_segfaults(grad_output, x):
    return segfaults(x)


@gelu_kernel(backward=backward_segfaults)
def gelu_whose_backward_segfaults(x):
    return good_gelu(x)


def backward_raises(grad_output, x):
    raise ValueError("this backward is broken on purpose")


@gelu_kernel(backward=backward_raises)
def gelu_whose_backward_raises(x):
    return good_gelu(x)


def backward_in_float64(grad_output, x):
    import torch

    return float64_backward(grad_output, x).to(torch.float64)


@gelu_kernel(backward=backward_in_float64)
def gelu_whose_backward_has_the_wrong_dtype(x):
    return good_gelu(x)


def detached_gelu(x):
    """Right values, but computed off the autograd graph: it has no gradient."""
    return good_gelu(x.detach())
