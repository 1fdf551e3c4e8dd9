"""Hyperparameter-transfer read-outs: the optimum of a loss over a log-spaced grid and
how it moves with scale."""

import numpy as np


def grid_optimum(values, losses) -> tuple[float, bool]:
    """The minimiser of a loss over a grid of positive values, in log₂: a parabola
    through the best grid point and its two neighbours, its vertex (clipped to that
    three-point span); at the grid's edge, the edge point itself.

    Non-finite losses (diverged runs) count as +∞.

    Args:
        values: the grid (e.g. learning rates), increasing.
        losses: the loss at each grid value.

    Returns:
        (the optimum, whether it lies inside the grid rather than at its edge).

    Examples:
        >>> lrs = [2.0 ** -k for k in (8, 7, 6, 5, 4)]
        >>> import math
        >>> opt, inside = grid_optimum(lrs, [(math.log2(x) + 6.5) ** 2 for x in lrs])
        >>> round(math.log2(opt), 6), inside
        (-6.5, True)

    References:
        Yang et al. "Tensor Programs V", 2022 (the LR-transfer figures mark each width's
        optimum).
    """
    x = np.log2(np.asarray(values, float))
    y = np.asarray(losses, float)
    if np.any(np.diff(x) <= 0):
        raise ValueError("grid_optimum: the grid must be increasing")
    y = np.where(np.isfinite(y), y, np.inf)
    if not np.isfinite(y).any():
        return float("nan"), False
    i = int(np.argmin(y))
    if i == 0 or i == len(x) - 1 or not np.isfinite(y[i - 1:i + 2]).all():
        return float(2.0 ** x[i]), False
    a, b, _ = np.polyfit(x[i - 1:i + 2], y[i - 1:i + 2], 2)
    vertex = -b / (2 * a) if a > 0 else x[i]
    return float(2.0 ** np.clip(vertex, x[i - 1], x[i + 1])), True


def transfer_exponent(sizes, optima) -> float:
    """The exponent p of optimum ∝ size^p: the least-squares slope of log₂ optimum
    against log₂ size (0: the optimum transfers; −1: it halves with every doubling).

    Examples:
        >>> round(transfer_exponent([32, 64, 128], [1e-2, 5e-3, 2.5e-3]), 6)
        -1.0
    """
    s, o = np.log2(np.asarray(sizes, float)), np.asarray(optima, float)
    ok = np.isfinite(o) & (o > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(s[ok], np.log2(o[ok]), 1)[0])
