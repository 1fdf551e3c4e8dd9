"""Linear probes on synthetic activations with known answers."""

import jax
import jax.numpy as jnp
import numpy as np

from iclab.instruments import fit_linear_probe, probe_grid, probe_scores


def test_probe_recovers_an_affine_map_exactly(key):
    k1, k2 = jax.random.split(key)
    features = jax.random.normal(k1, (400, 6))
    a = jax.random.normal(k2, (6, 3))
    targets = features @ a + jnp.array([[1.0, -2.0, 0.5]])
    weights = fit_linear_probe(features, targets, ridge=0.0)
    np.testing.assert_allclose(weights[:-1], a, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(weights[-1], [1.0, -2.0, 0.5], atol=1e-4)
    scores = probe_scores(features[:200], targets[:200], features[200:], targets[200:])
    assert float(scores["r2"]) > 0.999999 and float(scores["mse"]) < 1e-8


def test_probe_r2_equals_the_explained_fraction(key):
    """y = f·a + noise with Var(f·a) = 1 and Var(noise) = 1: held-out R² → 1/2."""
    k1, k2, k3 = jax.random.split(key, 3)
    features = jax.random.normal(k1, (20000, 4))
    a = jnp.array([[0.5], [0.5], [0.5], [0.5]])  # ‖a‖ = 1
    targets = features @ a + jax.random.normal(k2, (20000, 1))
    scores = probe_scores(features[:10000], targets[:10000], features[10000:], targets[10000:])
    assert abs(float(scores["r2"]) - 0.5) < 0.02
    assert abs(float(scores["mse"]) - 1.0) < 0.03
    unrelated = jax.random.normal(k3, (20000, 1))
    scores = probe_scores(features[:10000], unrelated[:10000], features[10000:], unrelated[10000:])
    assert abs(float(scores["r2"])) < 0.01


def test_probe_grid_scores_each_layer_and_time_step(key):
    """Layer 0 encodes the target at every t, layer 1 only for t ≥ 2, layer 2 never."""
    k1, k2, k3 = jax.random.split(key, 3)
    n, t, d = 600, 4, 5
    informative = jax.random.normal(k1, (n, t, d))
    noise = jax.random.normal(k2, (n, t, d))
    targets = informative[..., :2] * 2.0 - informative[..., 2:4]
    layer1 = jnp.where(jnp.arange(t)[None, :, None] >= 2, informative, noise)
    features = jnp.stack([informative, layer1, jax.random.normal(k3, (n, t, d))], axis=1)
    grid = probe_grid(features, targets)
    r2 = np.asarray(grid["r2"])
    assert r2.shape == (3, 4)
    np.testing.assert_allclose(r2[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(r2[1, 2:], 1.0, atol=1e-5)
    assert np.all(r2[1, :2] < 0.05) and np.all(r2[2] < 0.05)
