"""Float formats: names, bit patterns, ordinals, ULPs and exact round-to-nearest-even.

Every value of fp16, bf16 and fp32 is exactly representable in float64, so arrays of audited
values are carried as float64 and the bit patterns of the audited format are derived from them
exactly. Rounding a high-precision (mpmath) value to a format is done with integer arithmetic on
its mantissa and exponent, never through a wider float, so there is no double rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gelu_audit.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import mpmath


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754-style binary format with gradual underflow."""

    name: str
    """Canonical short name used in reports: fp64, fp32, fp16, bf16."""
    precision: int
    """p: significand bits, the hidden bit included."""
    emin: int
    """Exponent of the smallest normal number."""
    emax: int
    """Exponent of the largest finite number."""
    width: int
    """Storage width in bits."""
    torch_dtype: str
    """Name of the matching ``torch`` dtype attribute."""

    @property
    def mantissa_bits(self) -> int:
        """Stored fraction bits (precision minus the hidden bit)."""
        return self.precision - 1

    @property
    def exponent_bias(self) -> int:
        return 1 - self.emin

    @property
    def sign_mask(self) -> int:
        return 1 << (self.width - 1)

    @property
    def uint_dtype(self) -> np.dtype:
        return np.dtype(f"uint{self.width}")

    @property
    def smallest_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def smallest_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def largest_finite(self) -> float:
        return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.precision), self.emax)

    @property
    def pattern_count(self) -> int:
        return 1 << self.width

    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype that holds this format (ml_dtypes' bfloat16 for bf16)."""
        if self.name == "bf16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype({"fp16": "float16", "fp32": "float32", "fp64": "float64"}[self.name])

    def __str__(self) -> str:
        return self.name


FP64 = FloatFormat("fp64", 53, -1022, 1023, 64, "float64")
FP32 = FloatFormat("fp32", 24, -126, 127, 32, "float32")
FP16 = FloatFormat("fp16", 11, -14, 15, 16, "float16")
BF16 = FloatFormat("bf16", 8, -126, 127, 16, "bfloat16")

FORMATS: dict[str, FloatFormat] = {f.name: f for f in (FP16, BF16, FP32, FP64)}
"""The supported formats in report order (narrow to wide)."""

ALIASES: dict[str, str] = {
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "f32": "fp32",
    "single": "fp32",
    "fp64": "fp64",
    "float64": "fp64",
    "double": "fp64",
    "f64": "fp64",
}


def parse_format(text: str) -> FloatFormat:
    """Return the format a user typed (``half``, ``bfloat16``, ``torch.float32``…)."""
    key = text.strip().lower().removeprefix("torch.").removeprefix("np.")
    if key not in ALIASES:
        raise UsageError(
            f"unknown dtype {text!r}; choose one of: fp16 (half, float16, f16), "
            "bf16 (bfloat16), fp32 (float, float32, f32), fp64 (double, float64, f64)"
        )
    return FORMATS[ALIASES[key]]


# --- bit patterns ---------------------------------------------------------------------------


def format_of_array(array: np.ndarray) -> FloatFormat:
    """The audited format whose NumPy dtype ``array`` has (bf16 is ml_dtypes.bfloat16)."""
    for fmt in FORMATS.values():
        if fmt.numpy_dtype() == array.dtype:
            return fmt
    raise TypeError(f"no audited format has dtype {array.dtype}")


def all_patterns(fmt: FloatFormat) -> np.ndarray:
    """Every bit pattern of a 16-bit format, in ascending pattern order."""
    if fmt.width != 16:
        raise ValueError(f"{fmt} has 2^{fmt.width} patterns; enumerate it in chunks instead")
    return np.arange(1 << 16, dtype=np.uint16)


def patterns_to_values(fmt: FloatFormat, patterns: np.ndarray) -> np.ndarray:
    """Decode bit patterns to float64 values (exact for every format)."""
    patterns = np.asarray(patterns).astype(fmt.uint_dtype, copy=False)
    with np.errstate(invalid="ignore"):  # signalling-NaN patterns warn when widened
        return _decode(fmt, patterns)


def _decode(fmt: FloatFormat, patterns: np.ndarray) -> np.ndarray:
    if fmt is FP16:
        return patterns.view(np.float16).astype(np.float64)
    if fmt is BF16:
        return (patterns.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if fmt is FP32:
        return patterns.view(np.float32).astype(np.float64)
    return patterns.view(np.float64).copy()


class BlockInputs:
    """The inputs of a block or a chunk of an audit: as the format's bit patterns, as float64
    values (``x``) and as int64 indices (their patterns, for the stream), each made on first use
    from what was given.

    A chunk of the exhaustive stream is given as its patterns alone. Where it is known
    throughout (``audits.known_blocks``: seven eighths of fp32) its statistics need a few of its
    values, not all of them, and decoding 2^20 values and widening 2^20 indices took about 3 ms
    a chunk, a tenth of a one-kernel audit (2026-11-30)."""

    def __init__(
        self,
        fmt: FloatFormat,
        *,
        patterns: np.ndarray | None = None,
        x: np.ndarray | None = None,
        index: np.ndarray | None = None,
    ) -> None:
        """Either ``patterns`` (unsigned, the format's width) or both ``x`` and ``index``."""
        if patterns is None and (x is None or index is None):
            raise ValueError("inputs are given by their patterns, or by their values and indices")
        self.fmt = fmt
        self._patterns, self._x, self._index = patterns, x, index
        given = patterns if patterns is not None else x
        assert given is not None
        self._length = len(given)

    def __len__(self) -> int:
        return self._length

    @property
    def x(self) -> np.ndarray:
        """The inputs as float64 values (decoded from the patterns on first use)."""
        if self._x is None:
            assert self._patterns is not None
            self._x = patterns_to_values(self.fmt, self._patterns)
        return self._x

    @property
    def index(self) -> np.ndarray:
        """The inputs' int64 indices (where given by patterns: the patterns themselves)."""
        if self._index is None:
            assert self._patterns is not None
            self._index = self._patterns.astype(np.int64)
        return self._index

    @property
    def patterns(self) -> np.ndarray | None:
        """The format's bit patterns, where the inputs were given by them."""
        return self._patterns

    def values_at(self, positions: np.ndarray | list[int]) -> np.ndarray:
        """The values at these positions, decoding those alone until ``x`` is made."""
        if self._x is not None or self._patterns is None:
            return self.x[positions]
        return patterns_to_values(self.fmt, self._patterns[positions])

    def indices_at(self, positions: np.ndarray | list[int]) -> np.ndarray:
        """The indices at these positions, widening those alone until ``index`` is made."""
        if self._index is not None or self._patterns is None:
            return self.index[positions]
        return self._patterns[positions].astype(np.int64)

    def index_at(self, position: int) -> int:
        """One input's index."""
        if self._index is not None or self._patterns is None:
            return int(self.index[position])
        return int(self._patterns[position])

    def cut(self, part: slice) -> BlockInputs:
        """The inputs in ``part``, sharing whatever is made so far (views)."""
        return BlockInputs(
            self.fmt,
            patterns=None if self._patterns is None else self._patterns[part],
            x=None if self._x is None else self._x[part],
            index=None if self._index is None else self._index[part],
        )


def values_to_patterns(fmt: FloatFormat, values: np.ndarray) -> np.ndarray:
    """Encode float64 values that are representable in ``fmt`` to its bit patterns.

    NaNs keep their payload only as far as the float64→format conversion does; values not
    representable in ``fmt`` are rounded by the hardware conversion, so callers must pass
    values already in the format (outputs of the implementation under audit are).
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return _encode(fmt, values)


def _encode(fmt: FloatFormat, values: np.ndarray) -> np.ndarray:
    if fmt is FP16:
        return values.astype(np.float16).view(np.uint16)
    if fmt is BF16:
        as32 = values.astype(np.float32).view(np.uint32)
        return (as32 >> 16).astype(np.uint16)
    if fmt is FP32:
        return values.astype(np.float32).view(np.uint32)
    return values.view(np.uint64).copy()


def ordinals(fmt: FloatFormat, values: np.ndarray) -> np.ndarray:
    """Map values to integers that count representable numbers: consecutive floats differ by 1.

    +0 and -0 both map to 0, so the distance between two zeros is 0. NaNs map to an arbitrary
    integer; callers mask them out.
    """
    patterns = values_to_patterns(fmt, values).astype(np.uint64)
    magnitude = (patterns & np.uint64(fmt.sign_mask - 1)).astype(np.int64)
    negative = (patterns & np.uint64(fmt.sign_mask)) != 0
    return np.where(negative, -magnitude, magnitude)


def hex_pattern(fmt: FloatFormat, value: float) -> str:
    """The bit pattern of one value as ``0x…`` with the format's width in hex digits."""
    pattern = int(values_to_patterns(fmt, np.array([value]))[0])
    return f"0x{pattern:0{fmt.width // 4}x}"


# --- ulp and rounding -----------------------------------------------------------------------


def ulp_exponent(fmt: FloatFormat, binade: np.ndarray | int) -> np.ndarray | int:
    """log2 of ulp_T(y) for an exact value whose binade is ``floor(log2|y|)``.

    ulp_T(y) = 2^(max(floor(log2|y|), emin) - p + 1): the spacing of ``fmt`` in the exact
    value's binade, with gradual underflow. For y = 0 pass any binade below emin.
    """
    return np.maximum(binade, fmt.emin) - fmt.precision + 1


def round_mpf(fmt: FloatFormat, y: mpmath.mpf) -> float:
    """Round an mpmath number to ``fmt``, nearest-even, gradual underflow, overflow to ±inf.

    The rounding uses the exact mantissa and exponent of ``y``: no intermediate float, hence no
    double rounding. The result is returned as a Python float, which holds every value of
    every supported format exactly.
    """
    import mpmath

    if mpmath.isnan(y):
        return math.nan
    if mpmath.isinf(y):
        return math.inf if y > 0 else -math.inf
    sign, man, exp, bc = y._mpf_
    if man == 0:
        return -0.0 if sign else 0.0
    man = int(man)
    binade = exp + bc - 1
    quantum = max(binade, fmt.emin) - fmt.precision + 1
    if exp >= quantum:
        scaled = man << (exp - quantum)
    elif quantum - exp > bc + 1:
        scaled = 0  # |y| < 2^(quantum-1), half the spacing: rounds to zero (no huge masks)
    else:
        shift = quantum - exp
        scaled = man >> shift
        remainder = man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if remainder > half or (remainder == half and scaled & 1):
            scaled += 1
    if scaled.bit_length() + quantum - 1 > fmt.emax:
        magnitude = math.inf  # at or past 2^(emax+1) after rounding: overflow
    else:
        magnitude = math.ldexp(float(scaled), quantum)
    return -magnitude if sign else magnitude
