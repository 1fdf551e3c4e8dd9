import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.solvers import (
    RidgePath,
    adaptive_ridge_weights,
    noise_variance_estimate,
    ols_weights,
    oracle_ridge_weights,
    ridge_loss,
    ridge_weights,
    tune_const_ridge,
    tune_tuned_ridge,
    weights_loss,
)
from iclab.tasks import LinearRegressionTask

MIXED = LinearRegressionTask(d=5, n_context=12, input_dist="gaussian", noise_dist="uniform",
                             noise_std=3.0, query_noise=False)


def test_ridge_matches_numpy(key):
    ex = MIXED.sample(key)
    x, y = np.asarray(ex.x, np.float64), np.asarray(ex.y, np.float64)
    expected = np.linalg.solve(x.T @ x + 0.7 * np.eye(5), x.T @ y)
    np.testing.assert_allclose(ridge_weights(ex.x, ex.y, 0.7), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", [12, 3])
def test_ols_is_numpys_min_norm_least_squares(key, n):
    ex = LinearRegressionTask(d=5, n_context=n, input_dist="gaussian", noise_std=0.3).sample(key)
    expected = np.linalg.lstsq(np.asarray(ex.x, np.float64), np.asarray(ex.y, np.float64),
                               rcond=None)[0]
    np.testing.assert_allclose(ols_weights(ex.x, ex.y), expected, rtol=1e-4, atol=1e-4)


def test_noise_estimate_formula_and_unbiasedness(key):
    ex = MIXED.sample(key)
    x, y = np.asarray(ex.x, np.float64), np.asarray(ex.y, np.float64)
    residual = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    assert float(noise_variance_estimate(ex.x, ex.y)) == pytest.approx(
        residual @ residual / (12 - 5), rel=1e-4)
    fixed = LinearRegressionTask(d=5, n_context=12, input_dist="gaussian", noise_std=2.0)
    batch = fixed.sample_batch(key, 20_000)
    estimates = np.asarray(jax.vmap(noise_variance_estimate)(batch.x, batch.y))
    assert estimates.mean() == pytest.approx(4.0, rel=0.02)


def test_ridge_path_equals_explicit_solves(key):
    batch = MIXED.sample_batch(key, 64)
    path = RidgePath(batch)
    for lam in (0.0, 0.3, 5.0):
        w = jax.vmap(ridge_weights, in_axes=(0, 0, None))(batch.x, batch.y, lam)
        np.testing.assert_allclose(path.predictions(lam), jnp.einsum("bd,bd->b", w, batch.x_query),
                                   rtol=1e-3, atol=1e-4)
    w = jax.vmap(oracle_ridge_weights)(batch)
    assert float(path.loss(batch.noise_std**2)) == pytest.approx(float(weights_loss(batch, w)),
                                                                 rel=1e-4)
    w = jax.vmap(adaptive_ridge_weights)(batch)
    assert float(path.loss(path.noise_var)) == pytest.approx(float(weights_loss(batch, w)),
                                                             rel=1e-4)


def test_oracle_ridge_is_bayes_optimal(key):
    """With w ~ N(0, I) and known σ², λ = σ² minimises the expected loss."""
    task = LinearRegressionTask(d=5, n_context=8, input_dist="gaussian", noise_std=1.5,
                                query_noise=False)
    batch = task.sample_batch(key, 40_000)
    best = float(ridge_loss(batch, 2.25))
    for lam in (1.0, 1.8, 2.8, 5.0):
        assert float(ridge_loss(batch, lam)) > best


def test_const_ridge_finds_the_grid_minimum(key):
    batch = MIXED.sample_batch(key, 4000)
    lam, loss = tune_const_ridge(batch)
    grid = np.exp(np.linspace(-6, 4, 200))
    losses = np.array([float(ridge_loss(batch, g)) for g in grid])
    assert loss <= losses.min() + 1e-5
    assert abs(np.log(lam) - np.log(grid[losses.argmin()])) < 0.1


def test_tuned_ridge_is_at_least_as_good_as_adaptive(key):
    batch = MIXED.sample_batch(key, 4000)
    cap, scale, loss = tune_tuned_ridge(batch)
    adaptive = float(RidgePath(batch).loss(RidgePath(batch).noise_var))
    assert loss <= adaptive + 1e-5
    assert cap > 0 and scale > 0
