"""Sequence tasks, causal/mesa models and autoregressive learners (von Oswald et al. 2023)
against closed forms, direct solves and independent numpy implementations."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.engine import OptimConfig, TrainConfig, Trainer, dynamics_problem, sequence_loss_per_step
from iclab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    causal_linear_attention,
    causal_softmax_pattern,
    mesa_attention,
    mesa_attention_forgetting,
)
from iclab.solvers import (
    ar_gd_predictions,
    ar_ridge_predictions,
    preconditioned_gd_predictions,
    softmax_kernel_predictions,
)
from iclab.tasks import DynamicsTask, constructed_tokens, past_states

IDENTITY = lambda s: s  # noqa: E731


# -- tasks ----------------------------------------------------------------------------
def test_linear_system_is_orthogonal_and_follows_the_recursion(key):
    task = DynamicsTask(state_dim=4, length=30, noise_std=0.05)
    batch = task.sample_batch(key, 64)
    assert batch.states.shape == (64, 31, 4) and batch.inputs.shape == (64, 30, 4)
    eye = np.eye(4)
    np.testing.assert_allclose(np.einsum("bji,bjk->bik", batch.w, batch.w), np.broadcast_to(
        eye, (64, 4, 4)), atol=1e-5)
    residual = batch.targets - np.einsum("bij,btj->bti", batch.w, batch.inputs)
    assert abs(np.std(residual) / 0.05 - 1) < 0.03  # the transition noise, σ = 0.05
    assert np.all(np.abs(batch.states[:, 0]) <= 1.0)


def test_first_step_loss_and_noise_floor_match_monte_carlo(key):
    task = DynamicsTask()
    batch = task.sample_batch(key, 8192)
    first = 0.5 * np.mean(np.sum(np.asarray(batch.states[:, 1]) ** 2, -1))
    assert abs(first / task.first_step_loss() - 1) < 0.02
    assert abs(task.first_step_loss() - 0.5 * 10 * (1 / 3 + 1e-4)) < 1e-12
    oracle = np.einsum("bij,btj->bti", batch.w, batch.inputs)
    floor = 0.5 * np.mean(np.sum((oracle - np.asarray(batch.targets)) ** 2, -1))
    assert abs(floor / task.noise_floor() - 1) < 0.02
    gaussian = DynamicsTask(init_dist="gaussian")
    assert gaussian.first_step_loss() == pytest.approx(0.5 * 10 * (1 + 1e-4))


def test_fixed_teacher_shares_one_system(key):
    task = DynamicsTask(state_dim=3, fixed_teacher=True, teacher_seed=5)
    batch = task.sample_batch(key, 8)
    np.testing.assert_array_equal(batch.w, np.broadcast_to(batch.w[0], batch.w.shape))
    other = DynamicsTask(state_dim=3).sample_batch(key, 8)
    assert not np.allclose(other.w[0], other.w[1])


def test_contracting_system_eigenvalues(key):
    batch = DynamicsTask(state_dim=6, dynamics="contracting").sample_batch(key, 32)
    moduli = np.abs(np.linalg.eigvals(np.asarray(batch.w, np.float64)))
    assert moduli.min() >= 0.3 - 1e-4 and moduli.max() <= 0.9 + 1e-4
    singular = np.linalg.svd(np.asarray(batch.w, np.float64), compute_uv=False)
    assert singular.min() >= 0.3 - 1e-4 and singular.max() <= 0.9 + 1e-4


def test_partially_observed_and_nonlinear_shapes(key):
    part = DynamicsTask(state_dim=5, hidden_dim=15).sample_batch(key, 4)
    assert part.states.shape == (4, 51, 5) and part.w.shape == (4, 15, 15)
    task = DynamicsTask(state_dim=4, dynamics="nonlinear", noise_std=0.0)
    nonlin = task.sample_batch(key, 4)
    # h_{t+1} = W* m/‖m‖ with W* orthogonal: unit norm after the first step
    np.testing.assert_allclose(np.linalg.norm(nonlin.states[:, 1:], axis=-1), 1.0, atol=1e-5)


def test_task_rejects_bad_values():
    with pytest.raises(ConfigError, match="task.dynamics"):
        DynamicsTask(dynamics="chaotic")
    with pytest.raises(ConfigError, match="task.state_dim"):
        DynamicsTask(state_dim=0)


def test_constructed_tokens_layout():
    s = jnp.arange(1.0, 7.0).reshape(3, 2)  # s_1, s_2, s_3
    tokens = np.asarray(constructed_tokens(s))
    expected = np.array([[0, 0, 1, 2, 1, 2, 0, 0],
                         [0, 0, 3, 4, 3, 4, 1, 2],
                         [0, 0, 5, 6, 5, 6, 3, 4]], float)
    np.testing.assert_array_equal(tokens, expected)
    masked = np.asarray(constructed_tokens(s, mask_query=True))
    np.testing.assert_array_equal(masked[:, 2:4], 0)
    three = np.asarray(constructed_tokens(s, copies=3))
    np.testing.assert_array_equal(three[2, 4:], [5, 6, 3, 4, 1, 2])
    np.testing.assert_array_equal(np.asarray(past_states(s, 2)), [[0, 0], [0, 0], [1, 2]])


# -- autoregressive learners -------------------------------------------------------------
def _states(key, t=9, n=3):
    return DynamicsTask(state_dim=n, length=t, noise_std=0.1).sample(key).inputs


def test_ar_ridge_equals_numpy_ridge_at_every_step(key):
    s = np.asarray(_states(key), np.float64)
    lam = 0.3
    preds = np.asarray(ar_ridge_predictions(jnp.asarray(s), lam))
    for t in range(len(s)):
        x, y = s[:t], s[1: t + 1]  # pairs (s_{t'}, s_{t'+1}), t' < t
        w = np.linalg.solve(x.T @ x + lam * np.eye(3), x.T @ y).T
        np.testing.assert_allclose(preds[t], w @ s[t], rtol=1e-4, atol=1e-5)
    assert np.all(preds[0] == 0)


def test_ar_gd_is_one_gradient_step_from_phi0(key):
    s = np.asarray(_states(key), np.float64)
    phi0 = np.asarray(jax.random.normal(jax.random.key(3), (3, 3)), np.float64) * 0.3
    eta = 0.07
    preds = np.asarray(ar_gd_predictions(jnp.asarray(s), jnp.asarray(phi0), eta))
    for t in range(len(s)):
        phi = jnp.asarray(phi0)
        loss = lambda p, t=t: 0.5 * jnp.sum((jnp.asarray(s[1: t + 1]) - jnp.asarray(s[:t]) @ p.T)
                                            ** 2)
        phi1 = np.asarray(phi - eta * jax.grad(loss)(phi))
        np.testing.assert_allclose(preds[t], phi1 @ s[t], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", ["frobenius", "trace"])
def test_preconditioned_gd_limits(key, norm):
    s = _states(key, t=8, n=3)
    lam = 0.5
    # many convergent steps and η = 1: AR ridge
    k = 3000
    alpha = 1.0 if norm == "frobenius" else 0.1
    many = preconditioned_gd_predictions(s, jnp.full((k,), alpha), jnp.zeros(k), 1.0, lam, norm)
    np.testing.assert_allclose(many, ar_ridge_predictions(s, lam), rtol=2e-3, atol=1e-4)
    # one step: GD from zero with step η α / c_t
    alpha, eta = 0.4, 2.0
    one = np.asarray(preconditioned_gd_predictions(s, jnp.array([alpha]), jnp.zeros(1), eta, lam,
                                                   norm))
    s64 = np.asarray(s, np.float64)
    for t in range(len(s64)):
        h = s64[:t].T @ s64[:t] + lam * np.eye(3)
        c = np.linalg.norm(h, "fro") if norm == "frobenius" else np.trace(h) / 3
        gd = np.asarray(ar_gd_predictions(s, jnp.zeros((3, 3)), eta * alpha / c))[t]
        np.testing.assert_allclose(one[t], gd, rtol=1e-4, atol=1e-6)


def test_preconditioned_gd_frobenius_scale_is_a_safeguard(key):
    """States along one direction: H̃'s top eigenvalue is ≈ n under the trace scale, ≤ 1
    under the Frobenius one. Steps α = 1.5 then diverge under the first (|1 − 1.5 n| > 1)
    and stay within ridge's error under the second."""
    k_a, k_e = jax.random.split(key)
    u = jnp.array([1.0, 2.0, -1.0]) / jnp.sqrt(6.0)
    s = jax.random.normal(k_a, (40, 1)) * u[None] + 1e-2 * jax.random.normal(k_e, (40, 3))
    k = 20
    run = lambda norm: np.asarray(preconditioned_gd_predictions(
        s, jnp.full((k,), 1.5), jnp.zeros(k), 1.0, 1e-2, norm))
    ridge = np.asarray(ar_ridge_predictions(s, 1e-2))
    scale = np.abs(np.asarray(s)).max()
    assert np.abs(run("trace")).max() > 1e6 * scale
    frob = run("frobenius")
    assert np.all(np.isfinite(frob)) and np.abs(frob).max() < 10 * scale
    err = lambda p: np.mean(np.sum((p[:-1] - np.asarray(s[1:])) ** 2, -1))
    assert err(frob) < 2 * err(ridge) + 1e-3


