"""``--reference-store DIR``: what an exhaustive fp32 audit learns about the references, kept
for the next audit, so that a new kernel pays for the kernel and little else.

An exhaustive audit spends most of its time on things that do not depend on the kernel: the
references (the fast tier), their residuals, and, for the 75-88% of 32K blocks where a
built-in kernel is correctly rounded throughout, the statistics of RN_T(y) itself
(:meth:`~gelu_audit.audits.stats.ReferenceBlock.summary`). The store keeps, per chunk of bit
patterns and per reference function:

* RN_T(y) of every pattern, as the difference between its bits and the previous pattern's
  (1 wherever f(x) rounds to x, 0 over the underflowed tail, and small numbers elsewhere, since
  |f′| ≤ 1.13), compressed: about 4 KB per 2^20 points of the tails;
* per block, the summary's accumulator state for the audit's settings (tolerance, top,
  policies, and what the statistics are against);
* the fast tier's region counts, so the report says the same as without the store.

A later audit with the same settings compares each block's answers with the stored RN_T(y) and
merges the stored summary where they are equal; where they differ, it computes the references
of the differing points alone (the fast tier) and replaces their share of the summary. The numbers are
the same as without a store, bit for bit, on the machine and libraries that wrote it
(``tests/audits/test_reference_store.py``); another NumPy, SciPy or SIMD dispatch changes the
float64 residuals' last digits, so it reads and writes a folder of its own
(:func:`numeric_environment`), as does another reference tier (``--reference-tier``: torch's
version and ATen's CPU capability, or the GPU's facts, join the key).

Each file is one chunk, written atomically and checked on read (metadata and a SHA-256 of the
contents): a damaged, foreign or outdated file is never trusted, only recomputed and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np

from gelu_audit.audits.deferred_blocks import DeferredBlock
from gelu_audit.audits.stats import (
    ErrorAccumulator,
    ReferenceBlock,
    answer_differs,
    block_slices,
    nan_positions,
)
from gelu_audit.errors import UsageError
from gelu_audit.numerics.formats import BlockInputs, FloatFormat, patterns_to_values
from gelu_audit.numerics.formulas import FUNCTIONS
from gelu_audit.references.cache import save_npz_atomically
from gelu_audit.references.fast_gradient import fast_references_of
from gelu_audit.references.fast_tier import BLOCK, TierCounts
from gelu_audit.references.mpmath_ziv import REFERENCE_VERSION
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier
from gelu_audit.user_cache import TEMPORARY_SUFFIX

STORE_VERSION = 3
"""Bumped whenever what a chunk file holds, or how a summary is computed, changes (2: the
saturated tail's trailing mantissa is +0, summaries cut at global block boundaries, the
numeric environment in the key; 3: the fast region's float64 forms for erf at x ≥ 0 and tanh′
changed, see ``numerics.array_ops``)."""

FINGERPRINT_STEP = 65537
"""Every 65,537th fp32 pattern (65,536 of them, every region) is a probe of the environment."""


STALE_AFTER_S = 3600.0
"""A temporary file this old is a killed writer's leftover: a chunk is written in milliseconds."""


def open_store(path: Path) -> Path:
    """The store's directory, created if needed; a path that cannot hold it is a usage error.

    Leftover temporary files of writers killed mid-write (SIGKILL, out of memory) are removed
    here, once they are an hour old, so a store does not collect them; a younger one may
    belong to an audit running now."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)  # noqa: SIM115
        probe.close()
    except OSError as error:
        raise UsageError(
            f"--reference-store {str(path)!r} cannot be written: {error.strerror or error}"
        ) from None
    remove_stale_temporaries(path)
    return path


_LEFTOVER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{8}\.npz[0-9a-f]{8}" + re.escape(TEMPORARY_SUFFIX))
"""A chunk's temporary file, as ``save_npz_atomically`` names it: nothing else is touched."""
_FOLDER = re.compile(r"[a-z0-9]+-[a-z0-9_-]+-[0-9a-f]{16}")
"""A store folder, as ``chunk_path`` names it (format, function, settings id)."""


def remove_stale_temporaries(path: Path, older_than_s: float = STALE_AFTER_S) -> int:
    """Delete the store's own temporary files under ``path`` (a chunk's name in a store
    folder's, nothing else: DIR may be any folder) older than ``older_than_s``; how many."""
    removed = 0
    now = time.time()
    for leftover in path.glob(f"*/*{TEMPORARY_SUFFIX}"):
        if not (_LEFTOVER.fullmatch(leftover.name) and _FOLDER.fullmatch(leftover.parent.name)):
            continue
        try:
            if now - leftover.stat().st_mtime > older_than_s:
                leftover.unlink()
                removed += 1
        except OSError:  # gone already, or not ours to remove: harmless
            continue
    return removed


