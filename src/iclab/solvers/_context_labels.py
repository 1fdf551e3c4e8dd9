"""The best a learner can do on the item–label task without linking items to labels.

On ``ItemLabelTask`` the query's label is the label of a uniformly chosen one of the N
context pairs, each label drawn uniformly from L. A learner that sees the context's
labels but not which item each follows (no induction circuit: a one-layer attention
model, or a two-layer one whose second layer is ablated) does best by predicting the most
frequent context label, and is right with probability E[max count] / N.
"""

import math

import numpy as np


def max_count_distribution(n: int, labels: int) -> np.ndarray:
    """P(max count ≤ m) for m = 0..n of n balls thrown uniformly into ``labels`` bins:

        P(max ≤ m) = n! / Lⁿ · [xⁿ] (Σ_{k≤m} xᵏ / k!)ᴸ     (exact, float64).
    """
    out = np.zeros(n + 1)
    for m in range(n + 1):
        poly = np.array([1.0 / math.factorial(k) for k in range(min(m, n) + 1)])
        power = np.array([1.0])
        for _ in range(labels):  # (Σ_k xᵏ/k!)ᴸ truncated at degree n
            power = np.convolve(power, poly)[: n + 1]
        coeff = power[n] if power.size > n else 0.0
        out[m] = math.factorial(n) * coeff / labels**n
    return out


def context_mode_accuracy(n: int, labels: int) -> float:
    """E[max count] / N: the accuracy of predicting the most frequent of N context labels
    drawn uniformly from ``labels`` (the optimum without an induction circuit).

    Args:
        n: context pairs N.
        labels: size of the label vocabulary L.

    Examples:
        >>> round(context_mode_accuracy(1, 32), 6)
        1.0
        >>> round(context_mode_accuracy(2, 2), 6)  # max count 2 w.p. ½: E = 1.5
        0.75
    """
    below = max_count_distribution(n, labels)  # P(max ≤ m)
    return float(np.sum(1.0 - below[:n])) / n
