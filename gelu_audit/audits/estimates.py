"""Estimates of the exhaustive figures from a stratified sample, with 95% intervals.

A sampled audit's own statistics describe the sample, and the sample is built to find errors:
the hard regions are oversampled, so its correctly rounded share and p99 are figures of that
design, not of the format. What a reader wants is the figure an exhaustive audit of the same
range would give, over every finite bit pattern weighted equally. The sample's binade half is
a stratified random sample with known stratum sizes (:func:`~gelu_audit.numerics.inputs.
stratified_inputs`), so each of its points stands for N_h / n_h patterns, and the standard
stratified estimators apply (Cochran, *Sampling Techniques*, ch. 5):

* a share (correctly rounded, over the tolerance) p̂ = Σ W_h p̂_h, W_h = N_h / N, with the
  variance Σ W_h² (1 − n_h/N_h) s_h² / n_h; the interval is Wilson's with the effective sample
  size p̂(1 − p̂)/var (Korn and Graubard), so it does not collapse when p̂ is 0 or 1;
* the mean ULP, the same weighted mean with a normal interval;
* p99, the weighted quantile, with Woodruff's interval: the quantiles at the share 0.99 ∓ 1.96
  standard errors of the estimated distribution function there.

Within a stratum the draws are uniform with replacement; the distinct points drawn are then a
simple random sample without replacement, hence the finite-population factor. A stratum of one
drawn point has no variance of its own: it takes the pooled variance of all such strata. The
points aimed at hard regions and the specials are not part of the design: they raise the
maxima (lower bounds) and nothing here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gelu_audit.numerics.exact_values import ReferenceValues
from gelu_audit.numerics.formats import FloatFormat
from gelu_audit.numerics.ulp import ordinal_distances, ulp_errors

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile: two-sided 95% intervals."""

PERCENTILE = 0.99


@dataclass(frozen=True)
class Estimate:
    """An estimate of a population figure and its 95% interval."""

    value: float
    low: float
    high: float

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high


@dataclass(frozen=True)
class SampleEstimates:
    """What an exhaustive audit of the same range would find, estimated from the binade draws,
    over the same population as its statistics: the inputs whose answer is finite."""

    population: int
    """Finite bit patterns the estimates speak for (the range's)."""
    points: int
    """Sampled points the estimates use (the binade draws with a finite answer)."""
    strata: int
    correctly_rounded: Estimate
    """Share of the population where the answer is RN_T(y)."""
    mean_ulp: Estimate
    p99_ulp: Estimate
    """The nearest-rank 99th percentile of the error; its upper end is the largest error found
    when 0.99 + 1.96 standard errors passes 1."""
    over_tolerance: Estimate
    """Share of the population whose error exceeds ``tolerance``."""
    tolerance: float
    policy_breaks: dict[str, Estimate] = field(default_factory=dict)
    """Per tolerance policy with a rule here: the share of the population whose answer breaks
    it (the sample's own count says nothing of the range's)."""


