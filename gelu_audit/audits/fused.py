"""The fp32 block fold in one compiled loop, where the install built it (``_fold.c``).

An exhaustive fp32 audit spends most of a kernel's time in ``ErrorAccumulator.fold_block``:
in the core most answers differ from RN_T(y), and NumPy runs the fold's arithmetic as some
fifty passes over each 32K block (docs/speed.md, "what fusing the comparison would buy").
``_fold.c`` does the same per-point arithmetic in one pass, with the same double operations,
and hands back what depends on order (each differing point's error and residual, for NumPy's
pairwise sums; the error array, for the worst inputs), so the statistics are the NumPy path's
bit for bit (tests/audits/test_fused_fold.py).

The same library makes two other passes of the statistics: a block's residuals
(:func:`rounded_residuals`, RN_T(y)'s own ULP errors) and a known tiny span's errors against y
as float64 (:func:`tiny_float64_errors`), each NumPy's values bit for bit, each declining what
it does not cover.

The loop is a C extension that ``pip install`` compiles where a C compiler is at hand
(pyproject.toml: optional, so an install without one still succeeds). Without it, or with
``GELU_AUDIT_FUSED_FOLD=0`` in the environment, every block takes the NumPy path: the same
numbers, more slowly. It is loaded with ctypes: plain C, no Python API.

May import: numpy, gelu_audit.numerics, gelu_audit.audits.policies.
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gelu_audit.audits.policies import Combine, Tolerance
from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FP32, FloatFormat
from gelu_audit.numerics.formulas import Derivative, Function
from gelu_audit.numerics.native import address, load_library
from gelu_audit.numerics.ulp import HISTOGRAM_LABELS

SWITCH_VARIABLE = "GELU_AUDIT_FUSED_FOLD"
"""Set to 0 to fold every block in NumPy (the same numbers; for comparisons and debugging)."""

_COMBINE_CODES = {Combine.SUM: 0, Combine.MAX: 1, Combine.SWITCH: 2}
_TINY_FORMULA, _TINY_DERIVATIVE = 0, 1
"""``tiny_float64_errors``' kinds of reference: a formula's region ``tiny``, its derivative's."""
_ABI_VERSION = 8
"""``fold_abi_version()`` of the ``_fold.c`` this module calls: its parameters, in order."""


@functools.cache
def library() -> ctypes.CDLL | None:
    """The compiled loop, or None: not built with this install, built from another source (its
    parameters may differ), or switched off."""
    loaded = load_library("gelu_audit.audits._fold", "fold_abi_version", _ABI_VERSION, SWITCH_VARIABLE)
    return None if loaded is None else declared(loaded)


def declared(loaded: ctypes.CDLL) -> ctypes.CDLL:
    """``loaded`` (a build of ``_fold.c``) with its functions' parameters declared for ctypes."""
    function = loaded.fold_fp32_block
    i64, f64, array = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
    function.restype = i64
    function.argtypes = [
        i64, array, array, array, array, array, array, array, i64, i64, f64, i64, i64, array,
        array, array, array, array, array, i64, array, array, array, array, array,
    ]  # fmt: skip
    function = loaded.tiny_float64_errors
    function.restype = i64
    function.argtypes = [i64, array, i64, f64, f64, i64, i64, array, array, array, array]
    function = loaded.rounded_residuals
    function.restype = i64
    function.argtypes = [i64, array, array, array, array, i64, i64, array]
    return loaded


def _counts_address(counts: np.ndarray, bins: int) -> int:
    """The accumulator's counts, which the loop adds to in place: contiguous int64, writable
    (a read-only array is refused, as ``+=`` would refuse it) and holding every bin."""
    if not counts.flags.writeable:
        raise ValueError("the fused fold adds to writable counts only")
    return address(counts, np.int64, bins)


@functools.cache
def _rule_parameters(rules: tuple[Tolerance, ...]) -> tuple[np.ndarray, int]:
    """The rules as the loop reads them: six doubles each (combine, has_below, rtol, atol,
    switch, below), and where they are (kept alive by this cache)."""
    parameters = np.zeros(6 * len(rules))
    for k, rule in enumerate(rules):
        below = rule.absolute_below
        parameters[6 * k : 6 * k + 6] = (
            _COMBINE_CODES[rule.combine],
            below is not None,
            rule.rtol,
            rule.atol,
            rule.switch,
            0.0 if below is None else below,
        )
    parameters.flags.writeable = False
    return parameters, address(parameters, np.float64, len(parameters))


def covers(fmt: FloatFormat, rules: Sequence[Tolerance]) -> bool:
    """Whether the loop can fold blocks of ``fmt`` under these rules, before looking at a
    block's values: fp32, and rules the loop follows (:func:`follows`)."""
    return fmt is FP32 and follows(rules)


def follows(rules: Sequence[Tolerance]) -> bool:
    """Whether the library is here and follows these rules: rules against y whose allowance is
    +0 or more (rtol and atol not below +0: an allowance of −0 makes NumPy's ratios −inf,
    which the loop does not follow)."""
    return library() is not None and all(
        not rule.rounded_reference and _plus(rule.rtol) and _plus(rule.atol) for rule in rules
    )


