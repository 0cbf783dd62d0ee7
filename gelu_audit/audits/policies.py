"""Tolerance policies: the field's own tests, applied to every input.

Users know ``torch.testing.assert_close``, not ULPs. A policy is the accept rule a peer's test
suite applies to a GELU kernel, ``|ŷ − y| ≤ allowed(|y|)`` per dtype, with its source. The
audit evaluates every policy at every tested input, against the formula the implementation
claims (as a peer's test compares a kernel with a reference of its own formula) and against
the exact GELU, and keeps for each the number of inputs that break it and the worst one (the
largest ratio of error to allowance). A non-finite mismatch (NaN for GELU(−∞) = −0, say) is
never close, as in assert_close: it is counted apart, and a policy *passes* when no finite
answer breaks it; non-finite mismatches are gated by ``max-nonfinite``, as everywhere else
(``--policy``, like ``--max-ulp``, allows none). A threshold with ``policy = NAME`` (``--policy NAME``)
gates on it; one with ``rtol``/``atol`` is a policy of its own (the mixed rule of
``assert_close``).

Peers' tests sample only part of the range, so a kernel that passes them everywhere they look
can still break them elsewhere; ``tested_inputs`` says where each one looks.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gelu_audit.errors import UsageError


class Combine(enum.Enum):
    """How a rule combines its absolute and relative parts."""

    SUM = "sum"
    """``atol + rtol·|y|`` (torch.testing.assert_close, numpy.isclose)."""
    MAX = "max"
    """``max(atol, rtol·|y|)``: whichever is looser."""
    SWITCH = "switch"
    """``rtol·|y|`` where ``|y| > switch``, else ``atol``: relative away from 0, absolute near it."""


@dataclass(frozen=True)
class Tolerance:
    """One accept rule: ``|ŷ − y| ≤ allowed(|y|)``."""

    rtol: float
    atol: float
    combine: Combine = Combine.SUM
    switch: float = 0.0
    """Where a SWITCH rule turns from absolute to relative."""
    absolute_below: float | None = None
    """Below this x, ``atol`` is accepted whatever the rule says (benchdnn's allowance where
    1 + erf cancels)."""
    rounded_reference: bool = False
    """Compare with RN_T(y), as a suite whose reference is stored in the output dtype does;
    otherwise with the exact y."""

    @property
    def allows_some_error_everywhere(self) -> bool:
        """Whether :meth:`allowed` is above 0 at every |y| ≥ 0 and x, by its parameters alone:
        then an error of 0 has a ratio of exactly 0 without being set so point by point. The
        absolute part is a floor of SUM and MAX; SWITCH's relative part, where |y| > switch, is
        at least rtol·switch as float64 rounds it (monotone), so that product must not be 0."""
        if not self.atol > 0:
            return False
        return self.combine is not Combine.SWITCH or self.rtol * self.switch > 0

    def allowed(self, magnitude: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The largest error accepted at each |y| (and x)."""
        if self.combine is Combine.SUM:
            allowed = self.atol + self.rtol * magnitude
        elif self.combine is Combine.MAX:
            allowed = np.maximum(self.atol, self.rtol * magnitude)
        else:
            allowed = np.where(magnitude > self.switch, self.rtol * magnitude, self.atol)
        if self.absolute_below is not None:
            allowed = np.where(x <= self.absolute_below, np.maximum(allowed, self.atol), allowed)
        return allowed

    def describe(self) -> str:
        y = "RN(y)" if self.rounded_reference else "y"
        if self.combine is Combine.SUM:
            text = f"|ŷ−{y}| ≤ {self.atol:.3g} + {self.rtol:.3g}·|{y}|"
        elif self.combine is Combine.MAX:
            text = f"|ŷ−{y}| ≤ max({self.atol:.3g}, {self.rtol:.3g}·|{y}|)"
        else:
            text = f"|ŷ−{y}| ≤ {self.rtol:.3g}·|{y}| where |{y}| > {self.switch:.3g}, else ≤ {self.atol:.3g}"
        if self.absolute_below is not None:
            text += f"; ≤ {self.atol:.3g} for x ≤ {self.absolute_below:.4g}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "rtol": self.rtol,
            "atol": self.atol,
            "combine": self.combine.value,
            "switch": self.switch,
            "absolute_below": self.absolute_below,
            "rounded_reference": self.rounded_reference,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Tolerance:
        below = data["absolute_below"]
        return Tolerance(
            float(data["rtol"]),
            float(data["atol"]),
            Combine(data["combine"]),
            float(data["switch"]),
            None if below is None else float(below),
            bool(data["rounded_reference"]),
        )


@dataclass(frozen=True)
class Policy:
    """A named accept rule, per dtype (and per formula where the source distinguishes them)."""

    name: str
    source: str
    """Where the rule comes from (file and project), for the docs and the report."""
    tested_inputs: str
    """Where the peer's own test looks: the part of the range it samples."""
    rules: dict[str, Tolerance] = field(default_factory=dict)
    """Keyed by ``dtype`` or ``dtype/formula`` (the latter first); a dtype without a rule is
    not judged by this policy."""

    def rule(self, dtype: str, formula: str) -> Tolerance | None:
        return self.rules.get(f"{dtype}/{formula}") or self.rules.get(dtype)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "tested_inputs": self.tested_inputs,
            "rules": {key: rule.to_json() for key, rule in self.rules.items()},
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Policy:
        rules = {str(k): Tolerance.from_json(v) for k, v in data["rules"].items()}
        return Policy(str(data["name"]), str(data["source"]), str(data["tested_inputs"]), rules)


