import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.engine import regression_loss
from iclab.models import DiagonalLSA, FullLSA, LSATransformer, LSATransformerConfig
from iclab.solvers import (
    fit_gdpp,
    fit_gdpp_population,
    gd_predict,
    gdpp_population_loss,
    gdpp_spectral_residual,
    tune_gdpp_tied,
    wishart_eigenvalues,
)
from iclab.tasks import LinearRegressionTask, to_tokens


def numpy_gdpp(x, y, xq, gammas, etas):
    """Independent GD++ (float64): precondition x by (I − γΣ) and take a GD step on y,
    both from the tokens before the update; returns −y_query."""
    x, y, xq = (np.asarray(a, np.float64) for a in (x, y, xq))
    n, yq = len(y), 0.0
    for gamma, eta in zip(gammas, etas, strict=True):
        sigma, alpha = x.T @ x, x.T @ y
        x, xq, y, yq = (x - gamma * x @ sigma, xq - gamma * sigma @ xq,
                        y - eta / n * x @ alpha, yq - eta / n * alpha @ xq)
    return -yq


def test_diagonal_lsa_with_only_omega_yx_is_gd(key):
    batch = LinearRegressionTask().sample_batch(key, 64)
    model = DiagonalLSA.gd(2.5, 10, 4)
    expected = jax.vmap(gd_predict, in_axes=(0, None, None))(batch, 2.5, 4)
    np.testing.assert_allclose(jax.vmap(model)(jax.vmap(to_tokens)(batch)), expected,
                               rtol=1e-5, atol=1e-6)


def test_gdpp_matches_numpy(key):
    example = LinearRegressionTask(d=4, n_context=12).sample(key)
    gammas, etas = [0.05, 0.2, 0.1], [3.0, 1.0, 2.0]
    omegas = jnp.array([[-g, 0.0, -e / 12, 0.0] for g, e in zip(gammas, etas, strict=True)])
    model = DiagonalLSA(omegas, 3, parametrization="gdpp")
    assert float(model(to_tokens(example))) == pytest.approx(
        numpy_gdpp(example.x, example.y, example.x_query, gammas, etas), rel=1e-4, abs=1e-5)


def test_diag_layer_equals_an_lsa_with_diagonal_p_and_q(key):
    """P = diag(p_x I, p_y), Q = diag(q_x I, q_y) give ω = (p_x q_x, p_x q_y, p_y q_x, p_y q_y)."""
    d, (px, py, qx, qy) = 5, (0.3, -0.7, 0.9, 0.4)
    lsa = LSATransformer(LSATransformerConfig(dim=d + 1), key=key)
    eye = jnp.eye(d + 1)[None]
    w_q = jnp.diag(jnp.array([qx] * d + [qy]))[None]
    w_p = jnp.diag(jnp.array([px] * d + [py]))[None]
    lsa = eqx.tree_at(lambda m: (m.blocks[0].attn.w_q, m.blocks[0].attn.w_k,
                                 m.blocks[0].attn.w_v, m.blocks[0].attn.w_p),
                      lsa, (w_q, eye, eye, w_p))
    diag = DiagonalLSA(jnp.array([[px * qx, px * qy, py * qx, py * qy]]), 1)
    single_head = DiagonalLSA(jnp.array([[px, py, qx, qy]]), 1, parametrization="pq")
    tokens = jax.random.normal(jax.random.key(3), (9, d + 1))
    for model in (diag, single_head):
        np.testing.assert_allclose(model.residual_stream(tokens)[-1],
                                   lsa.residual_stream(tokens)[-1], rtol=1e-5, atol=1e-5)


def test_gd_plus_plus_masks_the_other_coefficients(key):
    model = DiagonalLSA(jnp.ones((1, 4)), 2, parametrization="gdpp")
    np.testing.assert_array_equal(model.layer_omegas(0), [1.0, 0.0, 1.0, 0.0])
    grads = jax.grad(lambda m: m(jax.random.normal(key, (6, 4))))(model)
    assert np.all(np.asarray(grads.coefficients)[:, [1, 3]] == 0)