def _plus(value: float) -> bool:
    """``value`` is +0 or above (not −0, not NaN)."""
    return value >= 0 and math.copysign(1.0, value) > 0


SCALARS, INTEGERS = 8, 7
"""How many doubles and 64-bit integers ``fold_fp32_block`` reduces to, besides its rules'."""

TOP_HELD = 64
"""The most worst inputs a block keeps for which the loop finds their threshold itself (the
block's top-th largest error); above that, NumPy's partition does (``_fold.c``'s ``TOP_HELD``)."""


@dataclass(frozen=True)
class BlockArrays:
    """A block's reference arrays as the loop reads them, with where they are: made once per
    block and shared by every answer folded against it (NumPy takes about a microsecond and a
    half to say where an array is, and a call needs seven). The addresses hold in the process
    that made them: blocks are made and folded in one process (a stream's worker) and never
    pickled; a copied block would need its own."""

    arrays: tuple[np.ndarray, ...]
    """x, the binades, both mantissa words, RN_T(y) and the residuals (kept alive for the addresses)."""
    addresses: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.arrays[0])

    @staticmethod
    def of(x: np.ndarray, ref: ReferenceValues, residual: np.ndarray) -> BlockArrays:
        f64, i64 = np.float64, np.int64
        pairs = ((x, f64), (ref.binade, i64), (ref.mant_hi, f64), (ref.mant_lo, f64), (ref.rounded, f64))
        return BlockArrays(*_held([*pairs, (residual, f64)], len(x)))


def _held(pairs: Sequence[tuple[np.ndarray, type]], n: int) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    """Each array as a contiguous one of its dtype, and where it is (``n`` items or more): the
    caller keeps the arrays alive for as long as it uses the addresses."""
    arrays: tuple[np.ndarray, ...] = tuple(np.ascontiguousarray(values, dtype) for values, dtype in pairs)
    return arrays, tuple(address(values, values.dtype.type, n) for values in arrays)


@dataclass(frozen=True)
class FusedFold:
    """One block folded by the loop: what ``fold_block`` computes point by point, reduced."""

    errors: np.ndarray
    """Each point's ULP error (all finite)."""
    distances: np.ndarray
    """Each point's ordinal distance from RN_T(y)."""
    residual_at: np.ndarray
    """The residuals where the answer differs from RN_T(y), in order."""
    errors_at: np.ndarray
    """The errors there, in order."""
    max_error: float
    first_max_error: int
    """The first position of the largest error."""
    max_abs: float
    max_rel: float
    any_normal: bool
    wrong: int
    """Answers other than RN_T(y) (ordinal distance above 0)."""
    max_ordinal: int
    over: int
    """Errors above the tolerance."""
    failure_below: float | None
    failure_above: float | None
    normal_failure_below: float | None
    normal_failure_above: float | None
    """The failing x nearest 0 among the points where neither x nor RN_T(y) is subnormal."""
    subnormal_inputs: int
    subnormal_results: int
    """RN_T(y) subnormal where x is not (``stats._subnormal_masks``; no answer is 0 here, so
    none of these was flushed)."""
    rule_ratios: list[float]
    rule_breaks: list[int]
    rule_first_max: list[int]
    top_threshold: float | None
    """The block's top-th largest error counting repeats (``np.partition``'s, the threshold of
    its worst inputs); None where the loop did not look for it (top 0 or above
    :data:`TOP_HELD`, or fewer points than top)."""


def fold_fp32_block(
    block: BlockArrays,
    got: np.ndarray,
    tolerance: float,
    top: int,
    rules: Sequence[Tolerance],
    sketch: np.ndarray,
    sketch_shift: int,
    histogram: np.ndarray,
) -> FusedFold | None:
    """Fold one fp32 block with the loop; None where the block is not one it covers (a value
    not finite, a zero answer, a zero input or RN_T(y)): nothing is counted then.
    ``sketch`` and ``histogram`` are the accumulator's counts, added to in place."""
    loaded = library()
    assert loaded is not None, "covers() first"
    n = len(block)
    if len(got) != n:
        raise ValueError(f"the fused fold needs one answer for each of the block's {n} points")
    got = np.ascontiguousarray(got, np.float64)
    _, parameters = _rule_parameters(tuple(rules))
    k = len(rules)
    # the per-point outputs in one array and the reductions in another: two addresses, not eight
    outputs, reduced = np.empty((4, n)), np.empty(SCALARS + INTEGERS + 3 * k)
    errors, distances, residual_at, errors_at = outputs[0], outputs[1].view(np.int64), outputs[2], outputs[3]
    rules_at = SCALARS + INTEGERS
    scalars, integers = reduced[:SCALARS], reduced[SCALARS:rules_at].view(np.int64)
    rule_ratio, rule_counts = reduced[rules_at : rules_at + k], reduced[rules_at + k :].view(np.int64)
    at, into, double = (
        address(outputs.reshape(-1), np.float64, 4 * n),
        address(reduced, np.float64, rules_at + 3 * k),
        8,
    )
    m = loaded.fold_fp32_block(
        n,
        address(got, np.float64, n),
        *block.addresses,
        FP32.precision,
        FP32.emin,
        tolerance,
        top,
        k,
        parameters,
        at,  # errors, then the distances, residual_at and errors_at: n each
        at + n * double,
        at + 2 * n * double,
        at + 3 * n * double,
        _counts_address(sketch, (0x7FFFFFFF >> sketch_shift) + 1),  # every non-negative float32
        sketch_shift,
        _counts_address(histogram, len(HISTOGRAM_LABELS)),  # the loop's bins (no excluded one)
        into,  # the scalars, the integers, then each rule's ratio and its two counts
        into + SCALARS * double,
        into + rules_at * double,
        into + (rules_at + k) * double,
    )
    if m < 0:
        return None
    below, above, threshold = float(scalars[3]), float(scalars[4]), float(scalars[5])
    normal_below, normal_above = float(scalars[6]), float(scalars[7])
    return FusedFold(
        errors,
        distances,
        residual_at[:m],
        errors_at[:m],
        float(scalars[0]),
        int(integers[0]),
        float(scalars[1]),
        float(scalars[2]),
        bool(integers[3]),
        int(integers[1]),
        int(integers[2]),
        int(integers[4]),
        None if math.isnan(below) else below,
        None if math.isnan(above) else above,
        None if math.isnan(normal_below) else normal_below,
        None if math.isnan(normal_above) else normal_above,
        int(integers[5]),
        int(integers[6]),
        rule_ratio.tolist(),
        rule_counts[0::2].tolist(),
        rule_counts[1::2].tolist(),
        None if math.isnan(threshold) else threshold,
    )


