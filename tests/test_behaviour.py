import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.instruments import (
    implicit_linear_weights,
    implicit_weight_difference,
    squared_prediction_difference,
)
from iclab.solvers import gd_construction, gd_weights
from iclab.tasks import LinearRegressionTask, to_tokens


def test_spd_and_ilwd_hand_cases():
    assert float(squared_prediction_difference(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]))) \
        == pytest.approx(2.0)
    w_a = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    w_b = jnp.array([[0.0, 0.0], [0.0, 2.0]])
    assert float(implicit_weight_difference(w_a, w_b)) == pytest.approx(2.5)


def test_implicit_weights_of_a_linear_learner_are_exact(key):
    example = LinearRegressionTask(d=4, n_context=6).sample(key)
    probes = jax.random.normal(jax.random.key(1), (8, 4))
    model = gd_construction(4, 6, lr=1.7, steps=3)
    w = implicit_linear_weights(model, to_tokens(example), probes)
    np.testing.assert_allclose(w, gd_weights(example.x, example.y, 1.7, 3), rtol=1e-4, atol=1e-5)


def test_implicit_weights_of_a_nonlinear_learner_are_the_least_squares_fit(key):
    tokens = jax.random.normal(key, (5, 4))
    probes = jax.random.normal(jax.random.key(2), (30, 3))
    predict = lambda t: jnp.sum(t[-1, :3] ** 2) + t[-1, 0]  # ignores the context
    w = implicit_linear_weights(predict, tokens, probes)
    p = np.asarray(probes, np.float64)
    targets = (p**2).sum(1) + p[:, 0]
    np.testing.assert_allclose(w, np.linalg.lstsq(p, targets, rcond=None)[0], rtol=1e-4,
                               atol=1e-4)