def test_preconditioned_gd_refuses_unknown_norm(key):
    with pytest.raises(ValueError, match="norm='spectral'"):
        preconditioned_gd_predictions(_states(key, t=4, n=2), jnp.ones(1), jnp.zeros(1), 1.0,
                                      1.0, "spectral")


def test_softmax_kernel_regression_matches_numpy(key):
    s = np.asarray(_states(key), np.float64)
    beta = 1.7
    preds = np.asarray(softmax_kernel_predictions(jnp.asarray(s), beta))
    np.testing.assert_array_equal(preds[0], 0)
    for t in range(1, len(s)):
        logits = beta * s[:t] @ s[t]
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        np.testing.assert_allclose(preds[t], weights @ s[1: t + 1], rtol=1e-4, atol=1e-6)


# -- attention layers -------------------------------------------------------------------
def _qkv(key, t=10, d=4, dv=3):
    kq, kk, kv = jax.random.split(key, 3)
    return (0.8 * jax.random.normal(kq, (t, d)), 0.8 * jax.random.normal(kk, (t, d)),
            0.8 * jax.random.normal(kv, (t, dv)))


def _direct_mesa(q, k, v, lam, gamma=1.0):
    """float64 ridge solve at every t, pairs weighted by γ^{t−t'} (the prior by γ^t)."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    out = []
    for t in range(len(q)):
        weights = gamma ** (t - np.arange(t + 1))
        h = (k[: t + 1].T * weights) @ k[: t + 1] + gamma ** (t + 1) * np.eye(k.shape[1]) / lam
        g = (v[: t + 1].T * weights) @ k[: t + 1]
        out.append(g @ np.linalg.solve(h, q[t]))
    return np.stack(out)


def test_causal_linear_attention_and_softmax_pattern(key):
    q, k, v = _qkv(key)
    out = np.asarray(causal_linear_attention(q, k, v))
    q64, k64, v64 = (np.asarray(a, np.float64) for a in (q, k, v))
    for t in range(len(q)):
        np.testing.assert_allclose(out[t], (k64[: t + 1] @ q64[t]) @ v64[: t + 1], rtol=1e-4,
                                   atol=1e-5)
    pattern = np.asarray(causal_softmax_pattern(q, k))
    np.testing.assert_allclose(pattern.sum(-1), 1.0, rtol=1e-6)
    assert np.all(np.triu(pattern, 1) == 0)
    logits = q64[5] @ k64[:6].T / 2.0
    np.testing.assert_allclose(pattern[5, :6], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)


def test_mesa_layer_equals_direct_ridge_solve(key):
    q, k, v = _qkv(key)
    for lam in (0.05, 1.0, 20.0):
        np.testing.assert_allclose(mesa_attention(q, k, v, jnp.asarray(lam)),
                                   _direct_mesa(q, k, v, lam), rtol=2e-4, atol=2e-5)
    # forget factor: γ-weighted ridge; γ = 1 equals the plain layer
    np.testing.assert_allclose(mesa_attention_forgetting(q, k, v, jnp.asarray(0.7), 0.8),
                               _direct_mesa(q, k, v, 0.7, 0.8), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(mesa_attention_forgetting(q, k, v, jnp.asarray(0.7), 1.0),
                               mesa_attention(q, k, v, jnp.asarray(0.7)), rtol=1e-5, atol=1e-6)
    # λ → 0: out / λ → linear attention (the layer reduces to LSA)
    lam = 1e-5
    np.testing.assert_allclose(np.asarray(mesa_attention(q, k, v, jnp.asarray(lam))) / lam,
                               causal_linear_attention(q, k, v), rtol=1e-3, atol=1e-3)


def test_mesa_custom_vjp_agrees_with_autodiff(key):
    with jax.enable_x64(True):
        q, k, v = (jnp.asarray(a, jnp.float64) for a in _qkv(key))
        lam = jnp.asarray(0.6, jnp.float64)
        w = jax.random.normal(jax.random.key(9), (10, 3), jnp.float64)
        custom = jax.grad(lambda *a: jnp.sum(w * mesa_attention(*a)), argnums=(0, 1, 2, 3))
        plain = jax.grad(lambda *a: jnp.sum(w * mesa_attention_forgetting(*a, 1.0)),
                         argnums=(0, 1, 2, 3))
        for a, b in zip(custom(q, k, v, lam), plain(q, k, v, lam), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _construction(kind: str, n: int, scale: float):
    """One head on constructed tokens [0, 0, s_t, s_{t−1}]: q = s_t, k = s_{t−1}, v = s_t,
    P writes scale · v into the prediction slot."""
    config = CausalTransformerConfig(layers=(kind,), heads=1, key_size=n).resolve(4 * n, n)
    model = CausalTransformer(config, key=jax.random.key(0))
    eye, zero = np.eye(n), np.zeros((n, n))
    w_q = np.concatenate([zero, zero, eye, zero], 1)[None]
    w_k = np.concatenate([zero, zero, zero, eye], 1)[None]
    w_p = np.concatenate([scale * eye, zero, zero, zero], 0)[None]
    layer = model.layers[0]
    layer = eqx_set(layer, w_q=w_q, w_k=w_k, w_v=w_q, w_p=w_p)
    return eqx_set(model, layers=(layer,))


def eqx_set(module, **values):
    import equinox as eqx

    for name, value in values.items():
        if not isinstance(value, tuple):
            value = jnp.asarray(value, jnp.float32)
        module = eqx.tree_at(lambda m, name=name: getattr(m, name), module, value)
    return module


def test_constructed_linear_layer_is_proposition_1_and_mesa_layer_is_ar_ridge(key):
    """Proposition 1 / the mesa construction: exact weights on constructed tokens."""
    n = 3
    s = _states(key, t=12, n=n)
    tokens = constructed_tokens(s, mask_query=True)
    eta = 0.2
    lsa = _construction("linear", n, eta)
    np.testing.assert_allclose(lsa(tokens), ar_gd_predictions(s, jnp.zeros((n, n)), eta),
                               rtol=1e-4, atol=1e-6)
    mesa = _construction("mesa", n, 1.0)
    mesa = eqx_set(mesa, layers=(eqx_set(mesa.layers[0], lam=[1 / 0.4]),))
    np.testing.assert_allclose(mesa(tokens), ar_ridge_predictions(s, 0.4), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("layers", [("linear", "linear"), ("softmax", "mesa")])
def test_causal_transformer_is_causal(key, layers):
    config = CausalTransformerConfig(layers=layers, heads=2, key_size=4, dim=8, readout="linear",
                                     mlp=True, layer_norm=True, positions=6, init_std=0.3,
                                     forget=True).resolve(3, 3)
    model = CausalTransformer(config, key=key)
    s = _states(key, t=10, n=3)
    out = model(s)
    changed = model(s.at[6].add(1.0))
    np.testing.assert_allclose(out[:6], changed[:6], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[6:], changed[6:])
    assert model.residual_stream(s).shape == (3, 10, 8)
    patterns = model.attention_patterns(s)
    assert patterns.shape == (2, 2, 10, 10)
    if layers[0] == "softmax":
        np.testing.assert_allclose(patterns[0].sum(-1), 1.0, rtol=1e-5)


def test_clip_bounds_the_residual_stream(key):
    config = CausalTransformerConfig(layers=("linear",) * 2, heads=2, key_size=4, init_std=1.0,
                                     clip=1.5).resolve(12, 3)
    model = CausalTransformer(config, key=key)
    stream = model.residual_stream(constructed_tokens(_states(key, t=10, n=3)))
    assert np.abs(stream[1:]).max() <= 1.5


def test_config_rejects_unknown_layer_kind():
    with pytest.raises(ConfigError, match="model.layers"):
        CausalTransformerConfig(layers=("linear", "rnn"))


def test_mesa_model_trains_with_the_engine():
    task = DynamicsTask(state_dim=3, length=8)
    config = CausalTransformerConfig(layers=("mesa",), heads=1, key_size=3,
                                     init_std=0.3).resolve(12, 3)
    tokens = functools.partial(constructed_tokens, mask_query=True)
    problem = dynamics_problem(task, lambda k: CausalTransformer(config, key=k), tokens=tokens)
    trainer = Trainer(problem, OptimConfig(lr=1e-2, b2=0.999),
                      TrainConfig(steps=200, batch_size=64, eval_every=100, seeds=2))
    eval_batch = task.sample_batch(jax.random.key(5), 256)
    state = trainer.init()
    before = trainer.evaluate(state, eval_batch)["test_loss"]
    state, _ = trainer.chunk(state, 200)
    after = trainer.evaluate(state, eval_batch)["test_loss"]
    assert np.all(after < 0.7 * before)
    zero = sequence_loss_per_step(lambda s: jnp.zeros_like(s), eval_batch, IDENTITY)
    assert np.all(after < 0.7 * float(zero.mean()))


def test_fit_gd_step_is_a_stationary_point_and_beats_phi0_zero(key):
    from iclab.solvers import fit_gd_step

    batch = DynamicsTask(state_dim=3, length=10, noise_std=0.1).sample_batch(key, 256)
    phi0, eta = fit_gd_step(batch.inputs, iterations=60)

    def loss(phi0, eta):
        preds = jax.vmap(lambda s: ar_gd_predictions(s, phi0, eta))(batch.inputs)
        return jnp.sum((preds - batch.targets)[:, :-1] ** 2)

    grads = jax.grad(loss, argnums=(0, 1))(phi0, eta)
    assert float(jnp.abs(grads[0]).max()) < 1e-3 * float(loss(phi0, eta))
    assert abs(float(grads[1])) < 1e-3 * float(loss(phi0, eta))
    zero = jnp.zeros((3, 3))
    best_zero = min(float(loss(zero, e)) for e in np.linspace(0.5, 1.5, 41) * float(eta))
    assert float(loss(phi0, eta)) <= best_zero