@cache
def numeric_environment(function: str, fmt: FloatFormat, tier: ReferenceTier = SCIPY_TIER) -> dict[str, Any]:
    """What a summary's last digits depend on besides the settings.

    RN_T(y) is the same everywhere, but the residuals behind the summaries come from the fast
    tier's float64 mantissas, and those depend on the NumPy and SciPy builds and on the SIMD
    code NumPy dispatches to on this CPU. So the key holds their versions, the dispatch, and
    a SHA-256 of the tier's values at 65,536 probe patterns spread over every region: a store
    written elsewhere is another folder, never mixed with this machine's numbers. The torch
    tier (``tier``) adds its name, torch's version and what its primitives' code depends on:
    ATen's CPU capability, or the GPU's name, compute capability and CUDA version (on a GPU its
    mantissas are the device's own).
    """
    import platform

    import mpmath
    import scipy

    from gelu_audit import __version__

    patterns = np.arange(0, 1 << 32, FINGERPRINT_STEP, dtype=np.uint64).astype(np.uint32)
    ref, _ = fast_references_of(FUNCTIONS[function], fmt, patterns_to_values(fmt, patterns), tier=tier)
    sha = hashlib.sha256()
    for column in (ref.binade.astype(np.int64), ref.mant_hi, ref.mant_lo, ref.rounded):
        sha.update(np.ascontiguousarray(column).tobytes())
    try:
        from numpy._core import _multiarray_umath as umath  # type: ignore[attr-defined]

        features = umath.__cpu_features__
        dispatch = [name for name in umath.__cpu_dispatch__ if features.get(name)]
    except (ImportError, AttributeError):  # a NumPy without these internals: versions and values still key it
        dispatch = []
    backend: dict[str, Any] = {}
    if tier != SCIPY_TIER:
        import torch

        backend = {"tier": tier.spec, "torch": torch.__version__}
        if tier.device == "cpu":
            backend["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        else:
            backend["gpu"] = torch.cuda.get_device_name(tier.device)
            backend["compute_capability"] = list(torch.cuda.get_device_capability(tier.device))
            backend["cuda"] = torch.version.cuda
    return {
        **backend,
        "gelu_audit": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
        "machine": platform.machine(),
        "numpy_dispatch": dispatch,
        "fingerprint": sha.hexdigest(),
    }


def _settings_id(function: str, fmt: FloatFormat, like: ErrorAccumulator, tier: ReferenceTier) -> str:
    """A short name for the files of one reference function under one set of settings, in
    one numeric environment."""
    environment = numeric_environment(function, fmt, tier)
    text = json.dumps([function, REFERENCE_VERSION, STORE_VERSION, list(like.settings), environment])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chunk_path(
    root: Path,
    fmt: FloatFormat,
    function: str,
    like: ErrorAccumulator,
    start: int,
    stop: int,
    tier: ReferenceTier = SCIPY_TIER,
) -> Path:
    folder = f"{fmt.name}-{function}-{_settings_id(function, fmt, like, tier)}"
    return Path(root) / folder / f"{start:08x}-{stop:08x}.npz"


def _meta(
    fmt: FloatFormat, function: str, like: ErrorAccumulator, start: int, stop: int, tier: ReferenceTier
) -> dict[str, Any]:
    return {
        "kind": "gelu-audit reference store chunk",
        "store_version": STORE_VERSION,
        "reference_version": REFERENCE_VERSION,
        "format": fmt.name,
        "function": function,
        "settings": list(like.settings),
        "environment": numeric_environment(function, fmt, tier),
        "start": start,
        "stop": stop,
        "block": BLOCK,
    }


def _digest(meta: dict[str, Any], payload: bytes) -> str:
    sha = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    sha.update(payload)
    return sha.hexdigest()


def _payload(rounded_steps: np.ndarray, summaries: list[dict[str, Any]], regions: dict[str, int]) -> bytes:
    """One compressed byte string: the steps of RN_T(y)'s bits, then the JSON of the summaries
    and the regions."""
    text = json.dumps({"summaries": summaries, "regions": regions}).encode()
    deltas = rounded_steps.astype("<u4").tobytes()
    return zlib.compress(len(deltas).to_bytes(8, "little") + deltas + text, 6)


def _without_policies(state: dict[str, Any]) -> dict[str, Any]:
    """A summary's state without its policies, which the file's settings already name."""
    del state["policies"]
    return state


@dataclass
class StoredBlock(DeferredBlock):
    """A block of the store: RN_T(y) and the summary, with the full references computed only
    when an answer differs from RN_T(y)."""

    rounded: np.ndarray
    stored_summary: ErrorAccumulator
    settings: tuple[Any, ...]

    def knows(self, like: ErrorAccumulator) -> bool:
        """The stored summary is for the settings it was written with."""
        return like.settings == self.settings

    def differs(self, got: np.ndarray) -> np.ndarray:
        """Where ``got`` is not the stored RN_T(y), as ``ReferenceBlock.differs`` says it."""
        return answer_differs(got, self.rounded, self._nan_references)

    @cached_property
    def _nan_references(self) -> np.ndarray | None:
        """Where RN_T(y) is a NaN; None where it is nowhere (almost every block)."""
        return nan_positions(self.rounded)

    def summary(self, like: ErrorAccumulator) -> ErrorAccumulator:
        return self.stored_summary if self.knows(like) else self.full().summary(like)

    def answer_summary(self, like: ErrorAccumulator, got: np.ndarray) -> ErrorAccumulator | None:
        """None: the store keeps RN_T(y)'s summary only."""
        return None


@dataclass
class StoredChunk:
    blocks: list[StoredBlock]
    regions: TierCounts


@dataclass
class StoreTally:
    """What a stream did with the store, for the report."""

    chunks_read: int = 0
    chunks_written: int = 0
    bytes_written: int = 0
    damaged: int = 0
    """Files found but not trusted (recomputed and rewritten)."""
    not_written: int = 0
    """Chunks that could not be written (a full disk, a read-only store)."""

    def add(self, other: StoreTally) -> None:
        self.chunks_read += other.chunks_read
        self.chunks_written += other.chunks_written
        self.bytes_written += other.bytes_written
        self.damaged += other.damaged
        self.not_written += other.not_written

    def to_json(self) -> dict[str, int]:
        return {
            "chunks_read": self.chunks_read,
            "chunks_written": self.chunks_written,
            "bytes_written": self.bytes_written,
            "damaged": self.damaged,
            "not_written": self.not_written,
        }


@dataclass
class ChunkStore:
    """The store as one worker sees it for one chunk of patterns."""

    root: Path
    fmt: FloatFormat
    start: int
    stop: int
    tier: ReferenceTier = SCIPY_TIER
    """The fast tier's backend: part of the stored files' key, and what differing blocks
    compute their references with."""
    tally: StoreTally = field(default_factory=StoreTally)

    def load(
        self, function: str, like: ErrorAccumulator, x: np.ndarray, patterns: np.ndarray
    ) -> StoredChunk | None:
        """The stored chunk if its file is intact and is the one asked for, else None."""
        path = chunk_path(self.root, self.fmt, function, like, self.start, self.stop, self.tier)
        if not path.exists():
            return None
        meta = _meta(self.fmt, function, like, self.start, self.stop, self.tier)
        try:
            with np.load(path, allow_pickle=False) as data:
                stored_meta = json.loads(str(data["meta"]))
                digest = str(data["digest"])
                payload = bytes(data["payload"])
            if stored_meta != meta or digest != _digest(meta, payload):
                raise ValueError("foreign or damaged")
            raw = zlib.decompress(payload)
            size = int.from_bytes(raw[:8], "little")
            deltas = np.frombuffer(raw[8 : 8 + size], "<u4")
            content = json.loads(raw[8 + size :])
            index = patterns.astype(np.int64)
            slices = block_slices(index)
            states = content["summaries"]
            if len(deltas) != len(x) or len(states) != len(slices):
                raise ValueError("wrong shape")
            summaries = []
            for part, state in zip(slices, states, strict=True):
                summary = ErrorAccumulator.from_state({**state, "policies": []})  # the settings' policies
                if summary.points != part.stop - part.start:
                    raise ValueError("a summary of another block")
                summary.policies = like.policies
                summaries.append(summary)
        except Exception:  # noqa: BLE001 - any unreadable file is simply not trusted
            self.tally.damaged += 1
            return None
        rounded = np.cumsum(deltas, dtype=np.uint32).view(np.float32).astype(np.float64)
        blocks = [
            StoredBlock(
                self.fmt,
                FUNCTIONS[function],
                BlockInputs(self.fmt, x=x[part], index=index[part]),
                like.top,
                rounded[part],
                summary,
                like.settings,
                tier=self.tier,
            )
            for part, summary in zip(slices, summaries, strict=True)
        ]
        self.tally.chunks_read += 1
        return StoredChunk(blocks, TierCounts({k: int(v) for k, v in content["regions"].items()}))

    def save(
        self,
        function: str,
        like: ErrorAccumulator,
        blocks: list[ReferenceBlock],
        regions: TierCounts,
    ) -> None:
        """Write the chunk's RN_T(y) and block summaries atomically; a full disk is not fatal
        to the audit (the chunk is simply not stored)."""
        rounded = np.concatenate([b.ref.rounded for b in blocks]).astype(np.float32).view(np.uint32)
        summaries = [_without_policies(block.summary(like).to_state()) for block in blocks]
        payload = _payload(np.diff(rounded, prepend=np.uint32(0)), summaries, regions.counts)
        meta = _meta(self.fmt, function, like, self.start, self.stop, self.tier)
        path = chunk_path(self.root, self.fmt, function, like, self.start, self.stop, self.tier)
        try:
            save_npz_atomically(
                path,
                meta=json.dumps(meta),
                digest=_digest(meta, payload),
                payload=np.frombuffer(payload, np.uint8),
            )
        except OSError:  # a full disk, a read-only store: the audit goes on without it
            self.tally.not_written += 1
            return
        self.tally.chunks_written += 1
        self.tally.bytes_written += path.stat().st_size
