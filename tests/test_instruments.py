import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.instruments import (
    cosine_similarity,
    effective_lr,
    interpolated_head,
    normalise_scale,
    prediction_difference,
    query_loss,
    query_sensitivity,
    sensitivity_agreement,
    weight_alignment,
)
from iclab.models import LSATransformer, LSATransformerConfig
from iclab.solvers import gd_construction, gd_weights
from iclab.tasks import LinearRegressionTask, to_tokens


def test_query_loss_is_half_mse():
    assert float(query_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))) == pytest.approx(1.25)


def test_cosine_similarity_hand_cases():
    a = jnp.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    b = jnp.array([[0.0, 3.0], [2.0, 2.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), [0.0, 1.0, -1.0], atol=1e-6)


def test_prediction_difference_hand_case():
    out = prediction_difference(jnp.array([1.0, 2.0, 2.0]), jnp.array([1.0, 1.0, 2.0]))
    assert float(out["mean_abs"]) == pytest.approx(1 / 3)
    assert float(out["relative"]) == pytest.approx(1 / np.sqrt(6))  # ‖(0,1,0)‖ / ‖(1,1,2)‖
    out = prediction_difference(jnp.array([3.0, 4.0]), jnp.array([0.0, 5.0]))
    assert float(out["relative"]) == pytest.approx(np.sqrt(10) / 5)


def test_sensitivity_of_the_construction_is_the_gd_weight_vector(key):
    example = LinearRegressionTask(d=5, n_context=7).sample(key)
    model = gd_construction(5, 7, lr=0.9)
    sens = query_sensitivity(model, to_tokens(example), 5)
    np.testing.assert_allclose(sens, gd_weights(example.x, example.y, 0.9, 1), rtol=1e-5,
                               atol=1e-6)


def test_sensitivity_agreement_hand_case():
    out = sensitivity_agreement(jnp.array([[1.0, 0.0], [0.0, 2.0]]),
                                jnp.array([[1.0, 0.0], [0.0, -2.0]]))
    assert float(out["cos"]) == pytest.approx(0.0, abs=1e-6)  # mean of 1 and −1
    assert float(out["l2"]) == pytest.approx(2.0)


def _rescaled(model, c):
    attn = model.blocks[0].attn
    return LinearSelfAttention_replace(attn, attn.w_q * c, attn.w_p / c)


def LinearSelfAttention_replace(attn, w_q, w_p):
    import equinox as eqx

    return eqx.tree_at(lambda a: (a.w_q, a.w_p), attn, (w_q, w_p))


def test_alignment_is_invariant_to_the_scale_and_sign_symmetry():
    construction = gd_construction(4, 6, lr=1.5)
    ref = construction.blocks[0].attn
    for c in (1.0, 3.0, -0.2):
        out = weight_alignment(_rescaled(construction, c), ref, 4)
        for name in ("kq_cos", "pv_cos", "product_cos"):
            assert float(out[name]) == pytest.approx(1.0, abs=1e-6), (c, name)
        assert float(effective_lr(_rescaled(construction, c), 4, 6)) == pytest.approx(1.5)


def test_alignment_of_an_unrelated_layer_is_small(key):
    model = LSATransformer(LSATransformerConfig(dim=11, init_scale=1.0), key=key)
    out = weight_alignment(model.blocks[0].attn, gd_construction(10, 10, 1.0).blocks[0].attn, 10)
    assert abs(float(out["product_cos"])) < 0.3


def test_product_cos_is_the_product_of_raw_block_cosines(key):
    model = LSATransformer(LSATransformerConfig(dim=5, init_scale=1.0), key=key)
    attn, ref = model.blocks[0].attn, gd_construction(4, 3, 1.0).blocks[0].attn
    flat = lambda m: m.reshape(1, -1)
    kq = cosine_similarity(flat(attn.qk()[0]), flat(ref.qk()[0]))[0]
    pv = cosine_similarity(flat(attn.pv()[0]), flat(ref.pv()[0]))[0]
    out = weight_alignment(attn, ref, 4)
    assert float(out["product_cos"]) == pytest.approx(float(kq * pv), abs=1e-6)


def test_normalise_scale_makes_the_x_diagonal_mean_one():
    w_kq = jnp.diag(jnp.array([2.0, 4.0, 7.0]))
    kq, pv = normalise_scale(w_kq, jnp.ones((3, 3)), 2)
    assert float(jnp.mean(jnp.diag(kq)[:2])) == pytest.approx(1.0)
    np.testing.assert_allclose(pv, 3.0 * np.ones((3, 3)))
    assert jax.numpy.allclose(kq @ pv, w_kq @ jnp.ones((3, 3)))


def test_interpolated_head_ends_at_both_functions_and_is_flat_between_equivalent_heads(key):
    """t = 0 is the trained head's function, t = 1 the construction's; between a head and a
    rescaled copy of the construction every t gives the construction's predictions, and
    between an unrelated head and the construction the midpoint is neither."""
    import equinox as eqx

    d, n = 4, 6
    construction = gd_construction(d, n, lr=1.5)
    ref = construction.blocks[0].attn
    task = LinearRegressionTask(d=d, n_context=n)
    tokens = jax.vmap(to_tokens)(task.sample_batch(key, 32))
    predict = lambda attn: jax.vmap(eqx.tree_at(lambda m: m.blocks[0].attn, construction,
                                                attn))(tokens)
    other = LSATransformer(LSATransformerConfig(dim=d + 1, init_scale=1.0, recurrent=True),
                           key=jax.random.fold_in(key, 1)).blocks[0].attn
    np.testing.assert_allclose(predict(interpolated_head(other, ref, d, 0.0)),
                               predict(other), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predict(interpolated_head(other, ref, d, 1.0)),
                               predict(ref), rtol=1e-4, atol=1e-5)
    scaled = _rescaled(construction, -0.3)
    for t in (0.25, 0.5):
        np.testing.assert_allclose(predict(interpolated_head(scaled, ref, d, t)), predict(ref),
                                   rtol=1e-4, atol=1e-5)
    mid = predict(interpolated_head(other, ref, d, 0.5))
    assert float(jnp.abs(mid - predict(ref)).max()) > 1e-2


def test_layer_losses_follow_numpy_gradient_descent_step_by_step():
    """Inside the L-layer GD construction, the read-out after layer k is k steps of GD
    from w = 0 (η/N Σ x_j (wᵀx_j − y_j), numpy, float64); its last entry is the model's
    loss."""
    from iclab.engine import regression_loss
    from iclab.instruments import layer_losses
    from iclab.models import DiagonalLSA

    task = LinearRegressionTask(d=4, n_context=12, input_dist="gaussian", noise_std=0.3)
    batch = task.sample_batch(jax.random.key(2), 256)
    lr, steps = 0.4, 5
    model = DiagonalLSA.gd(lr, task.n_context, steps)
    x, y = np.asarray(batch.x, np.float64), np.asarray(batch.y, np.float64)
    w = np.zeros((x.shape[0], task.d))
    expected = []
    for _ in range(steps):
        w = w - lr / task.n_context * np.einsum("bnd,bn->bd", x, np.einsum("bnd,bd->bn", x, w) - y)
        pred = np.einsum("bd,bd->b", w, np.asarray(batch.x_query, np.float64))
        expected.append(0.5 * np.mean((pred - np.asarray(batch.y_query)) ** 2))
    got = np.asarray(layer_losses(model, batch))
    np.testing.assert_allclose(got, expected, rtol=2e-4)
    assert got[-1] == pytest.approx(float(regression_loss(model, batch)), rel=1e-5)
