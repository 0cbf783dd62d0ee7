"""The on-disk cache of exhaustive tables: a round trip, and no trust in a damaged file."""

from __future__ import annotations

import numpy as np

from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import BF16
from gelu_audit.numerics.formulas import ERF, SIGMOID
from gelu_audit.references.cache import cache_path, exhaustive_table, load_cached_table, save_table


def test_cache_round_trip_and_damage_detection(tmp_path) -> None:
    table, source = exhaustive_table(SIGMOID, BF16, tmp_path, jobs=2)
    assert not source.cached
    path = cache_path(tmp_path, SIGMOID, BF16)
    assert path.exists()
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
    assert np.array_equal(rebuilt.rounded, table.rounded, equal_nan=True)
