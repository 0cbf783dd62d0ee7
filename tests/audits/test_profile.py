"""Error profiles: segments that tile the axis, and profiles that add up and merge."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gelu_audit.audits.accuracy import AuditSettings, run_audit
from gelu_audit.audits.profile import ProfileAccumulator, SegmentRuns, round_up_4, segment_keys, segment_table
from gelu_audit.numerics.formats import BF16, FP16, FP32, FP64, all_patterns, patterns_to_values
from tests.helpers import session_cache_dir

# --- segments and profiles --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [FP16, BF16, FP32, FP64], ids=lambda f: f.name)
def test_segments_tile_the_finite_axis(fmt) -> None:
    """Per sign, the segments run from 0 to the format's overflow threshold without gap."""
    table = segment_table(fmt)
    assert table.lo[0] == 0.0 and table.hi[0] == fmt.smallest_normal
    assert np.all(table.lo[1:] == table.hi[:-1]) and np.all(table.lo < table.hi)
    assert table.hi[-1] >= fmt.largest_finite


def test_every_fp16_input_lands_in_the_segment_that_holds_it() -> None:
    x = patterns_to_values(FP16, all_patterns(FP16))
    keys = segment_keys(FP16, x)
    table, n = segment_table(FP16), segment_table(FP16).count
    finite = np.isfinite(x)
    assert np.all(keys[~finite] == -1) and np.all(keys[finite] >= 0)
    k, v = keys[finite], x[finite]
    magnitude = np.abs(v)
    base = np.where(k >= n, k - n, k)
    assert np.all((table.lo[base] <= magnitude) & (magnitude < table.hi[base]))
    assert np.all((k >= n) == np.signbit(v))


def test_profile_of_an_audit_adds_up_to_its_statistics() -> None:
    report = run_audit(
        AuditSettings(
            dtypes=("fp16",), implementations=("torch-erf-composite",), cache_dir=session_cache_dir()
        )
    )
    case = report.results[0]
    profile = case.exact.profile
    assert sum(profile.points) == 65536 - 2048  # every input but the NaNs and ±inf
    assert max(profile.max_ulp) == round_up_4(case.exact.max_ulp)
    assert len(case.nonfinite) == case.nonfinite_count  # few enough to be all listed
    assert sum(profile.nonfinite) == sum(math.isfinite(p.x) for p in case.nonfinite)  # −∞ has no segment
    assert list(profile.x_lo) == sorted(profile.x_lo)
    worst = case.exact.worst[0].x
    holding = [
        i
        for i, (lo, hi) in enumerate(zip(profile.x_lo, profile.x_hi))
        if lo <= worst < hi or hi == worst == 0
    ]
    assert profile.max_ulp[holding[0]] == max(profile.max_ulp)


def test_profile_accumulators_merge_like_one() -> None:
    x = np.linspace(-10, 10, 4001)
    errors = np.abs(np.sin(x)) * 3
    whole, first, second = ProfileAccumulator(), ProfileAccumulator(), ProfileAccumulator()
    whole.add(FP32, SegmentRuns.of(FP32, x), errors, errors > 2, np.array([5, 3000]))
    first.add(FP32, SegmentRuns.of(FP32, x[:1500]), errors[:1500], errors[:1500] > 2, np.array([5]))
    second.add(
        FP32,
        SegmentRuns.of(FP32, x[1500:][::-1]),
        errors[1500:][::-1],
        errors[1500:][::-1] > 2,
        np.array([len(x) - 1 - 3000]),
    )
    first.merge(ProfileAccumulator.from_state(second.to_state()))
    assert first.finish() == whole.finish()


def test_round_up_4_is_an_upper_bound() -> None:
    expected = {
        2.043401683100175: 2.044,
        0.1: 0.1001,
        16777215.0: 16780000.0,
        0.0: 0.0,
        5e-324: 5e-324,
        1.7976931348623157e308: 1.7976931348623157e308,
    }  # the last: 1.798e308 would overflow
    for value, rounded in expected.items():
        assert round_up_4(value) == rounded >= value
