"""Costly builds made apart: a helper process builds and runs them while the audit does the rest.

``torch.compile``'s rows cost more to start than all the other rows of an fp16 audit together:
importing Dynamo and Inductor, tracing, and loading the cached kernel (docs/speed.md,
"Start-up"). None of it needs the audit's process, so an accuracy audit hands those rows, at
its start, to one child process (:mod:`~gelu_audit.implementations.isolation`) that imports,
builds every (dtype, device) the audit will ask for, and then answers their calls. Meanwhile
the audit imports the other frameworks, computes the references and audits the other rows, and
comes to these rows last (their results keep their place in the report).

The child is a fresh interpreter with this process's environment, so it builds the same kernel
(same torch, same Inductor cache, same CPU); a row decides for itself whether that holds now
(:attr:`~.model.Implementation.build_apart`). A failed build is the row's skip with the build's
own message, as in process; a child that dies while building is a skip that says how it died.
May import: numerics, implementations.model, .availability, .isolation, .registry.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from gelu_audit.implementations.availability import claim_reason
from gelu_audit.implementations.isolation import InChild, child_process, with_backward
from gelu_audit.implementations.model import Implementation
from gelu_audit.implementations.registry import implementation_named
from gelu_audit.numerics.formats import FloatFormat


def built_apart(
    implementations: list[Implementation], formats: list[FloatFormat], devices: list[str]
) -> tuple[list[Implementation], frozenset[str]]:
    """``implementations`` with the rows that build apart moved into one helper process, which
    starts building every (dtype, device) they claim; and the names of those rows.

    Called before anything imports torch: the helper starts at once and checks for itself
    whether torch, the device and a compiler are there before it builds (the audit checks too,
    and asks only for what it found). A moved row's ``prepare`` waits for the helper's answer,
    so an audit that comes to it last has spent the build's time on the rest. Rows already in
    a child (``--isolate``), and rows that say their build must stay here, are left as they are."""
    keys = [
        (impl.name, fmt.name, device)
        for impl in implementations
        if impl.isolation is None and impl.build_apart is not None and impl.build_apart()
        for fmt in formats
        for device in devices
        if claim_reason(impl, device, fmt) is None
    ]
    names = frozenset(name for name, _, _ in keys)
    if not names:
        return implementations, frozenset()
    loaders = {}
    for name in sorted(names):
        loaders.update(with_backward(name, partial(implementation_named, name)))
    child = child_process(("built apart", tuple(sorted(names))), loaders)
    child.prepare_ahead(keys)
    moved = []
    for impl in implementations:
        if impl.name in names:
            in_child = InChild(child, impl.name, impl.timeout)
            impl = replace(impl, isolation=in_child, prepare=in_child.prepare)
        moved.append(impl)
    return moved, names
