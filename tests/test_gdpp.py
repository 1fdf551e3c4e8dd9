import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.engine import regression_loss
from iclab.models import DiagonalLSA, FullLSA, LSATransformer, LSATransformerConfig
from iclab.solvers import fit_gdpp, gd_predict, tune_gdpp_tied
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
