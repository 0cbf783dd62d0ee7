"""``--reference-store``: a later exhaustive audit reads what an earlier one kept, and its numbers
are those of an audit without a store, bit for bit; a damaged file is recomputed, never trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gelu_audit.audits.exhaustive import PatternSpace, Shard, stream
from gelu_audit.audits.reference_store import (
    STALE_AFTER_S,
    StoredBlock,
    chunk_path,
    numeric_environment,
    open_store,
)
from gelu_audit.audits.stats import ErrorAccumulator
from gelu_audit.numerics.formats import FP32
from gelu_audit.numerics.inputs import parse_range
from gelu_audit.references.tiers import SCIPY_TIER, ReferenceTier, TierBackend
from tests.helpers import assert_usage_error, run_cli

# Subnormals (F.gelu flushes them), the tiny region, and x in [-2.7, -2.6] (not correctly
# rounded everywhere): blocks of both kinds, in 32K chunks.
SPACE = PatternSpace(FP32, parse_range("-2.7:-2.6"))
TINY = PatternSpace(FP32, parse_range("0:1e-38"))
CHUNK = 1 << 15


def states(outcome) -> str:
    return json.dumps({f"{k[0]}@{k[1]}": case.to_state() for k, case in sorted(outcome.accumulators.items())})


def run(space: PatternSpace, cases: tuple[tuple[str, str], ...], store: Path | None, tolerance: float = 2.0):
    return stream(FP32, space, ("erf", "tanh"), cases, tolerance, 5, chunk_size=CHUNK, store=store)


def test_a_stored_audit_equals_one_without_a_store(tmp_path: Path) -> None:
    for space in (SPACE, TINY):
        first = (("torch-gelu", "cpu"),)
        later = (("torch-gelu-aten", "cpu"), ("numpy-tanh", "cpu"), ("torch-gelu", "cpu"))
        written = run(space, first, tmp_path)
        chunks = len(list(space.items(CHUNK)))
        assert written.store.chunks_written == 2 * chunks and written.store.chunks_read == 0
        assert states(written) == states(run(space, first, None))
        read = run(space, later, tmp_path)
        assert read.store.chunks_read == 2 * chunks and read.store.chunks_written == 0
        plain = run(space, later, None)
        assert states(read) == states(plain)
        assert read.tiers == plain.tiers  # the regions are stored too


def test_chunks_that_start_inside_a_block(tmp_path: Path) -> None:
    """With 1M chunks, a range whose first pattern is not a multiple of 32K starts its first
    chunk with a short block: the stored summaries are cut where the blocks are."""
    space = PatternSpace(FP32, parse_range("1.0001:1.0200"))
    assert next(space.items(1 << 20))[0] % (1 << 15)  # the premise: a chunk starts mid-block
    cases = (("torch-gelu", "cpu"),)
    later = (("numpy-tanh", "cpu"), ("torch-gelu-aten", "cpu"))

    def audit(chosen, store):
        return stream(FP32, space, ("erf", "tanh"), chosen, 2.0, 5, store=store)

    audit(cases, tmp_path)
    read = audit(later, tmp_path)
    assert read.store.chunks_read and not read.store.damaged and not read.store.chunks_written
    assert states(read) == states(audit(later, None))


def test_another_numeric_environment_uses_another_folder() -> None:
    """NumPy's SIMD dispatch changes the float64 residuals' last digits: a store written under
    another one must not be read here (nor overwritten)."""
    dispatch = numeric_environment("erf", FP32)["numpy_dispatch"]
    if not dispatch:
        pytest.skip("NumPy dispatches no SIMD code beyond its baseline on this CPU")
    code = (
        "from gelu_audit.audits.reference_store import chunk_path, numeric_environment\n"
        "from gelu_audit.audits.stats import ErrorAccumulator\n"
        "from gelu_audit.numerics.formats import FP32\n"
        "print(chunk_path('.', FP32, 'erf', ErrorAccumulator('exact', 2.0, 5), 0, 1 << 20).parent.name)"
    )

    def folder(**env: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert folder() == folder()  # the same environment: the same folder
    assert folder(NPY_DISABLE_CPU_FEATURES=dispatch[-1]) != folder()


def test_other_settings_do_not_read_the_stored_summaries(tmp_path: Path) -> None:
    cases = (("torch-gelu", "cpu"),)
    run(SPACE, cases, tmp_path, tolerance=2.0)
    other = run(SPACE, cases, tmp_path, tolerance=0.75)
    assert other.store.chunks_read == 0 and other.store.chunks_written > 0
    assert states(other) == states(run(SPACE, cases, None, tolerance=0.75))


def test_a_damaged_chunk_is_recomputed_and_rewritten(tmp_path: Path) -> None:
    cases = (("torch-gelu", "cpu"),)
    plain = run(SPACE, cases, None)
    run(SPACE, cases, tmp_path)
    like = ErrorAccumulator("exact", 2.0, 5)
    start, stop = next(SPACE.items(CHUNK))
    path = chunk_path(tmp_path, FP32, "erf", like, start, stop)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    again = run(SPACE, cases, tmp_path)
    assert again.store.damaged == 1 and again.store.chunks_written == 1
    assert states(again) == states(plain)
    assert run(SPACE, cases, tmp_path).store.damaged == 0  # rewritten whole


def test_chunks_are_readable_as_the_umask_allows_and_stale_leftovers_go(tmp_path: Path) -> None:
    """Not mkstemp's private 0600 (a team's shared store would look damaged to the others); a
    killed writer's temporary file is removed once it is an hour old, a fresh one is left to
    the audit that may be writing it, and nothing that is not the store's own is touched."""
    previous = os.umask(0o027)
    try:
        run(SPACE, (("torch-gelu", "cpu"),), tmp_path)
        assert os.umask(0o027) == 0o027  # left as it was
    finally:
        os.umask(previous)
    modes = {f.stat().st_mode & 0o777 for f in tmp_path.rglob("*.npz")}
    assert modes == {0o640}
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    stale, fresh = folder / "00000000-00008000.npz0a1b2c3d.tmp", folder / "00008000-00010000.npz4e5f6a7b.tmp"
    others = [folder / "notes.tmp", tmp_path / "elsewhere" / "00000000-00008000.npz0a1b2c3d.tmp"]
    others[1].parent.mkdir()
    old = time.time() - STALE_AFTER_S - 60
    for leftover in (stale, fresh, *others):
        leftover.write_bytes(b"half a chunk")
        if leftover is not fresh:
            os.utime(leftover, (old, old))
    open_store(tmp_path)
    assert not stale.exists() and fresh.exists() and all(other.exists() for other in others)