def test_tied_line_search_and_adam_refinement(key):
    task = LinearRegressionTask(d=4, n_context=8)
    batch = task.sample_batch(key, 2000)
    eta, gamma, loss = tune_gdpp_tied(batch, 2)
    assert gamma == pytest.approx(eta / 64)
    for other in (0.9 * eta, 1.1 * eta):
        other_loss = float(regression_loss(DiagonalLSA.gdpp(other, other / 64, 8, 2), batch))
        assert other_loss >= loss - 1e-6
    gd_loss = min(float(regression_loss(DiagonalLSA.gd(e, 8, 2), batch))
                  for e in np.linspace(0.5, 12, 60))
    assert loss < gd_loss  # preconditioning helps
    tuned = fit_gdpp(task, batch, 2, recurrent=False, adam_steps=50, batch_size=256)
    assert tuned.coefficients.shape == (2, 4)
    assert float(regression_loss(tuned, batch)) <= loss + 1e-6


def numpy_full_lsa(tokens, ps, qs):
    """Independent FULL LSA (float64): e_i ← e_i + P (Σ_{j≤N} e_j e_jᵀ) Q e_i per layer,
    the last token (the query) excluded from the sum; returns −y_query."""
    e = np.asarray(tokens, np.float64)
    for p, q in zip(ps, qs, strict=True):
        gram = sum(np.outer(t, t) for t in e[:-1])
        e = np.stack([t + np.asarray(p, np.float64) @ gram @ np.asarray(q, np.float64) @ t
                      for t in e])
    return -e[-1, -1]


def test_full_lsa_matches_numpy_and_the_factored_lsa(key):
    d, layers = 4, 3
    model = FullLSA.random(d + 1, layers, 0.2, key=key)
    example = LinearRegressionTask(d=d, n_context=7).sample(jax.random.key(1))
    tokens = to_tokens(example)
    assert float(model(tokens)) == pytest.approx(
        numpy_full_lsa(tokens, model.p, model.q), rel=1e-4, abs=1e-5)
    # The four-factor LSATransformer with W_Q W_Kᵀ = Qᵀ and W_V W_P = Pᵀ is the same map.
    lsa = LSATransformer(LSATransformerConfig(dim=d + 1, layers=layers, recurrent=False),
                         key=key)
    eye = jnp.eye(d + 1)[None]
    for layer in range(layers):
        lsa = eqx.tree_at(lambda m, i=layer: (m.blocks[i].attn.w_q, m.blocks[i].attn.w_k,
                                              m.blocks[i].attn.w_v, m.blocks[i].attn.w_p),
                          lsa, (model.q[layer].T[None], eye, eye, model.p[layer].T[None]))
    np.testing.assert_allclose(model.layer_predictions(tokens), lsa.layer_predictions(tokens),
                               rtol=1e-4, atol=1e-5)


