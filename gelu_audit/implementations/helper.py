"""The accuracy audit's helper: a child process that builds and runs the costly rows meanwhile.

``torch.compile``'s rows cost more to start than all the other rows of an fp16 audit together:
importing Dynamo and Inductor, tracing, and loading the cached kernel (docs/speed.md,
"Start-up"). None of it needs the audit's process, so an accuracy audit from the CLI hands
those rows' CPU cases, at its start, to one child process
(:mod:`~gelu_audit.implementations.isolation`) that imports, builds each dtype in the order
the audit will come to them, and answers their calls. Meanwhile the audit imports torch and
the other frameworks, computes the references and audits the other rows, and comes to these
rows last (their results and skips keep their place in the report).

The child is a fresh interpreter with this process's environment that rebuilds the row from
gelu-audit's own list (never a plugin), so it builds the same kernel: same torch, same Inductor
cache, same CPU. A row decides for itself whether that holds now
(:attr:`~.model.Implementation.helper_may_build`). State a caller set in its own process is not
seen there (Inductor's configuration, which turns the helper off; ``torch.set_flush_denormal``),
which is why only the CLI, whose process has none, asks for the helper. GPU cases stay in the
audit's process: a second CUDA context costs memory and is refused on a GPU in exclusive-process
mode. A failed build is the row's skip with the build's own message, as in process; a helper
that dies while building is a skip that says how. When no child can be started, the rows stay
in the audit's process.
May import: foundation, numerics, implementations.model, .availability, .devices, .isolation, .registry.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from gelu_audit.environment import usable_cpus
from gelu_audit.implementations.availability import claim_reason
from gelu_audit.implementations.devices import parse_device
from gelu_audit.implementations.isolation import InChild, child_process, with_backward
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.registry import built_in_implementations, built_in_named
from gelu_audit.numerics.formats import FloatFormat

HELPED_DEVICE = "cpu"
"""The device whose cases the helper takes (see the module's docstring for why not a GPU's)."""


def hand_to_helper(
    implementations: list[Implementation], formats: list[FloatFormat], devices: tuple[str, ...]
) -> dict[str, Implementation]:
    """Start the helper on the rows that may build there: each such row's CPU cases as
    implementations hosted by the helper, by name (empty when there are none, the CPU is not
    among the ``devices`` asked (none: the default set, which has it), this process has one CPU
    to run on, or no child can be started). The helper starts building at once, dtype by dtype.

    A hosted row's ``prepare`` waits for the helper's answer, so an audit that comes to it last
    has spent the build's time on the rest. Called before anything imports torch: the helper
    checks for itself whether torch and a compiler are there before it builds (the audit checks
    too, and asks only for what it found)."""
    if devices and HELPED_DEVICE not in {parse_device(device) for device in devices}:
        return {}
    if usable_cpus() < 2:  # the helper's work would wait for the audit's, and import torch again
        return {}
    own = {impl.name for impl in built_in_implementations()}
    rows = [
        impl
        for impl in implementations
        if impl.name in own
        and impl.isolation is None
        and impl.helper_may_build is not None
        and impl.helper_may_build()
    ]
    keys = [
        (impl.name, fmt.name, HELPED_DEVICE)
        for fmt in formats  # the audit's order: the helper builds what is needed first, first
        for impl in rows
        if claim_reason(impl, HELPED_DEVICE, fmt) is None
    ]
    names = sorted({name for name, _, _ in keys})
    if not names:
        return {}
    loaders = {}
    for name in names:
        loaders.update(with_backward(name, partial(built_in_named, name)))
    child = child_process(("helper", tuple(names)), loaders)
    try:
        child.set_up_ahead(keys)
    except (OSError, RuntimeError):  # no process can be started here (limits, a sandbox): they stay
        child.close()
        return {}
    hosted = {}
    for impl in rows:
        if impl.name in names:
            in_child = InChild(child, impl.name, impl.timeout)
            hosted[impl.name] = replace(impl, isolation=in_child, prepare=in_child.prepare)
    return hosted