def test_a_chunk_costs_under_a_byte_a_point_where_rounding_is_hardest(tmp_path: Path) -> None:
    """RN_T(y) as steps between neighbours, and the block summaries: under a byte a point per
    function even in [-2.7, -2.6], where no step is predictable (the tails cost far less)."""
    written = run(SPACE, (("torch-gelu", "cpu"),), tmp_path)
    size = sum(f.stat().st_size for f in tmp_path.rglob("*.npz"))
    assert written.store.bytes_written == size
    assert size < 2 * SPACE.count()


def test_the_store_is_for_exhaustive_fp32(tmp_path: Path) -> None:
    assert_usage_error(
        run_cli("accuracy", "-d", "fp16", "--reference-store", str(tmp_path)), "add --exhaustive -d fp32"
    )
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli(
        "accuracy",
        "-d",
        "fp32",
        "--exhaustive",
        "--range",
        "1:1.001",
        "--reference-store",
        str(blocker / "store"),
    )
    assert_usage_error(result, "cannot be written")


def test_the_report_says_what_the_store_did(tmp_path: Path) -> None:
    args = ("accuracy", "-d", "fp32", "--exhaustive", "--range", "1:1.01", "-i", "torch-gelu", "-f", "json")
    first = json.loads(run_cli(*args, "--reference-store", str(tmp_path)).stdout)
    second = json.loads(run_cli(*args, "--reference-store", str(tmp_path)).stdout)
    stored = [first["streams"]["fp32"], second["streams"]["fp32"]]
    assert stored[0]["reference_store"]["chunks_written"] == 1
    assert stored[1]["reference_store"]["chunks_read"] == 1
    assert second["results"][0]["exact"] == first["results"][0]["exact"]


