"""The greedy regression tree (CART) against a plain numpy implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.solvers import fit_tree, tree_predict, tree_prefix_predictions


def numpy_tree_predict(x, y, queries, depth):
    """Recursive CART: best midpoint split by summed squared error, mean leaves."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def grow(idx, level, fallback):
        mean = y[idx].mean() if len(idx) else fallback
        if level == depth:
            return ("leaf", mean)
        best = (np.inf, 0, np.inf)
        for f in range(x.shape[1]):
            values = np.unique(x[idx, f])
            for a, b in zip(values[:-1], values[1:], strict=True):
                t = (a + b) / 2
                left, right = idx[x[idx, f] <= t], idx[x[idx, f] > t]
                cost = ((y[left] - y[left].mean()) ** 2).sum() + \
                    ((y[right] - y[right].mean()) ** 2).sum()
                if cost < best[0] - 1e-12:
                    best = (cost, f, t)
        _, f, t = best
        return ("split", f, t, grow(idx[x[idx, f] <= t], level + 1, mean),
                grow(idx[x[idx, f] > t], level + 1, mean))

    def predict(node, q):
        while node[0] == "split":
            node = node[3] if q[node[1]] <= node[2] else node[4]
        return node[1]

    root = grow(np.arange(len(y)), 0, 0.0)
    return np.array([predict(root, q) for q in np.asarray(queries, np.float64)])


def test_tree_matches_numpy_cart(key):
    """In float64, so that near-ties between splits are resolved the same way."""
    with jax.enable_x64(True):
        _compare_with_numpy(key)


def _compare_with_numpy(key):
    kx, ky, kq = jax.random.split(key, 3)
    x = jax.random.normal(kx, (24, 3), jnp.float64)
    y = jnp.sin(2 * x[:, 0]) + (x[:, 1] > 0) + 0.1 * jax.random.normal(ky, (24,), jnp.float64)
    queries = jax.random.normal(kq, (12, 3), jnp.float64)
    for depth in (1, 2, 3):
        tree = fit_tree(x, y, jnp.ones(24, jnp.float64), depth)
        np.testing.assert_allclose(tree_predict(tree, queries),
                                   numpy_tree_predict(x, y, queries, depth), rtol=1e-12,
                                   atol=1e-12)
    # masked points are ignored exactly
    mask = (jnp.arange(24) < 11).astype(jnp.float64)
    tree = fit_tree(x, y, mask, 3)
    np.testing.assert_allclose(tree_predict(tree, queries),
                               numpy_tree_predict(x[:11], y[:11], queries, 3), rtol=1e-5,
                               atol=1e-6)


def test_tree_recovers_a_depth_two_tree_and_prefixes_are_causal(key):
    x = jax.random.normal(key, (64, 3))
    y = jnp.where(x[:, 2] > 0, jnp.where(x[:, 0] > 0, 2.0, -1.0), 0.5)
    tree = fit_tree(x, y, jnp.ones(64), 2)
    np.testing.assert_allclose(tree_predict(tree, x), y, atol=1e-6)
    preds = tree_prefix_predictions(x[:12], y[:12], depth=2)
    assert float(preds[0]) == 0.0
    assert float(preds[1]) == pytest.approx(float(y[0]))
    moved = tree_prefix_predictions(x[:12], y[:12].at[6].add(10.0), depth=2)
    np.testing.assert_allclose(moved[:7], preds[:7])
