import jax
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.solvers import lasso_weights
from iclab.tasks import FunctionClassTask


def test_linear_sparse_and_quadratic_labels(key):
    for kind in ("linear", "sparse_linear", "quadratic"):
        batch = FunctionClassTask(kind=kind, d=6, n_context=9).sample_batch(key, 32)
        x = np.concatenate([batch.x, batch.x_query[:, None]], 1)
        y = np.concatenate([batch.y, batch.y_query[:, None]], 1)
        features = x**2 / np.sqrt(3) if kind == "quadratic" else x
        np.testing.assert_allclose(y, np.einsum("bnd,bd->bn", features, batch.w), rtol=1e-4,
                                   atol=1e-5)
        if kind == "sparse_linear":
            assert np.all(np.count_nonzero(np.asarray(batch.w), axis=1) == 3)


@pytest.mark.parametrize("kind", ["linear", "quadratic", "relu_net"])
def test_label_scale_is_d(key, kind):
    """E y² = d for the linear, quadratic and ReLU-net classes (zero estimator error / d = 1)."""
    task = FunctionClassTask(kind=kind, d=8, n_context=4)
    y = np.asarray(task.sample_batch(key, 20_000).y)
    assert (y**2).mean() == pytest.approx(task.normaliser, rel=0.05)


def test_decision_tree_matches_a_numpy_traversal(key):
    task = FunctionClassTask(kind="decision_tree", d=5, n_context=30)
    kx, kf = jax.random.split(key)
    x = jax.random.normal(kx, (30, 5))
    y, leaves = task.function(kf, x)
    kc, _ = jax.random.split(kf)
    coords = np.asarray(jax.random.randint(kc, (15,), 0, 5))
    expected = []
    for point in np.asarray(x):
        node = 0
        for _ in range(4):
            node = 2 * node + 1 + int(point[coords[node]] > 0)
        expected.append(np.asarray(leaves)[node - 15])
    np.testing.assert_allclose(y, expected)
    assert len(np.unique(np.asarray(y))) <= 16


def test_bad_kind():
    with pytest.raises(ConfigError, match="task.kind"):
        FunctionClassTask(kind="sine")


def test_lasso_satisfies_the_kkt_conditions(key):
    batch = FunctionClassTask(kind="sparse_linear", d=10, n_context=29,
                              noise_std=0.1).sample_batch(key, 4)
    alpha = 0.05
    for b in range(4):
        x, y = np.asarray(batch.x[b], np.float64), np.asarray(batch.y[b], np.float64)
        w = np.asarray(lasso_weights(batch.x[b], batch.y[b], alpha, iterations=5000), np.float64)
        corr = x.T @ (y - x @ w) / len(y)
        active = np.abs(w) > 1e-6
        np.testing.assert_allclose(corr[active], alpha * np.sign(w[active]), atol=2e-3)
        assert np.all(np.abs(corr[~active]) <= alpha + 2e-3)
        assert active.sum() < 10  # the l1 penalty zeroes coordinates
