"""Few-shot regression read by a sequence model (von Oswald et al. 2023, Fig. 8): the token
layout, the least-squares controls against numpy, and the per-pair loss's read-out
positions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.engine import SoftPrompt, few_shot_loss_per_pair
from iclab.solvers import ar_ridge_predictions, pair_ridge_predictions
from iclab.tasks import FewShotRegressionTask, few_shot_tokens


def test_tokens_interleave_pairs_eos_and_prefix_and_point_at_the_x_tokens():
    x, y = jnp.arange(6.0).reshape(3, 2), -jnp.arange(6.0).reshape(3, 2)
    eos, prefix = jnp.full(2, 9.0), jnp.full((4, 2), 7.0)
    tokens, at = few_shot_tokens(x, y)
    np.testing.assert_array_equal(tokens, np.stack([x, y], 1).reshape(6, 2))
    np.testing.assert_array_equal(at, [0, 2, 4])
    tokens, at = few_shot_tokens(x, y, eos, prefix)
    assert tokens.shape == (4 + 9, 2)
    np.testing.assert_array_equal(tokens[:4], prefix)
    np.testing.assert_array_equal(tokens[at], x)
    np.testing.assert_array_equal(tokens[at + 1], y)
    np.testing.assert_array_equal(tokens[at + 2], np.broadcast_to(eos, (3, 2)))


def test_task_draws_an_orthogonal_map_and_noiseless_labels():
    pairs = FewShotRegressionTask(state_dim=4, pairs=6).sample(jax.random.key(0))
    np.testing.assert_allclose(pairs.w @ pairs.w.T, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(pairs.y, pairs.x @ pairs.w.T, atol=1e-5)


def test_least_squares_controls_match_numpy():
    pairs = FewShotRegressionTask(state_dim=3, pairs=7).sample(jax.random.key(1))
    x, y = np.asarray(pairs.x, np.float64), np.asarray(pairs.y, np.float64)
    lam = 1e-3
    clean = np.asarray(pair_ridge_predictions(pairs.x, pairs.y, lam))
    mesa = np.asarray((lambda t, at: ar_ridge_predictions(t, lam)[at])(
        *few_shot_tokens(pairs.x, pairs.y)))
    np.testing.assert_allclose(clean[0], 0.0)
    for i in range(1, 7):
        a, b = x[:i], y[:i]
        w = np.linalg.solve(a.T @ a + lam * np.eye(3), a.T @ b).T
        np.testing.assert_allclose(clean[i], w @ x[i], rtol=2e-3, atol=2e-4)
        inputs = np.concatenate([a, y[:i]])  # D_mesa: (x_j → y_j) and (y_j → x_{j+1})
        outputs = np.concatenate([b, x[1:i + 1]])
        w = np.linalg.solve(inputs.T @ inputs + lam * np.eye(3), inputs.T @ outputs).T
        np.testing.assert_allclose(mesa[i], w @ x[i], rtol=2e-3, atol=2e-4)
    assert np.abs(clean[4:] - y[4:]).max() < 1e-2  # n = 3 clean pairs determine W*


@pytest.mark.parametrize("eos,prefix", [(False, 0), (True, 0), (True, 5)])
def test_loss_reads_each_x_token(eos, prefix):
    batch = FewShotRegressionTask(state_dim=3, pairs=4).sample_batch(jax.random.key(2), 8)
    next_token = lambda tokens: jnp.roll(tokens, -1, axis=0)  # knows the next token
    prompt = None if not eos else SoftPrompt(3, eos, prefix, key=jax.random.key(3))
    np.testing.assert_allclose(few_shot_loss_per_pair(next_token, batch, prompt), 0.0)
    same = lambda tokens: tokens  # predicts y_i by x_i
    want = 0.5 * np.sum((np.asarray(batch.x) - np.asarray(batch.y)) ** 2, -1).mean(0)
    np.testing.assert_allclose(few_shot_loss_per_pair(same, batch, prompt), want, rtol=1e-5)
