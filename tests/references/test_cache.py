"""The on-disk cache of exhaustive tables: a round trip, and no trust in a damaged file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import BF16
from gelu_audit.numerics.formulas import ERF, SIGMOID
from gelu_audit.references.cache import cache_path, exhaustive_table, load_cached_table, save_table
from tests.helpers import session_cache_dir


def test_cache_round_trip_and_damage_detection(tmp_path) -> None:
    """One table computed here (the rebuild of a damaged file); it starts from the suite's copy
    of the same table, built by another process, so a rebuild is also checked against that."""
    table, _ = exhaustive_table(SIGMOID, BF16, session_cache_dir(), jobs=2)
    path = cache_path(tmp_path, SIGMOID, BF16)
    shutil.copyfile(cache_path(session_cache_dir(), SIGMOID, BF16), path)
    again, source = exhaustive_table(SIGMOID, BF16, tmp_path)
    assert source.cached and np.array_equal(again.rounded, table.rounded, equal_nan=True)

    # A file for another formula, copied over: foreign, not trusted.
    assert load_cached_table(path, ERF, BF16) is None
    # Altered content (checksum mismatch): not trusted.
    tampered = ReferenceValues(table.binade, table.mant_hi, table.mant_lo, table.rounded.copy())
    tampered.rounded[1000] += 1.0
    save_table(path, SIGMOID, BF16, tampered)
    data = dict(np.load(path))
    data["digest"] = np.array(str(np.load(path)["digest"]).replace("a", "b", 1))
    np.savez(path, **data)
    assert load_cached_table(path, SIGMOID, BF16) is None
    # Truncated file: rebuilt, and the rebuild is right.
    path.write_bytes(path.read_bytes()[:500])
    rebuilt, source = exhaustive_table(SIGMOID, BF16, tmp_path, jobs=2)
    assert not source.cached and source.rebuilt_reason
    for field in ("binade", "mant_hi", "mant_lo", "rounded"):
        assert np.array_equal(getattr(rebuilt, field), getattr(table, field), equal_nan=True), field
    reread, source = exhaustive_table(SIGMOID, BF16, tmp_path)  # the rebuild was stored
    assert source.cached and np.array_equal(reread.rounded, table.rounded, equal_nan=True)


BUILD_ONE = """
import sys
from pathlib import Path
from gelu_audit.numerics.formats import BF16
from gelu_audit.numerics.formulas import SIGMOID
from gelu_audit.references.cache import exhaustive_table
table, source = exhaustive_table(SIGMOID, BF16, Path(sys.argv[1]))
print("cached" if source.cached else "computed", source.rebuilt_reason)
"""


@pytest.mark.slow
def test_two_processes_building_one_cache_both_succeed_and_leave_it_valid(tmp_path: Path) -> None:
    """Both start on an empty cache, so both compute and both write: each write is a whole
    file renamed into place, so the last one wins and a reader never sees half of either.
    (Sigmoid's table: the cheapest of the formulas' to compute, 6.8 s against erf's 10.9.)"""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_ONE, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [child.communicate(timeout=300) for child in children]
    for child, (out, err) in zip(children, outcomes):
        assert child.returncode == 0, err
        assert out.split() == ["computed", "None"], out  # both raced: neither found it cached
    assert [p.name for p in tmp_path.iterdir()] == [cache_path(tmp_path, SIGMOID, BF16).name]  # no temp left
    table = load_cached_table(cache_path(tmp_path, SIGMOID, BF16), SIGMOID, BF16)
    assert table is not None
    again, source = exhaustive_table(SIGMOID, BF16, tmp_path)
    assert source.cached and np.array_equal(again.rounded, table.rounded, equal_nan=True)
