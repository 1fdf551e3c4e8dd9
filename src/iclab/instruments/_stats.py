"""Summary statistics for per-task measurements."""

import numpy as np


def bootstrap_mean_ci(values, resamples: int = 1000, level: float = 0.9, seed: int = 0):
    """Mean over axis 0 and its bootstrap percentile interval (Garg et al.: 90 %, 1000).

    Args:
        values: (tasks, ...) per-task measurements.

    Returns:
        (mean, low, high), each of shape values.shape[1:].
    """
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.shape[0], size=(resamples, values.shape[0]))
    means = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return values.mean(0), np.quantile(means, alpha, axis=0), np.quantile(means, 1 - alpha, axis=0)


def first_crossing(steps, values, threshold: float) -> float:
    """The first step whose value is ≥ ``threshold`` (NaN if none): an emergence time."""
    steps, values = np.asarray(steps), np.asarray(values)
    above = np.nonzero(values >= threshold)[0]
    return float(steps[above[0]]) if above.size else float("nan")


def rise_times(steps, values, fractions=(0.2, 0.5, 0.8), baseline: float | None = None
               ) -> dict[float, float]:
    """The first step at which a curve has covered each fraction q of its rise,
    t_q = first step with value ≥ b + q (v_end − b), with b the baseline (default: the
    first value) and v_end the last value. NaN for every q if the curve does not rise.

    A transition is abrupt when (t₀.₈ − t₀.₂) is short against t₀.₂, the plateau before it.
    """
    steps, values = np.asarray(steps), np.asarray(values, np.float64)
    start = values[0] if baseline is None else baseline
    rise = values[-1] - start
    if not rise > 0:
        return {q: float("nan") for q in fractions}
    return {q: first_crossing(steps, values, start + q * rise) for q in fractions}


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (NaN if any y is missing): the exponent
    of a power law y ∝ x^slope."""
    y = np.asarray(y, float)
    if np.any(~np.isfinite(y)):
        return float("nan")
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(y), 1)[0])


def superexponential_ratio(losses) -> float:
    """max_k (L_{k+2}/L_{k+1}) / (L_{k+1}/L_k): below 1 when every added layer (step) cuts
    the loss by a larger factor than the one before (a super-exponential decrease)."""
    ratios = np.asarray(losses[1:], float) / np.asarray(losses[:-1], float)
    return float(np.max(ratios[1:] / ratios[:-1]))


def best_seed(values) -> int:
    """The index of the lowest value; a diverged seed (NaN) never wins unless every seed
    diverged (then the caller sees NaN)."""
    values = np.asarray(values, dtype=float)
    return int(np.argmin(np.where(np.isnan(values), np.inf, values)))