def mixed_policy(rtol: float, atol: float) -> Policy:
    """A threshold's own ``rtol``/``atol``: assert_close's rule with those numbers, every dtype."""
    rule = Tolerance(rtol, atol)
    return Policy(
        f"rtol={rtol:g},atol={atol:g}",
        "a threshold in the configuration",
        "every input of the audit",
        dict.fromkeys(("fp16", "bf16", "fp32", "fp64"), rule),
    )


TORCH_ASSERT_CLOSE = Policy(
    "torch-assert-close",
    "torch.testing.assert_close defaults, _DTYPE_PRECISIONS in torch/testing/_comparison.py",
    "what the test passes; PyTorch's OpInfo tests draw make_tensor inputs, uniform in [-9, 9] for "
    "floating dtypes",
    {
        "fp16": Tolerance(1e-3, 1e-5),
        "bf16": Tolerance(1.6e-2, 1e-5),
        "fp32": Tolerance(1.3e-6, 1e-5),
        "fp64": Tolerance(1e-7, 1e-7),
    },
)

FLT_EPSILON = 2.0**-23
_EPSILON = {"fp32": FLT_EPSILON, "fp16": 2.0**-10, "bf16": 2.0**-7}


def _cancellation_cutoff(trh: float, formula: str) -> float:
    """The x below which benchdnn accepts an absolute error of ``trh``: where |1 + erf(x/√2)|
    (or 1 + tanh(√(2/π)(x + 0.044715x³))) is at most 2·FLT_EPSILON/trh."""
    limit = 2 * FLT_EPSILON / trh

    def one_plus(x: float) -> float:
        if formula == "tanh":
            return 1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))
        return 1 + math.erf(x / math.sqrt(2))

    lo, hi = -30.0, 0.0  # one_plus rises from 0 to 1 on [-30, 0]: bisect for one_plus = limit
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if one_plus(mid) <= limit else (lo, mid)
    return lo


def _benchdnn_rule(trh: float, formula: str, rounded: bool) -> Tolerance:
    return Tolerance(trh, trh, Combine.SWITCH, 1e-5, _cancellation_cutoff(trh, formula), rounded)


BENCHDNN = Policy(
    "benchdnn",
    "oneDNN benchdnn eltwise: get_eltwise_threshold and check_abs_err in tests/benchdnn/eltwise/"
    "eltwise.cpp, the relative/absolute switch at |ref| = 1e-5 in tests/benchdnn/utils/compare.cpp",
    "13 cycling patterns: integers 0…±10, ±[0, 0.09), ±[0, 0.9), ±{0, 10, …, 100}, [22, 22.9), "
    "[44, 44.9), [88, 88.9); uniform in [-16, 16] in bitwise mode",
    {
        "fp32/erf": _benchdnn_rule(4e-6, "erf", False),
        "fp32/tanh": _benchdnn_rule(4e-5, "tanh", False),
        "fp64/erf": _benchdnn_rule(4e-6, "erf", False),
        "fp64/tanh": _benchdnn_rule(4e-5, "tanh", False),
        "bf16/erf": _benchdnn_rule(2.0**-7, "erf", True),
        "bf16/tanh": _benchdnn_rule(2.0**-7, "tanh", True),
        "fp16/erf": _benchdnn_rule(2.0**-10, "erf", True),
        "fp16/tanh": _benchdnn_rule(2.0**-10, "tanh", True),
    },
)

XNNPACK = Policy(
    "xnnpack",
    "XNNPACK TolMixed in test/unary-ops.h (GELU and ApproxGELU): max(10 ε, 5 ε·|ref|), ε of the "
    "output type; the reference is computed in float and stored in the output type",
    "uniform in [-10, 10]; f32 also {-6, 0, 6} exactly",
    {
        dtype: Tolerance(5 * eps, 10 * eps, Combine.MAX, rounded_reference=dtype != "fp32")
        for dtype, eps in _EPSILON.items()
    },
)

BUILTIN_POLICIES: tuple[Policy, ...] = (TORCH_ASSERT_CLOSE, BENCHDNN, XNNPACK)
"""Evaluated in every audit; ``--policy`` names one of them."""


def policy_named(name: str) -> Policy:
    for policy in BUILTIN_POLICIES:
        if policy.name == name:
            return policy
    known = ", ".join(p.name for p in BUILTIN_POLICIES)
    raise UsageError(f"unknown policy {name!r} (known: {known})")


def violation_ratios(
    rule: Tolerance, abs_error: np.ndarray, magnitude: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """|ŷ − y| / allowed(|y|) per point (finite answers; pass 0 elsewhere): > 1 breaks the rule.

    Where no point has an error (RN_T(y) is y as float64 throughout: most of the tiny region),
    the ratios are all 0 without computing an allowance."""
    if not abs_error.any():
        return np.zeros(len(abs_error))
    allowed = rule.allowed(magnitude, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = abs_error / allowed  # an allowance of 0: inf, or NaN where the error is 0 too
    if not rule.allows_some_error_everywhere:  # (else 0 / allowance is 0 already)
        ratio[abs_error == 0] = 0.0
    return ratio
