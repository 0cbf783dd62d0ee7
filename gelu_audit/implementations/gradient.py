"""The backward pass: an implementation's gradient kernel, audited like its forward one.

With grad_output = 1 the backward of GELU returns GELU′(x) rounded to the dtype, so a gradient
kernel is audited exactly like a forward one: the same exact bit patterns in, its answers
against the correctly rounded derivative (:class:`~gelu_audit.numerics.formulas.Derivative`).
:func:`backward_implementation` makes that kernel an :class:`Implementation` of its own, with the
derivative as its formula; everything downstream (runner, statistics, reports) is unchanged.

Where the gradient comes from, in order:

* ``Implementation.backward``, when it declares one (the oneDNN-disabled rows, which must run
  their backward under the same flag; JAX's ``jax.grad``; a plugin's own backward kernel);
* torch autograd, for every other torch implementation: what training runs (F.gelu's
  ``gelu_backward``, the composites' chain of op backwards, AOTAutograd's generated backward
  for torch.compile);
* nothing for the rest (NumPy, ONNX Runtime): they are skipped, as not differentiable.

May import: numerics, implementations.model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gelu_audit.implementations.model import Implementation
from gelu_audit.numerics.formulas import Formula

NOT_DIFFERENTIABLE = "has no backward here (not a torch implementation, and it declares none)"


def autograd_backward(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """x ↦ ∂function(x)/∂x through torch autograd, with grad_output = 1 (ones of x's dtype)."""

    def backward(x: Any) -> Any:
        import torch

        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)  # shares x's storage: x itself stays unchanged
            y = function(leaf)
            (grad,) = torch.autograd.grad(y, leaf, torch.ones_like(y))
        return grad

    return backward


def backward_function(impl: Implementation) -> Callable[[Any], Any] | None:
    """The gradient kernel of ``impl`` (x ↦ GELU′(x) with grad_output = 1), or None."""
    if impl.backward is not None:
        return impl.backward
    if impl.backend == "torch":
        return autograd_backward(impl.function)
    return None


def backward_implementation(impl: Implementation) -> Implementation | None:
    """``impl``'s backward pass as an implementation of the derivative, or None when it has
    none. The name stays: the pass is part of each case's identity instead."""
    if not isinstance(impl.formula, Formula):
        return impl  # already a backward implementation
    function = backward_function(impl)
    if function is None:
        return None
    isolation = impl.isolation.for_backward() if impl.isolation is not None else None
    return replace(
        impl,
        function=function,
        formula=impl.formula.derivative,
        description=f"backward of {impl.description}, grad_output = 1",
        backward=None,
        isolation=isolation,
        torch_gelu_approximate=None,
        speed_call=None,  # the forward's: it would time (and check) the wrong function
    )
