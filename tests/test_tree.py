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


def test_jax_tree_equals_scikit_learn_at_depth_4(key):
    """An independent implementation: sklearn's DecisionTreeRegressor(max_depth=4). With
    continuous labels and enough points per node no two splits tie (with two points in a
    node every separating split is perfect, and the libraries break such ties differently),
    so the predictions agree once ≥ 150 points are seen."""
    from iclab.solvers import sklearn_tree_prefix_predictions

    seen = jnp.array([150, 171, 199])
    with jax.enable_x64(True):  # float32 sums of squares can flip near-tied splits
        x = jax.random.normal(key, (2, 200, 5), dtype=jnp.float64)
        y = jnp.sin(3 * x[..., 0]) + x[..., 1] * x[..., 2]

        def ours(xb, yb, i):
            tree = fit_tree(xb, yb, (jnp.arange(200) < i).astype(xb.dtype), 4)
            return tree_predict(tree, xb[i][None])[0]

        predictions = jax.jit(jax.vmap(jax.vmap(ours, (None, None, 0)), (0, 0, None)))(
            x, y, seen)
    theirs = sklearn_tree_prefix_predictions(x, y, max_depth=4)
    assert theirs[0, 0] == 0.0
    np.testing.assert_allclose(predictions, theirs[:, np.asarray(seen)], rtol=1e-5, atol=1e-5)


def test_unbounded_tree_interpolates_and_xgboost_learns_a_step(key):
    from iclab.solvers import sklearn_tree_prefix_predictions, xgboost_prefix_predictions

    # The unbounded tree fits every seen point exactly: a query that repeats a seen input
    # gets that input's label.
    x = np.asarray(jax.random.normal(key, (1, 12, 3)), np.float64)
    x[0, -1] = x[0, 4]
    y = np.asarray(jax.random.normal(jax.random.key(1), (1, 12)), np.float64)
    preds = sklearn_tree_prefix_predictions(x, y)
    assert preds[0, 0] == 0.0  # no data: predict 0
    assert preds[0, -1] == pytest.approx(y[0, 4])
    # Boosted trees recover a one-split step function y = 1[x_1 > 0] from 40 points.
    x = np.asarray(jax.random.normal(jax.random.key(2), (2, 41, 3)))
    y = (x[..., 1] > 0).astype(float)
    preds = xgboost_prefix_predictions(x, y)
    assert preds.shape == (2, 41) and preds[0, 0] == 0.0
    np.testing.assert_allclose(preds[:, -1], y[:, -1], atol=0.1)
    assert np.array_equal(preds, xgboost_prefix_predictions(x, y))  # repeatable


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    import sys

    from iclab.solvers import _external

    monkeypatch.setitem(sys.modules, "xgboost", None)  # makes `import xgboost` fail
    assert not _external.available("xgboost")
    with pytest.raises(ImportError, match=r"iclab\[trees\]"):
        _external.xgboost_prefix_predictions(np.zeros((1, 2, 1)), np.zeros((1, 2)))