def test_chunks_of_known_regions_are_neither_written_nor_read(tmp_path: Path) -> None:
    """A tiny chunk and a saturated one carry their prototypes over (audits/known_blocks.py),
    faster than a read: the store keeps nothing of them, and the numbers are the same."""
    for text in ("1e-30:1.0001e-30", "10000:10001"):
        space = PatternSpace(FP32, parse_range(text))
        written = run(space, (("torch-gelu", "cpu"),), tmp_path)
        assert written.store.chunks_written == written.store.chunks_read == 0
        assert not list(tmp_path.rglob("*.npz"))
        assert states(written) == states(run(space, (("torch-gelu", "cpu"),), None))


def test_below_half_an_ulp_known_chunks_go_to_the_store(tmp_path: Path) -> None:
    """With a tolerance under 1/2 ULP, tiny blocks whose residuals exceed it fall back to the
    arithmetic: then the store keeps and serves them, with the numbers of a run without one."""
    space = PatternSpace(FP32, parse_range("1e-20:1.0001e-20"))
    written = run(space, (("torch-gelu", "cpu"),), tmp_path, tolerance=1e-30)
    assert written.store.chunks_written == 2 * len(list(space.items(CHUNK)))
    read = run(space, (("torch-gelu-aten", "cpu"),), tmp_path, tolerance=1e-30)
    assert read.store.chunks_read == written.store.chunks_written
    assert states(read) == states(run(space, (("torch-gelu-aten", "cpu"),), None, tolerance=1e-30))


def test_the_torch_tier_keeps_its_own_store_with_the_same_numbers(tmp_path: Path) -> None:
    """A store written by the torch tier is read back by it, and its numbers are the SciPy
    tier's; the two tiers key their files apart (on a GPU the mantissas are the device's)."""
    torch_tier = ReferenceTier(TierBackend.TORCH, "cpu")
    first = (("torch-gelu", "cpu"),)
    later = (("torch-gelu-aten", "cpu"), ("numpy-tanh", "cpu"))

    def audit(cases, store, tier):
        return stream(FP32, SPACE, ("erf", "tanh"), cases, 2.0, 5, chunk_size=CHUNK, store=store, tier=tier)

    written = audit(first, tmp_path, torch_tier)
    assert written.store.chunks_written and not written.store.chunks_read
    read = audit(later, tmp_path, torch_tier)
    assert read.store.chunks_read == written.store.chunks_written and not read.store.chunks_written
    plain = audit(later, None, SCIPY_TIER)
    assert states(read) == states(plain) and read.tiers == plain.tiers
    like = ErrorAccumulator("exact", 2.0, 5)
    assert chunk_path(tmp_path, FP32, "erf", like, 0, CHUNK, torch_tier) != chunk_path(
        tmp_path, FP32, "erf", like, 0, CHUNK
    )


def test_nan_inputs_read_from_the_store_give_the_numbers_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk of −∞ and negative NaNs: RN_T(y) is a NaN there, and kernels pass their input's
    NaN payload through, which a stored block does not count as a difference (as a computed one
    does not: ``ReferenceBlock.differs``), so its stored summary serves them without the block's
    references (only the one with −∞ computes them, where the answers are NaN); the numbers are
    those of an audit without a store."""
    space = PatternSpace(FP32, None, Shard(4089, 4096))  # stripe 4088: -inf, then negative NaNs
    assert [a for a, _ in space.items(1 << 20)] == [0xFF800000]
    run(space, (("torch-gelu", "cpu"),), tmp_path)
    later = (("torch-gelu-aten", "cpu"), ("numpy-erf", "cpu"))
    computed = []
    full = StoredBlock.full
    monkeypatch.setattr(StoredBlock, "full", lambda self: computed.append(self.index[0]) or full(self))
    read = run(space, later, tmp_path)
    monkeypatch.undo()
    assert read.store.chunks_read and not read.store.chunks_written
    assert set(computed) <= {0xFF800000}  # of 32 blocks, for each formula
    assert states(read) == states(run(space, later, None))