def test_full_lsa_with_diagonal_p_and_q_is_the_single_head_diag(key):
    d, (px, py, qx, qy) = 5, (0.3, -0.7, 0.9, 0.4)
    p = jnp.diag(jnp.array([px] * d + [py]))[None]
    q = jnp.diag(jnp.array([qx] * d + [qy]))[None]
    tokens = jax.random.normal(key, (9, d + 1))
    single_head = DiagonalLSA(jnp.array([[px, py, qx, qy]]), 1, parametrization="pq")
    np.testing.assert_allclose(FullLSA(p, q).residual_stream(tokens),
                               single_head.residual_stream(tokens), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        FullLSA(p, q[:, :3])


def test_gdpp_error_is_a_polynomial_in_the_context_gram_matrix(key):
    """Noise-free GD++: ŷ − y_q = −⟨r(Σ) w, x_q⟩ with r(λ) from ``gdpp_spectral_residual``,
    per sequence, to float64 precision (r(Σ) built from numpy's eigendecomposition)."""
    with jax.enable_x64(True):
        task = LinearRegressionTask(d=6, n_context=14, noise_dist="fixed", noise_std=0.0,
                                    query_noise=False)
        batch = task.sample_batch(key, 32)
        omegas = jnp.array([[-0.02, -0.05], [-0.004, -0.08], [0.003, -0.03]])
        model = DiagonalLSA(jnp.stack([omegas[:, 0], jnp.zeros(3), omegas[:, 1],
                                       jnp.zeros(3)], 1), 3, "gdpp")
        errors = jax.vmap(model)(jax.vmap(to_tokens)(batch)) - batch.y_query
        x, w, xq = (np.asarray(a) for a in (batch.x, batch.w, batch.x_query))
        lam, vec = np.linalg.eigh(np.einsum("bnd,bne->bde", x, x))
        r = np.asarray(gdpp_spectral_residual(omegas, jnp.asarray(lam)))
        expected = -np.einsum("bij,bj,bkj,bk,bi->b", vec, r, vec, w, xq)
        np.testing.assert_allclose(np.asarray(errors), expected, rtol=1e-10, atol=1e-12)
        assert np.max(np.abs(expected)) > 0.1  # not trivially zero


def test_population_fit_one_layer_is_the_closed_form(key):
    """L = 1: r = 1 + bλ, so b* = −E λ / E λ² and the loss is (D/2)(1 − (Eλ)²/Eλ²); for
    Wishart Σ = XᵀX, Eλ = N and Eλ² = N(N + D + 1), giving ½D(1 − N/(N + D + 1))."""
    with jax.enable_x64(True):
        d, n = 10, 20
        eig = wishart_eigenvalues(key, n, d, 4000)
        (omegas, loss), = fit_gdpp_population(1, eig, d)
        mean, second = float(jnp.mean(eig)), float(jnp.mean(eig**2))
        assert omegas[0, 1] == pytest.approx(-mean / second, rel=1e-8)
        assert loss == pytest.approx(0.5 * d * (1 - mean**2 / second), rel=1e-8)
        assert loss == pytest.approx(0.5 * d * (1 - n / (n + d + 1)), rel=0.02)


def test_population_fit_of_gd_is_the_least_squares_polynomial(key):
    """Plain GD over L layers makes r any degree-L polynomial with r(0) = 1 whose roots are
    real, and the least-squares one, min E(1 + c₁λ + … + c_Lλ^L)², has real roots (an
    orthogonal polynomial): the fit must reach numpy's lstsq value."""
    with jax.enable_x64(True):
        d, n, depth = 4, 10, 3
        eig = wishart_eigenvalues(key, n, d, 3000)
        fits = fit_gdpp_population(depth, eig, d, precondition=False)
        lam = np.asarray(eig) / np.mean(np.asarray(eig))
        powers = np.stack([lam**k for k in range(1, depth + 1)], 1)
        coef, *_ = np.linalg.lstsq(powers, -np.ones_like(lam), rcond=None)
        best = 0.5 * d * np.mean((1 + powers @ coef) ** 2)
        assert fits[-1][1] == pytest.approx(best, rel=1e-6)
        assert np.all(fits[-1][0][:, 0] == 0.0)


def test_population_fit_of_gdpp_two_layers_is_the_global_optimum(key):
    """L = 2 has 3 effective coefficients (the last ω_xx is unused): a grid over the first
    layer with the exact best last step finds the global optimum, which the fit reaches;
    GD++ beats GD at equal depth and its loss matches the model's on a batch."""
    with jax.enable_x64(True):
        d, n = 10, 20
        eig = wishart_eigenvalues(key, n, d, 1000)
        fits = fit_gdpp_population(2, eig, d)

        def loss_with_best_last_step(a1, b1):
            first = jnp.array([[a1, b1]])
            u = eig * (1 + a1 * eig) ** 2
            r1 = 1 + b1 * eig
            b2 = -jnp.mean(r1**2 * u) / jnp.mean(r1**2 * u**2)
            return gdpp_population_loss(jnp.concatenate([first, jnp.array([[0.0, b2]])]),
                                        eig, d)

        a_grid, b_grid = jnp.linspace(-0.04, 0.0, 81), jnp.linspace(-0.12, 0.0, 121)
        grid = jax.jit(jax.vmap(jax.vmap(loss_with_best_last_step, (None, 0)), (0, None)))
        best = float(jnp.min(grid(a_grid, b_grid)))
        assert fits[-1][1] <= best * (1 + 1e-3)
        assert fits[-1][1] < 0.8 * fit_gdpp_population(2, eig, d, precondition=False)[-1][1]