def _stratum_variances(values: np.ndarray, stratum: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each stratum's sample variance (n − 1 denominator); strata of one point get the pooled
    variance of all one-point strata (0 when there are fewer than two)."""
    strata = len(counts)
    with np.errstate(over="ignore", invalid="ignore"):  # errors of 1e300 ULP square to inf
        sums = np.bincount(stratum, weights=values, minlength=strata)
        means = np.divide(sums, counts, out=np.zeros(strata), where=counts > 0)
        squares = np.bincount(stratum, weights=(values - means[stratum]) ** 2, minlength=strata)
        variances = np.divide(squares, counts - 1, out=np.zeros(strata), where=counts > 1)
        single = counts == 1
        if np.count_nonzero(single) > 1:
            variances[single] = float(np.var(means[single], ddof=1))
    return np.where(np.isnan(variances), np.inf, variances)


class _Design:
    """The stratified design of one sample, and its domain: the points whose answer is finite,
    the population of every exhaustive statistic. Figures over the domain are ratio estimates
    (a weighted mean over the domain), with the linearized variance (Cochran §6.11)."""

    def __init__(self, stratum: np.ndarray, sizes: np.ndarray, domain: np.ndarray) -> None:
        self.stratum = stratum
        self.domain = domain.astype(np.float64)
        self.counts = np.bincount(stratum, minlength=len(sizes)).astype(np.float64)
        sizes_f = sizes.astype(np.float64)
        self.weights = sizes_f / sizes_f.sum()
        point_weights = (self.weights / np.maximum(self.counts, 1))[stratum]
        self.domain_share = float(np.sum(point_weights * self.domain))
        self.point_weights = point_weights * self.domain / max(self.domain_share, 1e-300)
        """Each point's weight within the domain (0 outside it); they add up to 1."""
        drawn_share = np.minimum(self.counts / np.maximum(sizes_f, 1), 1.0)
        self.factor = np.where(self.counts > 0, (1 - drawn_share) / np.maximum(self.counts, 1), 0.0)
        self.size = float(np.sum(self.domain))

    def mean_and_variance(self, values: np.ndarray) -> tuple[float, float]:
        """The domain mean of ``values`` and its variance."""
        values = np.where(self.domain > 0, values, 0.0)
        mean = float(np.sum(self.point_weights * values))
        linearized = self.domain * (values - mean) / max(self.domain_share, 1e-300)
        variances = _stratum_variances(linearized, self.stratum, self.counts)
        with np.errstate(over="ignore", invalid="ignore"):
            terms = np.where(self.factor > 0, self.weights**2 * self.factor * variances, 0.0)
        return mean, float(np.sum(terms))

    def share(self, flags: np.ndarray) -> Estimate:
        p, variance = self.mean_and_variance(flags.astype(np.float64))
        n = max(self.size, 1.0)
        effective = n if variance <= 0 or p <= 0 or p >= 1 else min(n, p * (1 - p) / variance)
        return _wilson(p, effective)


def _wilson(p: float, n: float) -> Estimate:
    """Wilson's score interval for a share p from an (effective) sample of n."""
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def _weighted_quantile(sorted_values: np.ndarray, cumulative: np.ndarray, share: float) -> float:
    """The smallest value whose cumulative weight reaches ``share`` (the largest if none)."""
    i = int(np.searchsorted(cumulative, share - 1e-12, side="left"))
    return float(sorted_values[min(i, len(sorted_values) - 1)])


def estimate(
    errors: np.ndarray,
    correctly_rounded: np.ndarray,
    stratum: np.ndarray,
    sizes: np.ndarray,
    tolerance: float,
    policy_breaks: dict[str, np.ndarray] | None = None,
) -> SampleEstimates:
    """Estimates from the points drawn in strata (``stratum`` ≥ 0; the rest are ignored).

    ``errors``: ULP error per sampled point (+inf where the answer is not finite);
    ``correctly_rounded``: whether the answer is RN_T(y); ``sizes``: patterns per stratum;
    ``policy_breaks``: per policy, whether each point's finite answer breaks it.
    """
    drawn = stratum >= 0
    errors, correct, stratum = errors[drawn], correctly_rounded[drawn], stratum[drawn]
    breaks = {name: flags[drawn] for name, flags in (policy_breaks or {}).items()}
    finite = np.isfinite(errors)
    design = _Design(stratum, sizes, finite)
    population = sum(int(s) for s in sizes)  # Python integers: fp64's 2^64 overflows int64
    if not finite.any():
        nothing = Estimate(math.nan, math.nan, math.nan)
        return SampleEstimates(population, 0, len(sizes), nothing, nothing, nothing, nothing, tolerance)

    mean, variance = design.mean_and_variance(np.where(finite, errors, 0.0))
    half = Z95 * math.sqrt(variance)
    mean_ulp = Estimate(mean, max(0.0, mean - half), mean + half)

    order = np.argsort(errors[finite], kind="stable")
    sorted_errors = errors[finite][order]
    cumulative = np.cumsum(design.point_weights[finite][order])
    p99 = _weighted_quantile(sorted_errors, cumulative, PERCENTILE)
    _, below_variance = design.mean_and_variance((errors <= p99).astype(np.float64))
    spread = Z95 * math.sqrt(below_variance)
    low = _weighted_quantile(sorted_errors, cumulative, max(0.0, PERCENTILE - spread))
    high = _weighted_quantile(sorted_errors, cumulative, min(1.0, PERCENTILE + spread))

    return SampleEstimates(
        population=population,
        points=int(np.count_nonzero(finite)),
        strata=len(sizes),
        correctly_rounded=design.share(correct),
        mean_ulp=mean_ulp,
        p99_ulp=Estimate(p99, low, high),
        over_tolerance=design.share(errors > tolerance),
        tolerance=tolerance,
        policy_breaks={name: design.share(flags) for name, flags in breaks.items()},
    )


def point_errors(fmt: FloatFormat, got: np.ndarray, ref: ReferenceValues) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the ULP error (+inf where the answer or y is not finite: outside the
    statistics' population) and whether the answer is RN_T(y) (±0 equal)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        errors = ulp_errors(fmt, got, ref)
        correct = ordinal_distances(fmt, got, ref) == 0
    return np.where(np.isnan(errors), np.inf, errors), correct & ~np.isnan(errors)
