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
