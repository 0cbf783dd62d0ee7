"""Per-case accuracy limits: the ``--max-ulp`` gate and a team's policy in the configuration.

One type, one evaluation: ``--max-ulp N`` is the :meth:`Threshold.gate` on every case (with no
non-finite mismatch allowed), and each configured table is a Threshold too.

Each ``[[tool.gelu-audit.threshold]]`` table selects cases by implementation, dtype and
device (shell-style patterns, ``*`` by default) and pass (``forward``, ``backward``, or ``*``:
both, by default) and sets limits on them. Every matching table
applies, so a broad rule and a stricter one for a single kernel can live side by side::

    [[tool.gelu-audit.threshold]]
    dtype = "fp16"
    max-ulp = 4

    [[tool.gelu-audit.threshold]]
    implementation = "mykernels.gelu:fast_gelu"
    dtype = "bf16"
    max-ulp = 2
    against = "formula"
    domain = [-8, 8]      # the accurate domain must cover [-8, 8]

    [[tool.gelu-audit.threshold]]
    dtype = "fp32"
    max-ulp-outside-flush = 4   # 4 ULP wherever the answer is not flushed to ±0
    max-flush-below = -5.5      # and flushing only at x ≤ -5.5

    [[tool.gelu-audit.threshold]]
    dtype = "fp32"
    policy = "torch-assert-close"   # no input may break torch.testing.assert_close's defaults

    [[tool.gelu-audit.threshold]]
    rtol = 1e-5           # |ŷ − y| ≤ atol + rtol·|y| at every input (a policy of its own)
    atol = 1e-6
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gelu_audit.audits.policies import Policy, mixed_policy, policy_named
from gelu_audit.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from gelu_audit.audits.accuracy import CaseResult
    from gelu_audit.audits.stats import PolicyOutcome

_KEYS = {
    "implementation",
    "dtype",
    "device",
    "pass",
    "max-ulp",
    "max-abs",
    "against",
    "domain",
    "max-nonfinite",
    "policy",
    "rtol",
    "atol",
    "max-ulp-outside-flush",
    "max-flush-below",
}
PASSES = ("forward", "backward", "*")


@dataclass(frozen=True)
class Threshold:
    implementation: str = "*"
    dtype: str = "*"
    device: str = "*"
    pass_: str = "*"
    """``forward``, ``backward`` or ``*`` (both): the pass of the cases it selects."""
    max_ulp: float | None = None
    """Largest ULP error allowed (against ``against``)."""
    against: str = "exact"
    """``exact`` GELU or the implementation's own ``formula``."""
    max_abs: float | None = None
    """Largest absolute error allowed (against the exact GELU)."""
    domain: tuple[float, float] | None = None
    """An interval the accurate domain must cover (at the run's domain tolerance)."""
    max_nonfinite: int | None = None
    """Non-finite mismatches allowed."""
    max_ulp_outside_flush: float | None = None
    """Largest ULP error allowed over the inputs not flushed to ±0 (against ``against``): the
    accuracy of a kernel whose tail flushes, judged apart from the flush."""
    max_flush_below: float | None = None
    """Flushing to ±0 is allowed only at x ≤ this (e.g. −5.5): the highest flushed input."""
    policy: str | None = None
    """A tolerance policy (:mod:`gelu_audit.audits.policies`) no tested input may break."""
    rtol: float | None = None
    atol: float | None = None
    """A mixed rule of the threshold's own, |ŷ − y| ≤ atol + rtol·|y| (both set or neither)."""
    is_gate: bool = False
    """The ``--max-ulp`` gate (:meth:`gate`): its reasons name no selector (it applies to every
    case), and a non-finite mismatch is reported with the first input that has one."""

    @property
    def own_policy(self) -> Policy | None:
        """Its own rtol/atol rule as a policy (None without one)."""
        return None if self.rtol is None or self.atol is None else mixed_policy(self.rtol, self.atol)

    @property
    def policy_name(self) -> str | None:
        """The policy it checks: a named one, or its own rtol/atol rule."""
        own = self.own_policy
        return own.name if own is not None else self.policy

    @staticmethod
    def gate(max_ulp: float, against: str = "exact") -> Threshold:
        """``--max-ulp N [--against formula]``: N ULP on every case, and no non-finite mismatch."""
        return Threshold(max_ulp=max_ulp, against=against, max_nonfinite=0, is_gate=True)

    def matches(self, implementation: str, dtype: str, device: str, pass_: str = "forward") -> bool:
        return (
            fnmatch.fnmatchcase(implementation, self.implementation)
            and fnmatch.fnmatchcase(dtype, self.dtype)
            and fnmatch.fnmatchcase(device, self.device)
            and self.pass_ in ("*", pass_)
        )

    def describe(self) -> str:
        selector = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("implementation", self.implementation),
                ("dtype", self.dtype),
                ("device", self.device),
                ("pass", self.pass_),
            )
            if v != "*"
        )
        return f"threshold [{selector or 'all cases'}]"

    def failures(self, case: CaseResult) -> list[str]:
        """Why ``case`` (a finished, successful case) breaks this threshold; empty when it holds."""
        reasons = []
        stats = case.exact if self.against == "exact" else case.own_formula
        assert stats is not None and case.exact is not None
        if self.max_ulp is not None and stats.max_ulp > self.max_ulp:
            reasons.append(f"max {stats.max_ulp:.4g} ULP > {self.max_ulp:g} (against {stats.against})")
        if (
            self.max_ulp_outside_flush is not None
            and stats.max_ulp_outside_flush > self.max_ulp_outside_flush
        ):
            reasons.append(
                f"max {stats.max_ulp_outside_flush:.4g} ULP outside the flushed inputs "
                f"> {self.max_ulp_outside_flush:g} (against {stats.against})"
            )
        if self.max_flush_below is not None:
            flush = case.exact.flush_to_zero
            highest = max((span[1] for span in (flush.negative, flush.positive) if span), default=None)
            if highest is not None and highest > self.max_flush_below:
                reasons.append(f"flushes to 0 at x = {highest:.6g}, above {self.max_flush_below:g}")
        if self.max_abs is not None and case.exact.max_abs_error > self.max_abs:
            reasons.append(f"max abs error {case.exact.max_abs_error:.4g} > {self.max_abs:g}")
        if self.domain is not None:
            domain = case.exact.accurate_domain
            lo, hi = self.domain
            if domain.lo is None or domain.hi is None or domain.lo > lo or domain.hi < hi:
                reasons.append(f"accurate domain {domain.interval_text()} does not cover [{lo:g}, {hi:g}]")
        if self.max_nonfinite is not None and case.nonfinite_count > self.max_nonfinite:
            count = f"{case.nonfinite_count} non-finite mismatch(es)"
            first = case.nonfinite[0] if case.nonfinite else None
            if not self.is_gate:
                reasons.append(f"{count} > {self.max_nonfinite}")
            elif first is not None:
                reasons.append(f"{count}, first at x = {first.x!r} (got {first.got!r})")
            else:
                reasons.append(count)
        name = self.policy_name
        if name is not None:
            outcome = next((o for o in stats.policies if o.policy == name), None)
            if outcome is None:
                reasons.append(f"policy {name} has no rule for {case.dtype}")
            elif not outcome.passed:
                reasons.append(f"{name}: {policy_failure(outcome)}")
        if self.is_gate:
            return reasons
        return [f"{self.describe()}: {reason}" for reason in reasons]


