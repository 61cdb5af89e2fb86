"""Statistics over seeds: summaries, bootstrap CIs of a difference, a sign-flip test.

The rules every report table follows, kept in one place:

- **NaN is "no value"** (a metric never evaluated, a mark never reached). It is left
  out: it counts in neither the mean nor n.
- **±inf is "diverged" or "target missed".** It is never averaged with finite values:
  a sample holding one has mean ±inf (its sign; NaN when both signs occur) and std
  NaN, and `n_inf` says how many. Averaging a miss in as a large number, or dropping
  it, would both flatter the optimizer that missed.

Every random draw comes from `numpy.random.default_rng(seed)` with a fixed default
seed, so the same input gives the same numbers, bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

#: Above this many pairs the permutation test samples sign flips instead of listing them.
EXACT_MAX_N = 16


class Summary(NamedTuple):
    """Mean and spread of one configuration's values over its seeds."""

    mean: float  # ±inf when any value is infinite (see the module docstring)
    std: float  # sample std (ddof=1); NaN when n < 2 or any value is infinite
    n: int  # values that are not NaN, finite and infinite alike
    n_inf: int  # how many of those n are infinite


class CI(NamedTuple):
    """A confidence interval for mean(a) - mean(b)."""

    low: float
    high: float
    estimate: float  # mean(a) - mean(b) on the full samples, by the infinity rule
    level: float
    paired: bool
    note: str = ""  # why low/high are NaN; "" when they are not


def _clean(values) -> np.ndarray:
    """The values as a flat float array without NaNs ("no value")."""
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def summarize(values) -> Summary:
    """Summary(mean, std, n, n_inf) of `values`, NaNs left out.

    mean = (1/n) Σ x_i and std = sqrt(Σ (x_i - mean)² / (n - 1)) over finite values;
    when any x_i is infinite the mean is that infinity (inf + finite = inf, so np.mean
    already obeys the rule; +inf and -inf together give NaN) and the std is NaN.
    """
    x = _clean(values)
    n_inf = int(np.isinf(x).sum())
    mean = float(np.mean(x)) if x.size else math.nan
    std = float(np.std(x, ddof=1)) if x.size >= 2 and n_inf == 0 else math.nan
    return Summary(mean, std, int(x.size), n_inf)


def _pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    """a and b aligned by position, pairs with a NaN on either side dropped."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.size != b.size:
        raise ValueError(
            f"paired samples need equal lengths (one value per seed), got {a.size} and "
            f"{b.size}; align them by seed or pass paired=False"
        )
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def _percentile_interval(diffs: np.ndarray, level: float) -> tuple[float, float]:
    """The (1-level)/2 and (1+level)/2 order statistics of the bootstrap differences.

    Order statistics rather than np.percentile's interpolation: interpolating between
    a finite and an infinite draw gives inf*0 = NaN, while an order statistic is
    always one of the draws.
    """
    s = np.sort(diffs)
    tail = (1.0 - level) / 2.0
    # round(): 0.025 * 10_000 is 250.00000000000003 in floating point
    lo = math.floor(round(tail * s.size, 9))
    hi = math.ceil(round((1.0 - tail) * s.size, 9)) - 1
    return float(s[min(max(lo, 0), s.size - 1)]), float(s[min(max(hi, 0), s.size - 1)])


def bootstrap_diff_ci(a, b, paired: bool, level: float = 0.95, n_boot: int = 10_000,
                      seed: int = 0) -> CI:
    """Percentile-bootstrap CI of Δ = mean(a) - mean(b).

    paired=True: a[i] and b[i] are the same seed; each of the n_boot resamples draws n
    seed indices with replacement and applies them to both, Δ* = mean(a[I]) - mean(b[I]).
    paired=False: a and b are resampled independently, Δ* = mean(a[I]) - mean(b[J]).
    The interval is the (1-level)/2 and (1+level)/2 quantiles of the Δ* (Efron &
    Tibshirani 1993, §13.3). NaNs are left out (whole pairs when paired).

    Infinite values follow the module's rule inside every resample, so a miss in a
    against a finite b gives Δ = +inf and an interval whose upper end is +inf. When
    the infinities make Δ = inf - inf (both samples missed, say), Δ is undefined: the
    CI is NaN and `note` says why. Fewer than 2 values per sample also give NaN.
    """
    a, b = _pairs(a, b) if paired else (_clean(a), _clean(b))
    if min(a.size, b.size) < 2:
        what = "pairs" if paired else "values in each sample"
        return CI(math.nan, math.nan, math.nan, level, paired, f"needs at least 2 {what}")
    with np.errstate(invalid="ignore"):  # inf - inf is NaN by design, handled next
        estimate = float(np.mean(a) - np.mean(b))
    if math.isnan(estimate):
        return CI(math.nan, math.nan, math.nan, level, paired,
                  "undefined: infinite values (diverged or missed runs) on both sides make "
                  "the difference of means inf - inf")
    rng = np.random.default_rng(seed)
    if paired:
        idx = rng.integers(0, a.size, size=(n_boot, a.size))
        diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    else:
        ia = rng.integers(0, a.size, size=(n_boot, a.size))
        ib = rng.integers(0, b.size, size=(n_boot, b.size))
        diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    low, high = _percentile_interval(diffs, level)
    return CI(low, high, estimate, level, paired)


def significant(ci) -> bool:
    """True when the interval (low, high) excludes 0; a NaN interval is never significant."""
    low, high = ci[0], ci[1]
    return bool(low > 0 or high < 0)


def _sign_matrix(n: int, n_random: int, seed: int) -> np.ndarray:
    """All 2^n sign vectors for n <= EXACT_MAX_N, else n_random random ones."""
    if n <= EXACT_MAX_N:
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
    else:
        bits = np.random.default_rng(seed).integers(0, 2, size=(n_random, n))
    return 1 - 2 * bits.astype(float)


def paired_permutation_p(a, b, n_random: int = 2 ** 16, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value for H0: a_i - b_i is symmetric about 0.

    With d_i = a_i - b_i (NaN pairs left out) and S = {±1}^n,
        p = #{s ∈ S : |Σ s_i d_i| >= |Σ d_i|} / 2^n,
    listed exactly for n <= 16 (the identity flip is one of them, so p >= 2/2^n for
    d != 0). Above 16 pairs, n_random flips drawn with `seed` estimate it as
    (count + 1) / (n_random + 1). NaN when no pairs remain or any d_i is infinite
    (a sum with an infinity has no permutation distribution).
    """
    a, b = _pairs(a, b)
    d = a - b
    if d.size == 0 or not np.all(np.isfinite(d)):
        return math.nan
    signs = _sign_matrix(d.size, n_random, seed)
    observed = abs(float(d.sum()))
    stats = np.abs(signs @ d)
    # a tolerance so that flips equal in exact arithmetic count as ties, not as less
    count = int(np.sum(stats >= observed - 1e-9 * float(np.abs(d).sum())))
    if d.size <= EXACT_MAX_N:
        return count / signs.shape[0]
    return (count + 1) / (signs.shape[0] + 1)
