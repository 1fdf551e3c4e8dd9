"""The shaped transformer's covariance: the reduced layer against the explicit network,
the derived drift and diffusion against one-layer Monte Carlo moment matching, the SDE's
noise against its diffusion, and the Euler–Maruyama step."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.config import ConfigError
from iclab.solvers import (
    ShapedBlock,
    explicit_layer,
    layer_covariance,
    moment_match,
    network_covariances,
    pair_correlation,
    sde_covariances,
    sde_diffusion,
    sde_drift,
    sde_noise,
)


def _v(m=4, seed=0):
    a = np.random.default_rng(seed).normal(size=(m, m))
    return jnp.asarray(a @ a.T / m + 0.5 * np.eye(m))


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize("attention, logits", [("shaped", "normalised"), ("softmax", "raw")])
def test_the_reduced_layer_has_the_law_of_the_explicit_network(attention, logits):
    """V' from n × n weights against the O(m³) exact-law sampler: means of V' and of V'²
    entrywise agree within Monte-Carlo error (|z| < 4.5 over 12 statistics)."""
    m, n, draws = 3, 12, 30000
    block = ShapedBlock(gamma=0.8, tau0=0.5, attention=attention, logits=logits)
    v = _v(m)
    x = jnp.concatenate([jnp.linalg.cholesky(v) * math.sqrt(n), jnp.zeros((m, n - m))], 1)
    explicit = jax.vmap(lambda k: (lambda y: y @ y.T / n)(explicit_layer(x, k, block)))(
        jax.random.split(jax.random.key(0), draws))
    reduced = jax.vmap(lambda k: layer_covariance(v, k, n, block))(
        jax.random.split(jax.random.key(1), draws))
    for f in (lambda t: t, lambda t: t ** 2):
        a, b = f(explicit), f(reduced)
        z = (a.mean(0) - b.mean(0)) / jnp.sqrt(a.var(0) / draws + b.var(0) / draws)
        assert float(jnp.max(jnp.abs(z))) < 4.5
    # and it is not the identity map: V' moves
    assert float(jnp.abs(reduced.mean(0) - v).max()) > 1e-3


@pytest.mark.parametrize("gamma, tau0, logits", [(1 / math.sqrt(2), 1.0, "normalised"),
                                                 (0.9, 0.5, "raw")])
def test_derived_drift_and_diffusion_match_one_layer_moments(gamma, tau0, logits):
    block = ShapedBlock(gamma=gamma, tau0=tau0, logits=logits)
    v = _v()
    b_hat, s_hat = moment_match(v, jax.random.key(1), 4096, block, 20000)
    assert _rel(b_hat, sde_drift(v, block)) < 0.05
    assert _rel(s_hat, sde_diffusion(v, block)) < 0.05
    # the attention's part is not negligible: without it the drift would be 0
    assert float(jnp.linalg.norm(sde_drift(v, block))) > 0.3


def test_the_sde_noise_has_the_diffusion_as_covariance():
    block = ShapedBlock(gamma=0.8, tau0=0.7)
    v = _v(seed=4)
    g = jax.vmap(lambda k: sde_noise(v, k, block))(jax.random.split(jax.random.key(2), 50000))
    c = g - g.mean(0, keepdims=True)
    cov = jnp.einsum("sab,scd->abcd", c, c) / (g.shape[0] - 1)
    assert _rel(cov, sde_diffusion(v, block)) < 0.03
    assert float(jnp.abs(g.mean(0)).max()) < 0.05


def test_an_euler_maruyama_step_is_drift_plus_scaled_noise():
    block, v, dt = ShapedBlock(), _v(), 0.01
    key = jax.random.key(3)
    path = sde_covariances(v, key, time=dt, steps=1, block=block)
    k = jax.random.split(key, 1)[0]
    want = v + sde_drift(v, block) * dt + math.sqrt(dt) * sde_noise(v, k, block)
    np.testing.assert_allclose(path[1], want, rtol=1e-6)
    assert path.shape == (2, 4, 4)
    np.testing.assert_allclose(path[0], v)


def test_network_covariances_keep_every_kth_layer_and_start_at_v0():
    v = 0.5 * jnp.eye(8) + 0.5
    out = network_covariances(v, jax.random.key(0), 32, 12, ShapedBlock(), every=4)
    assert out.shape == (4, 8, 8)
    np.testing.assert_allclose(out[0], v)
    assert float(pair_correlation(out[0])) == pytest.approx(0.5)
    assert np.isfinite(np.asarray(out)).all()


def test_the_unshaped_attention_has_no_sde_and_bad_blocks_are_refused():
    with pytest.raises(ValueError, match="shaped"):
        sde_drift(_v(), ShapedBlock(attention="softmax"))
    for kwargs, key in (({"gamma": 1.5}, "gamma"), ({"tau0": 0}, "tau0"),
                        ({"attention": "linear"}, "attention"), ({"key_width": -1},
                                                                 "key_width"),
                        ({"logits": "layer_norm"}, "logits")):
        with pytest.raises(ConfigError, match=key):
            ShapedBlock(**kwargs)
    with pytest.raises(ValueError, match="2m"):
        layer_covariance(_v(8), jax.random.key(0), 12, ShapedBlock())