def policy_failure(outcome: PolicyOutcome) -> str:
    """How a case breaks a policy, in one phrase: how many inputs, and the worst finite one."""
    text = f"{outcome.finite_breaks:,} input(s) break {outcome.rule}"
    if outcome.worst is not None and outcome.max_ratio > 1:
        text += f"; worst x = {outcome.worst.x!r}, error {outcome.max_ratio:.3g}× the allowance"
    return text


def parse_thresholds(entries: Any, where: str) -> tuple[Threshold, ...]:
    """Validate the ``threshold`` array of tables; errors name the table and key."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"{where}: threshold must be an array of tables ([[tool.gelu-audit.threshold]])")
    return tuple(_threshold(entry, f"{where}: threshold[{i}]") for i, entry in enumerate(entries))


def _threshold(entry: dict[str, Any], where: str) -> Threshold:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    values: dict[str, Any] = {}
    for key in ("implementation", "dtype", "device"):
        if key in entry:
            if not isinstance(entry[key], str) or not entry[key]:
                raise UsageError(f"{where}: {key} must be a non-empty string (a name or a pattern)")
            values[key] = entry[key]
    if "pass" in entry:
        if entry["pass"] not in PASSES:
            raise UsageError(f'{where}: pass must be "forward", "backward" or "*", not {entry["pass"]!r}')
        values["pass_"] = entry["pass"]
    if "dtype" in values and not any(c in values["dtype"] for c in "*?["):
        from gelu_audit.numerics.formats import parse_format

        values["dtype"] = parse_format(values["dtype"]).name
    for key in ("max-ulp", "max-abs", "max-ulp-outside-flush", "rtol", "atol"):
        if key in entry:
            value = entry[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not value >= 0
                or math.isinf(value)
            ):
                raise UsageError(f"{where}: {key} must be a non-negative number, not {value!r}")
            values[key.replace("-", "_")] = float(value)
    if "max-flush-below" in entry:
        value = entry["max-flush-below"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"{where}: max-flush-below must be a number (an x), not {value!r}")
        values["max_flush_below"] = float(value)
    if "max-nonfinite" in entry:
        value = entry["max-nonfinite"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{where}: max-nonfinite must be a non-negative integer, not {value!r}")
        values["max_nonfinite"] = value
    if "against" in entry:
        if entry["against"] not in ("exact", "formula"):
            raise UsageError(f'{where}: against must be "exact" or "formula", not {entry["against"]!r}')
        values["against"] = entry["against"]
    if "domain" in entry:
        domain = entry["domain"]
        if (
            not isinstance(domain, list)
            or len(domain) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in domain)
            or not domain[0] <= domain[1]
        ):
            raise UsageError(f"{where}: domain must be [LO, HI] with LO <= HI, not {domain!r}")
        values["domain"] = (float(domain[0]), float(domain[1]))
    if "policy" in entry:
        if not isinstance(entry["policy"], str):
            raise UsageError(f"{where}: policy must be a policy's name")
        try:
            values["policy"] = policy_named(entry["policy"]).name
        except UsageError as error:
            raise UsageError(f"{where}: {error}") from None
    if ("rtol" in values) != ("atol" in values):
        raise UsageError(f"{where}: rtol and atol go together (|ŷ − y| ≤ atol + rtol·|y|)")
    if "policy" in values and "rtol" in values:
        raise UsageError(f"{where}: a threshold checks one policy: policy, or rtol and atol")
    limits = {
        "max_ulp",
        "max_abs",
        "domain",
        "max_nonfinite",
        "policy",
        "rtol",
        "max_ulp_outside_flush",
        "max_flush_below",
    }
    if not limits & set(values):
        raise UsageError(
            f"{where}: sets no limit (max-ulp, max-ulp-outside-flush, max-flush-below, max-abs, domain, "
            "max-nonfinite, policy, or rtol and atol)"
        )
    return Threshold(**values)