@dataclass(frozen=True)
class Float64Errors:
    """The statistics against y as float64 of answers that are RN_T(y) throughout."""

    max_abs: float
    max_rel: float
    rule_ratios: list[float]
    """Each rule's largest ratio error / allowance."""
    rule_breaks: list[int]
    rule_first_max: list[int]
    """The first position of each rule's largest ratio."""


def tiny_float64_errors(
    fmt: FloatFormat, function: Function, x: np.ndarray, rules: Sequence[Tolerance]
) -> Float64Errors | None:
    """For inputs that all lie in the fast tier's region ``tiny`` of ``function`` (for a
    formula, every |x/2| a normal number of T), answered with RN_T(y) at every point: the
    largest absolute and relative errors against y as float64, and each rule's largest ratio,
    breaks and its first position, as NumPy's passes over the tier's references give them
    (``ReferenceValues.approximate``, ``policies.violation_ratios``; known_blocks' tiny spans).
    The loop makes the region's references itself, from the tier's closed form (``_fold.c``
    says which), so no reference array is made. None where a y as float64 is not finite or is
    below T's smallest normal, or an x/2 is not a normal double (the caller's NumPy passes
    then decide). ``follows(rules)`` first; the caller vouches for the region."""
    loaded = library()
    assert loaded is not None, "follows() first"
    if isinstance(function, Derivative):
        c2 = 2 * function.of.series_coefficient
        kind, k1, k2 = _TINY_DERIVATIVE, 4 * c2, 2 * c2  # (as fast_gradient._tiny multiplies)
    else:
        kind, k1, k2 = _TINY_FORMULA, function.series_coefficient, 0.0
    values = np.ascontiguousarray(x, np.float64)
    n = len(values)
    _, parameters = _rule_parameters(tuple(rules))
    scalars, rule_ratio, rule_counts = np.empty(2), np.empty(len(rules)), np.empty(2 * len(rules), np.int64)
    status = loaded.tiny_float64_errors(
        n,
        address(values, np.float64, n),
        kind,
        k1,
        k2,
        fmt.emin,
        len(rules),
        parameters,
        address(scalars, np.float64, 2),
        address(rule_ratio, np.float64, len(rules)),
        address(rule_counts, np.int64, 2 * len(rules)),
    )
    if status < 0:
        return None
    return Float64Errors(
        float(scalars[0]),
        float(scalars[1]),
        rule_ratio.tolist(),
        rule_counts[0::2].tolist(),
        rule_counts[1::2].tolist(),
    )


def rounded_residuals(fmt: FloatFormat, ref: ReferenceValues) -> np.ndarray | None:
    """RN_T(y)'s ULP errors (a block's residuals, ``ReferenceBlock.build``), as NumPy's
    ``ulp_errors`` gives them, in one pass; None where a reference is not finite or is zero, or
    a binade is outside the range whose ulp scales by building a power of two (NumPy then
    computes them). Format-generic; 10 ms of NumPy a 2^20 chunk, 2026-11-30."""
    loaded = library()
    if loaded is None:
        return None
    n = len(ref.rounded)
    pairs = (
        (ref.rounded, np.float64),
        (ref.binade, np.int64),
        (ref.mant_hi, np.float64),
        (ref.mant_lo, np.float64),
    )
    _alive, addresses = _held(pairs, n)  # (the arrays stay alive through the call)
    residual = np.empty(n)
    status = loaded.rounded_residuals(
        n,
        *addresses,
        fmt.precision,
        fmt.emin,
        address(residual, np.float64, n),
    )
    return None if status < 0 else residual
