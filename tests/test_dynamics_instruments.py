"""Training-dynamics instruments against ground truth: closed forms, hand-made matrices,
exact Hessians (``jax.hessian``), explicit Jacobians, numpy re-implementations, and Monte
Carlo against analytic expectations."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from iclab.instruments import (
    absorbed_fraction,
    absorption_threshold,
    adam_diagonal,
    attention_entropy,
    density_on_grid,
    directional_curvature,
    empirical_ntk,
    entropy_bound_beta,
    entropy_lower_bound,
    factor_metrics,
    hessian_operator,
    hutchinson_trace,
    kernel_distance,
    kernel_eigenvalues,
    kernel_target_alignment,
    lanczos_eigenvalues,
    layer_norms,
    line_profile,
    logit_gap,
    parameter_names,
    power_iteration,
    singular_value_metrics,
    spectral_density,
    spectral_norm,
)


@pytest.mark.parametrize("module", ["iclab.instruments._entropy", "iclab.instruments._spectra",
                                    "iclab.instruments._curvature", "iclab.instruments._ntk",
                                    "iclab.instruments._trajectory", "iclab.engine._memory",
                                    "iclab.engine._optim", "iclab.engine._data",
                                    "iclab.engine._concurrent", "iclab.models._rows",
                                    "iclab.tasks._orthogonal",
                                    "iclab.tasks._modular", "iclab.tasks._parity",
                                    "iclab.config"])
def test_docstring_examples_run(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


# -- attention entropy ------------------------------------------------------------------
def _softmax_causal(logits):
    t = logits.shape[-1]
    masked = np.where(np.tril(np.ones((t, t), bool)), logits, -np.inf)
    e = np.exp(masked - masked.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_attention_entropy_matches_numpy_and_closed_forms():
    rng = np.random.default_rng(0)
    patterns = _softmax_causal(rng.normal(size=(2, 3, 7, 7)) * 3)
    raw, normalised = attention_entropy(jnp.asarray(patterns, jnp.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = -np.nansum(np.where(patterns > 0, patterns * np.log(patterns), 0), -1)
    keys = np.arange(1, 8)
    np.testing.assert_allclose(raw, rows.mean(-1), rtol=1e-5)
    np.testing.assert_allclose(normalised, (rows[..., 1:] / np.log(keys[1:])).mean(-1),
                               rtol=1e-5)
    # uniform causal attention: Ent(A_i) = log(i + 1), normalised 1
    uniform = np.tril(np.ones((5, 5))) / np.arange(1, 6)[:, None]
    raw, normalised = attention_entropy(jnp.asarray(uniform[None]))
    np.testing.assert_allclose(raw[0], np.log(np.arange(1, 6)).mean(), rtol=1e-6)
    np.testing.assert_allclose(normalised[0], 1.0, rtol=1e-6)
    # one-hot attention: entropy 0
    raw, normalised = attention_entropy(jnp.eye(4)[None])
    assert float(raw[0]) == 0.0 and float(normalised[0]) == 0.0


def test_entropy_lower_bound_holds_on_random_draws_and_is_tight():
    rng = np.random.default_rng(1)
    t, d, worst = 16, 32, np.inf
    for c in np.logspace(-2, 1, 40):
        for _ in range(50):
            x = rng.normal(size=(t, d)) / np.sqrt(d)
            w = c * rng.normal(size=(d, d)) / np.sqrt(d)
            logits = x @ w @ x.T
            e = np.exp(logits - logits.max(-1, keepdims=True))
            p = e / e.sum(-1, keepdims=True)
            entropy = -(p * np.log(p)).sum(-1).min()
            bound = float(entropy_lower_bound(float(entropy_bound_beta(x, w)), t))
            worst = min(worst, entropy - bound)
    assert worst >= -1e-9  # 2000 draws, no violation
    # tight: the extremal logit vector (a, b, …, b) with gap β has exactly that entropy
    for beta in (0.0, 0.5, 3.0, 12.0):
        logits = np.zeros(t)
        logits[0] = beta
        p = np.exp(logits) / np.exp(logits).sum()
        np.testing.assert_allclose(float(entropy_lower_bound(beta, t)),
                                   -(p * np.log(p)).sum(), rtol=1e-6)
    # and it decays exponentially in β: Ent ≈ (T−1) (β + 1) e^{−β} for large β
    beta = 30.0
    np.testing.assert_allclose(float(entropy_lower_bound(beta, t)),
                               (t - 1) * (beta + 1) * np.exp(-beta), rtol=1e-6)


@pytest.mark.parametrize("dtype, mantissa", [(np.float32, 24), (np.float64, 53)])
def test_absorption_threshold_against_float_arithmetic(dtype, mantissa):
    threshold = absorption_threshold(dtype)
    assert threshold == pytest.approx(mantissa * np.log(2))
    one = dtype(1)
    assert one + np.exp(dtype(-(threshold + 0.01))) == one  # absorbed
    assert one + np.exp(dtype(-(threshold - 0.01))) > one  # still counted
    with jax.enable_x64(dtype == np.float64):
        logits = jnp.array([[0.0, threshold + 0.5], [0.0, threshold - 0.5]], dtype)
        np.testing.assert_allclose(logit_gap(logits), [threshold + 0.5, threshold - 0.5],
                                   rtol=1e-6)
        assert float(absorbed_fraction(logits)) == 0.5
        assert float(jax.nn.softmax(logits[0])[1]) == 1.0  # saturated exactly


# -- spectra ----------------------------------------------------------------------------
def _orthogonal(rng, n):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q


def test_rank_metrics_on_hand_made_matrices():
    rng = np.random.default_rng(2)
    s = np.array([5.0, 1.0, 0.01, 0.001, 0.0])
    m = _orthogonal(rng, 5) @ np.diag(s) @ _orthogonal(rng, 5).T
    out = {k: float(v) for k, v in singular_value_metrics(jnp.asarray(m)).items()}
    assert out["rank@0.01"] == 2 and out["rank@0.001"] == 3  # s_i > τ s₁
    assert out["energy_rank"] == 2  # 25/26.0001 < 0.99 ≤ 26/26.0001
    np.testing.assert_allclose(out["stable_rank"], (s**2).sum() / 25, rtol=1e-5)
    p = s[s > 0] / s.sum()
    np.testing.assert_allclose(out["effective_rank"], np.exp(-(p * np.log(p)).sum()),
                               rtol=1e-5)
    np.testing.assert_allclose(out["nuclear"], s.sum(), rtol=1e-5)
    np.testing.assert_allclose(out["frobenius"], np.sqrt((s**2).sum()), rtol=1e-5)
    zero = singular_value_metrics(jnp.zeros((3, 3)))
    assert all(float(zero[k]) == 0 for k in ("rank@0.01", "energy_rank", "stable_rank",
                                              "effective_rank"))


def test_factor_metrics_balanced_and_rescaled_factors():
    rng = np.random.default_rng(3)
    u, v = _orthogonal(rng, 6)[:, :3], _orthogonal(rng, 6)[:, :3]
    s = np.array([3.0, 2.0, 0.5])
    a, b = u * np.sqrt(s), v * np.sqrt(s)  # balanced: AᵀA = BᵀB = diag(s)
    balanced = factor_metrics(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_allclose(balanced["nuclear_over_l2"], 1.0, rtol=1e-5)
    assert float(balanced["imbalance"]) < 1e-5
    c = 2.0  # A c, B / c: same product, ratio 2 / (c² + c⁻²), imbalance |c² − c⁻²| ‖s‖
    skewed = factor_metrics(jnp.asarray(a * c), jnp.asarray(b / c))
    np.testing.assert_allclose(skewed["nuclear_over_l2"], 2 / (c**2 + c**-2), rtol=1e-5)
    np.testing.assert_allclose(skewed["imbalance"], abs(c**2 - c**-2) * np.linalg.norm(s),
                               rtol=1e-5)


def test_spectral_norm_against_svd():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(7, 5)).astype(np.float32)
    sigma, u = spectral_norm(jnp.asarray(m), iters=100)
    np.testing.assert_allclose(sigma, np.linalg.svd(m, compute_uv=False)[0], rtol=1e-5)
    again, _ = spectral_norm(jnp.asarray(m), u=u, iters=1)  # warm start: one step suffices
    np.testing.assert_allclose(again, sigma, rtol=1e-5)


# -- curvature: against the exact Hessian of a small network (float64) -----------------
def _mlp_problem(seed=0, width=6):
    key = jax.random.key(seed)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    params = {"w1": jax.random.normal(k1, (3, width)), "b1": jnp.zeros(width),
              "w2": jax.random.normal(k2, (width, 2)) / np.sqrt(width)}
    x = jax.random.normal(k3, (16, 3))
    y = jax.random.normal(k4, (16, 2))

    def f(p, xi):
        return jnp.tanh(xi @ p["w1"] + p["b1"]) @ p["w2"]

    def loss(p):
        return 0.5 * jnp.mean(jnp.sum((jax.vmap(lambda xi: f(p, xi))(x) - y) ** 2, -1))

    return f, loss, params, x, y


def _exact_hessian(loss, params):
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.hessian(lambda z: loss(unravel(z)))(flat))


def _float64_hessian(seed):
    """(loss, float64 params, exact Hessian, the Hessian matvec, flat params); call under
    ``jax.enable_x64(True)``."""
    _, loss, params, _, _ = _mlp_problem(seed=seed)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    matvec, flat = hessian_operator(loss, params)
    return loss, params, _exact_hessian(loss, params), matvec, flat


def test_sharpness_by_power_iteration_and_lanczos_matches_the_exact_hessian():
    with jax.enable_x64(True):
        loss, params, h, matvec, flat = _float64_hessian(0)
        exact = np.linalg.eigvalsh(h)
        np.testing.assert_allclose(matvec(jnp.ones_like(flat)), h @ np.ones(h.shape[0]),
                                   rtol=1e-10)
        v0 = jax.random.normal(jax.random.key(9), flat.shape, flat.dtype)
        top, _ = jax.jit(lambda v: power_iteration(matvec, v, iters=500))(v0)
        np.testing.assert_allclose(float(top), exact[np.argmax(np.abs(exact))], rtol=1e-6)
        ritz = jax.jit(lambda v: lanczos_eigenvalues(matvec, v, h.shape[0]))(v0)
        np.testing.assert_allclose(ritz, exact, atol=1e-8)
        short = jax.jit(lambda v: lanczos_eigenvalues(matvec, v, 20))(v0)
        np.testing.assert_allclose(short[-1], exact[-1], rtol=1e-6)
        # preconditioned: D^{1/2} H D^{1/2} for per-parameter factors d
        diagonal = jax.tree.map(lambda a: jnp.full_like(a, 0.5), params)
        diagonal["w2"] = jnp.full_like(params["w2"], 4.0)
        d = np.asarray(ravel_pytree(diagonal)[0])
        scaled = np.sqrt(d)[:, None] * h * np.sqrt(d)[None]
        pre, _ = hessian_operator(loss, params, diagonal=diagonal)
        pre_ritz = jax.jit(lambda v: lanczos_eigenvalues(pre, v, h.shape[0]))(v0)
        np.testing.assert_allclose(pre_ritz, np.linalg.eigvalsh(scaled), atol=1e-8)


def test_hutchinson_trace_is_unbiased_within_its_analytic_spread():
    with jax.enable_x64(True):
        _, _, h, matvec, flat = _float64_hessian(1)
        samples = 2000
        estimate = float(jax.jit(lambda k: hutchinson_trace(matvec, flat, k, samples))(
            jax.random.key(3)))
        spread = np.sqrt(2 * ((h**2).sum() - (np.diag(h) ** 2).sum()) / samples)
        assert abs(estimate - np.trace(h)) < 5 * spread


def test_slq_quadrature_is_exact_for_low_degree_moments():
    with jax.enable_x64(True):
        _, _, h, matvec, flat = _float64_hessian(2)
        key = jax.random.key(5)
        nodes, weights = jax.jit(lambda k: spectral_density(matvec, flat, k, 10, 3))(key)
        probes = np.asarray(jax.random.rademacher(key, (3,) + flat.shape, flat.dtype))
        for s in range(3):
            v = probes[s] / np.linalg.norm(probes[s])
            for k in (0, 1, 2, 5):  # exact for degree < 2 · num_matvecs
                np.testing.assert_allclose((weights[s] * nodes[s] ** k).sum(),
                                           v @ np.linalg.matrix_power(h, k) @ v, rtol=1e-8,
                                           atol=1e-10)
        grid = jnp.linspace(nodes.min() - 1, nodes.max() + 1, 4001)
        mass = jnp.sum(density_on_grid(nodes, weights, grid, 0.05)) * (grid[1] - grid[0])
        np.testing.assert_allclose(mass, 1.0, rtol=1e-3)


def test_directional_curvature_from_three_forward_passes():
    with jax.enable_x64(True):
        loss, params, h, _, _ = _float64_hessian(3)
        direction = jax.grad(loss)(params)
        u = np.asarray(ravel_pytree(direction)[0])
        exact = u @ h @ u / (u @ u)
        np.testing.assert_allclose(directional_curvature(loss, params, direction, h=1e-4),
                                   exact, rtol=1e-5)


def test_adam_diagonal_against_the_bias_corrected_second_moment():
    from iclab.engine import OptimConfig, make_optimizer

    target = jnp.array([1.0, -2.0, 3.0])
    loss = lambda p: jnp.sum((p["w"] - target) ** 2 * jnp.array([1.0, 10.0, 0.1]))
    optimizer = make_optimizer(OptimConfig(name="adam", lr=0.1, b2=0.98), 10)
    params = {"w": jnp.zeros(3)}
    state = optimizer.init(params)
    nu = np.zeros(3)
    for _ in range(5):
        g = jax.grad(loss)(params)
        nu = 0.98 * nu + 0.02 * np.asarray(g["w"]) ** 2
        updates, state = optimizer.update(g, state, params)
        params = optax.apply_updates(params, updates)
    expected = 1 / (np.sqrt(nu / (1 - 0.98**5)) + 1e-8)
    np.testing.assert_allclose(adam_diagonal(state)["w"], expected, rtol=1e-5)


# -- empirical NTK ----------------------------------------------------------------------
def test_empirical_ntk_against_an_explicit_jacobian():
    f, _, params, x, _ = _mlp_problem(seed=4)
    flat, unravel = ravel_pytree(params)
    jac = np.stack([np.asarray(jax.jacfwd(lambda z, xi=xi: f(unravel(z), xi))(flat))
                    for xi in x[:5]])  # (N, C, P), forward mode
    full = empirical_ntk(f, params, x[:5], trace_outputs=False)
    np.testing.assert_allclose(full, np.einsum("ncp,mdp->nmcd", jac, jac), rtol=1e-4,
                               atol=1e-5)
    traced = empirical_ntk(f, params, x[:5], x[:3])
    np.testing.assert_allclose(traced, np.einsum("ncp,mcp->nm", jac, jac[:3]), rtol=1e-4,
                               atol=1e-5)
    k = np.asarray(empirical_ntk(f, params, x[:5]))
    np.testing.assert_allclose(kernel_eigenvalues(jnp.asarray(k)),
                               np.sort(np.linalg.eigvalsh(k))[::-1], rtol=1e-4, atol=1e-5)


def test_kernel_distance_and_alignment_closed_forms():
    k0 = jnp.eye(3)
    assert float(kernel_distance(k0, k0)) == 0.0
    np.testing.assert_allclose(kernel_distance(2 * k0, k0), 1.0, rtol=1e-6)
    y = jnp.array([1.0, -1.0, 2.0])
    np.testing.assert_allclose(kernel_target_alignment(jnp.outer(y, y), y), 1.0, rtol=1e-6)
    # identity kernel: ⟨I, yyᵀ⟩ = ‖y‖², ‖I‖ = √3, ‖yyᵀ‖ = ‖y‖²
    np.testing.assert_allclose(kernel_target_alignment(k0, y), 1 / np.sqrt(3), rtol=1e-6)


# -- norms and the fixed-batch line profile --------------------------------------------
def test_layer_norms_and_names_on_a_transformer():
    from iclab.models import CausalTransformer, CausalTransformerConfig

    config = CausalTransformerConfig.attention_only(dim=16, key_size=8).resolve(5, 5)
    model = CausalTransformer(config, key=jax.random.key(0))
    import equinox as eqx

    params = eqx.filter(model, eqx.is_array)
    names = parameter_names(params)
    assert len(names) == len(set(names)) == len(jax.tree.leaves(params))
    assert all("[" not in n and "'" not in n for n in names)
    norms = layer_norms(params, grads=params, updates=jax.tree.map(lambda a: 0.1 * a, params))
    for name, leaf in zip(names, jax.tree.leaves(params), strict=True):
        w = np.asarray(leaf).reshape(-1)
        np.testing.assert_allclose(norms[f"{name}/norm"], np.linalg.norm(w), rtol=1e-5)
        np.testing.assert_allclose(norms[f"{name}/rms"], np.sqrt(np.mean(w**2)), rtol=1e-5)
        if np.linalg.norm(w) > 0:
            np.testing.assert_allclose(norms[f"{name}/update_ratio"], 0.1, rtol=1e-5)


def test_line_profile_of_a_quadratic_is_exact():
    with jax.enable_x64(True):
        rng = np.random.default_rng(6)
        q = rng.normal(size=(4, 4))
        a_mat = jnp.asarray(q @ q.T + np.eye(4))
        b_vec = jnp.asarray(rng.normal(size=4))
        loss = lambda p, batch: 0.5 * p @ batch[0] @ p - batch[1] @ p + 10.0
        theta = jnp.asarray(rng.normal(size=4))
        out = line_profile(loss, theta, (a_mat, b_vec), jnp.linspace(0, 1, 9))
        g = np.asarray(a_mat @ theta - b_vec)
        np.testing.assert_allclose(out["r2"], 1.0, atol=1e-10)
        np.testing.assert_allclose(out["s_star"], g @ g / (g @ np.asarray(a_mat) @ g),
                                   rtol=1e-8)
        best = theta - out["s_star"] * g
        np.testing.assert_allclose(out["ratio"], loss(best, (a_mat, b_vec)) /
                                   loss(theta, (a_mat, b_vec)), rtol=1e-8)


# -- probes along a run (train.probes) ---------------------------------------------------
def test_probes_are_logged_along_a_run_and_match_direct_computation(tmp_path):
    import equinox as eqx

    from helpers import TASK, eval_batch, small_problem
    from iclab.engine import OptimConfig, ProbeConfig, TrainConfig, Trainer
    from iclab.store import RunDir

    probes = ProbeConfig(every=20, batch_size=64, sharpness=200, spectra=True)
    train = TrainConfig(steps=60, batch_size=64, eval_every=20, seeds=2, probes=probes)
    trainer = Trainer(small_problem(), OptimConfig(lr=1e-2), train)
    run = RunDir.create(tmp_path, "demo", {})
    state = trainer.fit(eval_batch(), run=run)
    rows = run.metrics()
    assert sorted(rows[rows.metric == "probe/loss"].step.unique()) == [0, 20, 40, 60]
    assert rows[rows.metric.str.endswith("/stable_rank")].metric.nunique() > 0

    batch = TASK.sample_batch(jax.random.key(probes.seed), probes.batch_size)
    for s, model in enumerate(trainer.models(state)):
        final = rows[(rows.step == 60) & (rows.seed == s)].set_index("metric").value
        np.testing.assert_allclose(final["probe/loss"],
                                   trainer.problem.loss(model, batch), rtol=1e-5)
        params, static = eqx.partition(model, eqx.is_array)
        h = _exact_hessian(lambda p, st=static: trainer.problem.loss(eqx.combine(p, st), batch),
                           params)
        eig = np.linalg.eigvalsh(h)
        np.testing.assert_allclose(final["probe/sharpness"], eig[np.argmax(np.abs(eig))],
                                   rtol=1e-3)
    again = Trainer(small_problem(), OptimConfig(lr=1e-2), train)
    again.fit(eval_batch())
    a = trainer.history.sort_values(["metric", "seed", "step"], ignore_index=True)
    b = again.history.sort_values(["metric", "seed", "step"], ignore_index=True)
    assert a.equals(b)  # deterministic (a fixed start vector, a fixed probe batch)


def test_lanczos_trace_line_and_ntk_probes_match_direct_computation():
    """The probes' Lanczos top eigenvalue against the exact Hessian (float64 numpy), the
    Hutchinson trace against the same estimator called directly and against the exact
    trace within 5 standard errors, the line profile against ``line_profile`` at the
    step's learning rate, and the NTK against ``empirical_ntk`` of the model now and at
    initialisation. In float64 (``train.precision``): the line profile's quadratic fit over
    three decades of step sizes is ill-conditioned, and float32 rounding inside and outside
    the compiled probe moves s* by percents."""
    import equinox as eqx

    from helpers import TASK, eval_batch, small_problem
    from iclab.engine import OptimConfig, ProbeConfig, TrainConfig, Trainer
    from iclab.instruments import (
        empirical_ntk,
        hessian_operator,
        hutchinson_trace,
        kernel_distance,
        line_profile,
    )

    probes = ProbeConfig(every=20, batch_size=32, norms=False, lanczos=40, hessian_trace=50,
                         line_profile=6, ntk=5, directional=True)
    train = TrainConfig(steps=40, batch_size=64, eval_every=20, seeds=1, probes=probes,
                        precision="float64")
    trainer = Trainer(small_problem(), OptimConfig(name="sgd", lr=1e-2), train)
    state = trainer.fit(eval_batch())
    with jax.enable_x64(True):
        final = trainer.history[trainer.history.step == 40].set_index("metric").value
        model = trainer.models(state)[0]
        batch = TASK.sample_batch(jax.random.key(probes.seed), probes.batch_size)
        params, static = eqx.partition(model, eqx.is_array)
        loss = lambda p: trainer.problem.loss(eqx.combine(p, static), batch)
        h = _exact_hessian(loss, params)
        eig = np.linalg.eigvalsh(h)
        np.testing.assert_allclose(final["probe/lanczos_top"], eig[-1], rtol=1e-3)
        g = np.asarray(ravel_pytree(jax.grad(loss)(params))[0])  # SGD: the step is −η g
        along = float(g @ (h @ g) / (g @ g))
        np.testing.assert_allclose(final["probe/update_curvature"], along, rtol=1e-4)
        np.testing.assert_allclose(final["probe/update_length"], 1e-2 * np.linalg.norm(g),
                                   rtol=1e-6)
        matvec, flat = hessian_operator(loss, params)
        direct = hutchinson_trace(matvec, flat, jax.random.key(probes.seed), 50)
        np.testing.assert_allclose(final["probe/hessian_trace"], direct, rtol=1e-5)
        se = np.sqrt(2 * (np.sum(h**2) - np.sum(np.diag(h) ** 2)) / 50)
        assert abs(final["probe/hessian_trace"] - np.trace(h)) < 5 * se
        grid = 1e-2 * np.concatenate([[0.0], 10.0 ** np.linspace(-1, 2, 5)])
        profile = line_profile(lambda p, b: trainer.problem.loss(eqx.combine(p, static), b),
                               params, batch, jnp.asarray(grid))
        np.testing.assert_allclose(final["probe/line/r2"], profile["r2"], rtol=1e-4)
        np.testing.assert_allclose(final["probe/line/s_star"], profile["s_star"] / 1e-2,
                                   rtol=1e-4)
        xs = trainer.problem.inputs(batch)[:5]
        kernel = np.asarray(empirical_ntk(lambda p, x: eqx.combine(p, static)(x), params, xs))
        np.testing.assert_allclose(final["probe/ntk/top"], np.linalg.eigvalsh(kernel)[-1],
                                   rtol=1e-4)
        np.testing.assert_allclose(final["probe/ntk/trace"], np.trace(kernel), rtol=1e-5)
        start = trainer.models(trainer.init())[0]
        p0, s0 = eqx.partition(start, eqx.is_array)
        k0 = empirical_ntk(lambda p, x: eqx.combine(p, s0)(x), p0, xs)
        np.testing.assert_allclose(final["probe/ntk/distance"],
                                   kernel_distance(jnp.asarray(kernel), k0), rtol=1e-4)
        assert trainer.history[(trainer.history.metric == "probe/ntk/distance")
                               & (trainer.history.step == 0)].value.iloc[0] == 0.0


def test_entropy_probe_reads_attention_through_the_interface():
    from iclab.engine import OptimConfig, ProbeConfig, Problem, TrainConfig, Trainer
    from iclab.models import CausalTransformer, CausalTransformerConfig

    config = CausalTransformerConfig.attention_only(layers=2, heads=2, dim=16, key_size=8,
                                                    init_std=0.5).resolve(5, 5)
    sample = lambda key, b: jax.nn.one_hot(jax.random.randint(key, (b, 6), 0, 5), 5)
    problem = Problem(init_model=lambda key: CausalTransformer(config, key=key),
                      sample_batch=sample,
                      loss=lambda m, x: jnp.mean(jax.vmap(m)(x) ** 2),
                      evaluate=lambda m, data: {}, inputs=lambda x: x)
    train = TrainConfig(steps=10, batch_size=8, eval_every=10, seeds=1,
                        probes=ProbeConfig(every=10, batch_size=16, norms=False, spectra=True,
                                           logits=True))
    trainer = Trainer(problem, OptimConfig(lr=1e-3), train)
    state = trainer.fit(None)
    model = trainer.models(state)[0]
    batch = sample(jax.random.key(train.probes.seed), 16)
    # numpy: each sequence's row entropies, the mean over queries, then over the batch
    patterns = np.asarray(jax.vmap(model.attention_patterns)(batch), np.float64)
    rows = -np.sum(np.where(patterns > 0, patterns * np.log(np.where(patterns > 0, patterns,
                                                                     1.0)), 0.0), axis=-1)
    raw = rows.mean(-1).mean(0)
    normalised = (rows[..., 1:] / np.log(np.arange(2, 7))).mean(-1).mean(0)
    last = trainer.history[trainer.history.step == 10].set_index("metric").value
    for layer in range(2):
        for head in range(2):
            np.testing.assert_allclose(last[f"probe/entropy/L{layer}H{head}"],
                                       raw[layer, head], rtol=1e-5)
            np.testing.assert_allclose(last[f"probe/entropy_norm/L{layer}H{head}"],
                                       normalised[layer, head], rtol=1e-5)
    assert not any(m.endswith("/norm") for m in last.index)  # norms off
    from iclab.instruments import absorbed_fraction, logit_gap

    outputs = jax.vmap(model)(batch)
    np.testing.assert_allclose(last["probe/logit_gap"], jnp.mean(logit_gap(outputs)),
                               rtol=1e-5)
    assert last["probe/absorbed_fraction"] == float(absorbed_fraction(outputs))
    from iclab.instruments import head_spectra

    initial = trainer.models(trainer.init())[0]
    spectra = head_spectra(model, initial)
    for key in ("qk/stable_rank", "ov/effective_rank", "dqk/stable_rank", "qk/sigma"):
        np.testing.assert_allclose(last[f"probe/heads/{key}/L1H0"], spectra[key][1, 0],
                                   rtol=1e-5)


def test_probe_interval_must_be_a_multiple_of_the_evaluation_interval():
    from iclab._errors import ConfigError
    from iclab.framework import make_config

    with pytest.raises(ConfigError, match="train.probes.every"):
        make_config("icl-gd", True, None, ["train.probes.every=150"])
    assert make_config("icl-gd", True, None, ["train.probes.every=300"])[1].train.probes.every \
        == 300


# -- per-head products through HeadWeightsModel ------------------------------------------
def test_head_products_reproduce_the_layers_logits_and_outputs():
    from iclab.instruments import head_products, head_spectra
    from iclab.models import CausalTransformer, CausalTransformerConfig

    config = CausalTransformerConfig(layers=("softmax", "linear"), heads=3, key_size=2,
                                     dim_in=6, dim=0, dim_out=6, init_std=0.4)
    model = CausalTransformer(config, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (7, 6))
    products = head_products(model)
    mask = np.tril(np.ones((7, 7), bool))
    for i, layer in enumerate(model.layers):
        p = products[i]
        logits = p["logit_scale"] * np.einsum("td,hed,se->hts", x, p["qk"], x)
        if layer.kind == "softmax":
            e = np.exp(np.where(mask, logits, -np.inf) - logits.max(-1, keepdims=True))
            expected = e / e.sum(-1, keepdims=True)
        else:
            expected = np.where(mask, logits, 0.0)
        np.testing.assert_allclose(layer.pattern(x), expected, rtol=1e-4, atol=1e-6)
        update = np.einsum("hts,se,hde->td", np.asarray(layer.pattern(x)), x, p["ov"])
        np.testing.assert_allclose(layer(x), update, rtol=1e-4, atol=1e-5)
    spectra = head_spectra(model, initial=model)
    assert spectra["qk/rank@0.01"].shape == (2, 3)
    assert float(spectra["qk/rank@0.01"].max()) <= 2  # rank ≤ the head size
    np.testing.assert_allclose(
        spectra["qk/sigma"][0], products[0]["logit_scale"] *
        np.linalg.svd(np.asarray(products[0]["qk"]), compute_uv=False)[:, 0], rtol=1e-5)
    assert float(jnp.abs(spectra["dqk/nuclear"]).max()) == 0.0  # no change from itself


def test_gpt_head_weights_split_its_fused_projections():
    from iclab.models import GPT, GPTConfig

    model = GPT(GPTConfig(dim_in=3, width=12, layers=1, heads=3, max_len=5),
                key=jax.random.key(2))
    block, weights = model.blocks[0], model.head_weights()[0]
    x = jax.random.normal(jax.random.key(3), (5, 12))
    fused = jax.vmap(lambda r: block.qkv.weight @ r)(x)  # no bias
    for i, name in enumerate(("q", "k", "v")):
        part = fused[:, i * 12:(i + 1) * 12].reshape(5, 3, 4).transpose(1, 0, 2)
        np.testing.assert_allclose(np.einsum("hkd,td->htk", weights[name], x), part,
                                   rtol=1e-5, atol=1e-6)
    mixed = jax.random.normal(jax.random.key(4), (5, 12))
    per_head = mixed.reshape(5, 3, 4)
    np.testing.assert_allclose(np.einsum("hdk,thk->td", weights["o"], per_head),
                               jax.vmap(lambda r: block.out.weight @ r)(mixed), rtol=1e-5,
                               atol=1e-6)
    assert weights["logit_scale"] == pytest.approx(0.5)
