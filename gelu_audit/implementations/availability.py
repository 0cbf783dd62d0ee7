"""Whether an implementation can run on a device in a dtype here, and if not, why.

A reason is data: a :class:`SkipKind` that code branches on, and a message for people. The
message is free to change; the kind is the contract.
May import: numerics, errors, implementations.model, .devices, .kept_facts, .runner.
"""

from __future__ import annotations

from gelu_audit.implementations.devices import torch_missing_reason
from gelu_audit.implementations.kept_facts import KeptFacts
from gelu_audit.implementations.model import (
    Implementation,
    ImplementationUnavailable,
    SkipKind,
    SkipReason,
)
from gelu_audit.implementations.runner import implementation_warnings_silenced
from gelu_audit.numerics.formats import FloatFormat


def claim_reason(impl: Implementation, device: str, fmt: FloatFormat) -> SkipReason | None:
    """Why ``impl`` never runs on ``device`` in ``fmt``, by what it claims (its dtypes, CPU
    only), whatever this machine has; None when its claims allow it."""
    if fmt.name not in impl.dtypes:
        return SkipReason(SkipKind.DTYPE_UNSUPPORTED, f"does not support {fmt}")
    if device != "cpu" and (impl.cpu_only or impl.takes_arrays):
        return SkipReason(SkipKind.CPU_ONLY, "CPU only")
    return None


def unavailable_reason(
    impl: Implementation, device: str, fmt: FloatFormat, facts: KeptFacts | None = None
) -> SkipReason | None:
    """Why ``impl`` cannot run on ``device`` in ``fmt``, or None when it can (``facts``: what
    ``list`` may take from earlier runs, see :func:`~.devices.torch_missing_reason`)."""
    if reason := claim_reason(impl, device, fmt):
        return reason
    if impl.backend == "torch" and (reason := torch_missing_reason(facts)):
        return reason
    requirement = impl.requires(device, fmt) if impl.requires else None
    return SkipReason(SkipKind.REQUIREMENT, requirement) if requirement else None


_PREPARED: dict[tuple[str, str, str, bool], SkipReason | None] = {}


def _preparation_key(impl: Implementation, device: str, fmt: FloatFormat) -> tuple[str, str, str, bool]:
    """Whose setup: a child's answer (the accuracy audit's helper) is kept apart from this
    process's own."""
    return (impl.name, device, fmt.name, impl.isolation is None)


def preparation_failure(impl: Implementation, device: str, fmt: FloatFormat) -> SkipReason | None:
    """Run ``impl``'s one-time setup for ``device`` and ``fmt`` (once per process): the reason it
    cannot run there, or None. Call after :func:`unavailable_reason` returned None."""
    if impl.prepare is None:
        return None
    key = _preparation_key(impl, device, fmt)
    if key not in _PREPARED:
        try:
            with implementation_warnings_silenced():
                impl.prepare(device, fmt)
            _PREPARED[key] = None
        except ImplementationUnavailable as reason:
            _PREPARED[key] = SkipReason(SkipKind.SETUP_FAILED, str(reason))
    return _PREPARED[key]


def earlier_failure(impl: Implementation, device: str, fmt: FloatFormat) -> SkipReason | None:
    """Why ``impl``'s one-time setup for ``device`` and ``fmt`` failed earlier in this process,
    or None (it has not been tried, or it succeeded). Asked before the quick checks: a failed
    build can change what they see (Inductor, loaded by it, answers the compiler check itself),
    and one cause should read the same in both passes, wherever it was built."""
    return _PREPARED.get(_preparation_key(impl, device, fmt))


def skip_reason(impl: Implementation, device: str, fmt: FloatFormat) -> SkipReason | None:
    """Why ``impl`` will not be run on ``device`` in ``fmt``: its setup failed before,
    unavailable, or its one-time setup fails now; None when it is ready."""
    return (
        earlier_failure(impl, device, fmt)
        or unavailable_reason(impl, device, fmt)
        or preparation_failure(impl, device, fmt)
    )
