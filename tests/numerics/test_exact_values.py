"""ReferenceValues: y as float64 from its binade and double-double mantissa."""

from __future__ import annotations

import numpy as np

from gelu_audit.numerics.exact_values import BINADE_FLOOR, ReferenceValues


def test_approximate_is_ldexp_bit_for_bit_in_the_underflowed_tail_too() -> None:
    """The underflowed binades skip ldexp's slow underflow path; the bits must be ldexp's:
    signed zeros, infinities and NaN payloads kept, at and around the cut (binade -2200),
    the floor, the subnormal edge, overflow, and mantissas far from [1, 2)."""
    rng = np.random.default_rng(0)
    edges = [-2201, -2200, -2199, -1075, -1074, -1022, 1023, 1024, BINADE_FLOOR]
    binade = np.concatenate(
        [
            rng.integers(-5000, 5000, 50_000),
            rng.integers(-2300, -2100, 50_000),
            np.repeat(edges, 200),
        ]
    ).astype(np.int64)
    n = len(binade)
    hi = rng.choice([1.0, -1.0, 1.5, -1.9999999, 0.0, -0.0, np.inf, -np.inf, np.nan, 2.0, -2.0], n)
    hi *= np.where(rng.random(n) < 0.1, 1e300, 1.0)
    lo = rng.choice([0.0, -0.0, 1e-17, -3e-18, np.nan], n, p=[0.5, 0.2, 0.1, 0.1, 0.1])

    def same_as_ldexp(where: np.ndarray | slice) -> bool:
        b, h, low = binade[where], hi[where], lo[where]
        got = ReferenceValues(b, h, low, np.zeros(len(b))).approximate()
        with np.errstate(over="ignore", under="ignore"):
            expected = np.ldexp(h + low, np.clip(b, -4000, 4000).astype(np.int32))
        return got.shape == expected.shape and np.array_equal(got.view(np.int64), expected.view(np.int64))

    tail = binade < -2200
    assert tail.any() and not tail.all()
    assert same_as_ldexp(slice(None))  # mixed: both branches in one block
    assert same_as_ldexp(tail)  # all in the tail: no ldexp at all
    assert same_as_ldexp(~tail)  # none in the tail: ldexp alone
    assert same_as_ldexp(slice(0, 0))  # empty
    all_tail = ReferenceValues(binade[tail], hi[tail], lo[tail], np.zeros(int(tail.sum()))).approximate()
    assert np.signbit(all_tail[(hi[tail] < 0) & (lo[tail] == 0)]).all()  # the tail's -0 stays -0
