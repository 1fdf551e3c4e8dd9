import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.solvers import (
    gd_construction,
    gd_loss,
    gd_predict,
    gd_weights,
    golden_section_search,
    one_step_optimal_lr,
    tune_gd_lr,
)
from iclab.tasks import LinearRegressionTask, to_tokens


def numpy_gd(x, y, lr, steps, w0=None):
    """Independent GD on L(w) = 1/(2N) Σ (wᵀx_j − y_j)², in float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    w = np.zeros(x.shape[1]) if w0 is None else np.asarray(w0, np.float64)
    for _ in range(steps):
        w = w - lr / len(y) * x.T @ (x @ w - y)
    return w


def test_gd_weights_match_numpy(key):
    example = LinearRegressionTask(d=6, n_context=9).sample(key)
    for steps in (1, 3, 10):
        np.testing.assert_allclose(gd_weights(example.x, example.y, 2.0, steps),
                                   numpy_gd(example.x, example.y, 2.0, steps), rtol=1e-5,
                                   atol=1e-6)


def test_one_step_from_zero_is_the_closed_form(key):
    example = LinearRegressionTask(d=5, n_context=8).sample(key)
    expected = 0.7 / 8 * np.asarray(example.x).T @ np.asarray(example.y)
    np.testing.assert_allclose(gd_weights(example.x, example.y, 0.7, 1), expected, rtol=1e-6)


def test_many_gd_steps_converge_to_least_squares(key):
    example = LinearRegressionTask(d=4, n_context=30, noise_std=0.1).sample(key)
    x, y = np.asarray(example.x, np.float64), np.asarray(example.y, np.float64)
    lstsq = np.linalg.lstsq(x, y, rcond=None)[0]
    lr = 1.0 / np.linalg.eigvalsh(x.T @ x / len(y)).max()
    np.testing.assert_allclose(gd_weights(example.x, example.y, lr, 3000), lstsq, atol=2e-4)


def test_one_step_optimal_lr_is_the_minimiser(key):
    batch = LinearRegressionTask().sample_batch(key, 4000)
    lr = float(one_step_optimal_lr(batch))
    grid = np.linspace(lr * 0.8, lr * 1.2, 41)
    losses = [float(gd_loss(batch, g)) for g in grid]
    assert abs(grid[int(np.argmin(losses))] - lr) <= grid[1] - grid[0]
    assert float(gd_loss(batch, lr)) <= min(losses) + 1e-7


def test_tune_gd_lr_finds_the_exact_one_step_optimum(key):
    batch = LinearRegressionTask().sample_batch(key, 4000)
    lr, loss = tune_gd_lr(batch, steps=1)
    assert lr == pytest.approx(float(one_step_optimal_lr(batch)), rel=1e-3)
    assert loss == pytest.approx(float(gd_loss(batch, lr)), rel=1e-6)


def test_analytic_one_step_optimum_for_uniform_inputs():
    """η* = dσ²/E tr Σ̂² and L* = ½σ²(d − (dσ²)²/E tr Σ̂²) with
    E tr Σ̂² = (E‖x‖⁴ + (N−1)dσ⁴)/N; for U(−½, ½)¹⁰, N = 10: η* = 6.0606, L* = 0.20623."""
    d, n, s2 = 10, 10, 1 / 12
    e_norm4 = d / 80 + d * (d - 1) * s2**2
    e_tr = (e_norm4 + (n - 1) * d * s2**2) / n
    eta_star = d * s2 / e_tr
    loss_star = 0.5 * s2 * (d - (d * s2) ** 2 / e_tr)
    assert eta_star == pytest.approx(6.0606, abs=1e-4)
    assert loss_star == pytest.approx(0.20623, abs=1e-5)
    batch = LinearRegressionTask().sample_batch(jax.random.key(0), 200_000)
    assert float(one_step_optimal_lr(batch)) == pytest.approx(eta_star, rel=0.01)
    assert float(gd_loss(batch, eta_star)) == pytest.approx(loss_star, rel=0.01)


def test_multi_step_tuning_improves_on_one_step(key):
    batch = LinearRegressionTask().sample_batch(key, 2000)
    _, loss1 = tune_gd_lr(batch, 1)
    lr3, loss3 = tune_gd_lr(batch, 3)
    assert loss3 < loss1
    for other in (0.9 * lr3, 1.1 * lr3):
        assert float(gd_loss(batch, other, 3)) >= loss3 - 1e-7


def test_golden_section_on_a_parabola():
    # No constant offset: in float32, f values closer than eps·|f| cannot be ordered.
    x = golden_section_search(lambda t: (t - 1.234) ** 2, 0.0, 5.0, iterations=60)
    assert float(x) == pytest.approx(1.234, abs=1e-5)


@pytest.mark.parametrize("steps", [1, 4, 20])
def test_construction_equals_gd(key, steps):
    task = LinearRegressionTask(d=10, n_context=10)
    batch = task.sample_batch(key, 512)
    model = gd_construction(10, 10, lr=1.3, steps=steps)
    preds = jax.vmap(model)(jax.vmap(to_tokens)(batch))
    expected = jax.vmap(gd_predict, in_axes=(0, None, None))(batch, 1.3, steps)
    np.testing.assert_allclose(preds, expected, atol=1e-5, rtol=1e-5)


def test_construction_from_nonzero_initial_weights(key):
    """With W₀ ≠ 0 the query enters as (x_q, −W₀x_q); 12 layers = 12 GD steps from W₀."""
    task = LinearRegressionTask(d=6, n_context=20)
    example = task.sample(key)
    w0 = jax.random.normal(jax.random.key(7), (6,))
    model = gd_construction(6, 20, lr=1.0, steps=12, w0=w0)
    tokens = to_tokens(example).at[-1, -1].set(-(w0 @ example.x_query))
    expected = numpy_gd(example.x, example.y, 1.0, 12, w0) @ np.asarray(example.x_query)
    assert float(model(tokens)) == pytest.approx(expected, abs=1e-5)


def test_gd_loss_is_half_mse(key):
    batch = LinearRegressionTask(d=3).sample_batch(key, 16)
    preds = jax.vmap(gd_predict, in_axes=(0, None))(batch, 0.5)
    assert float(gd_loss(batch, 0.5)) == pytest.approx(
        0.5 * float(jnp.mean((preds - batch.y_query) ** 2)), rel=1e-6)


@pytest.mark.parametrize("n,labels", [(1, 32), (4, 32), (12, 32), (6, 3)])
def test_context_mode_accuracy_matches_monte_carlo(n, labels):
    """E[max count] / N of N labels drawn uniformly from L: the exact occupancy formula
    against 100k numpy draws (3 standard errors)."""
    from iclab.solvers import context_mode_accuracy

    draws = np.random.default_rng(n * 100 + labels).integers(0, labels, (100_000, n))
    counts = np.zeros((draws.shape[0], labels), int)
    np.add.at(counts, (np.arange(draws.shape[0])[:, None], draws), 1)
    mode = counts.max(axis=1) / n
    assert context_mode_accuracy(n, labels) == pytest.approx(
        mode.mean(), abs=3 * mode.std() / np.sqrt(mode.size) + 1e-12)
