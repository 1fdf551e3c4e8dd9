"""The residual MLP against an independent numpy forward pass, its declared init law, the
notebook's depth rules on it, and the linearisation distance against a closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.instruments import linearisation_distance
from iclab.models import ForwardMultipliers, ResidualMLP, ResidualMLPConfig
from iclab.parametrisation import SCHEMES, Parametrisation


def _model(width=16, blocks=3, seed=0, **kw):
    return ResidualMLP(ResidualMLPConfig(dim_in=5, width=width, blocks=blocks, **kw),
                       key=jax.random.key(seed))


def test_forward_matches_numpy():
    model = _model(blocks=3, block_layers=3, dim_out=2, bias=True).with_multipliers(
        ForwardMultipliers(branch=0.3, output=0.5))
    model = jax.tree.map(lambda a: a + 0.1 if a.ndim == 1 else a, model)  # nonzero biases
    x = np.asarray(jax.random.normal(jax.random.key(1), (4, 5)))
    h = x @ np.asarray(model.read_in).T + np.asarray(model.read_in_bias)
    stream = [h]
    for block in model.blocks:
        z = h
        for k, (w, b) in enumerate(zip(block.weights, block.biases, strict=True)):
            z = (np.maximum(z, 0) if k else z) @ np.asarray(w).T + np.asarray(b)
        h = h + 0.3 * z
        stream.append(h)
    out = (0.5 * h) @ np.asarray(model.read_out).T + np.asarray(model.read_out_bias)
    np.testing.assert_allclose(model(jnp.asarray(x)), out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.residual_stream(jnp.asarray(x)), np.stack(stream),
                               rtol=1e-5, atol=1e-6)


def test_declared_init_exponents_match_the_arrays():
    """b (std ∝ m^(−b)) against the arrays' RMS at widths 64 and 256, and the init law of
    the docstring (a branch's first map 1/N, the maps after a ReLU 2/N, read-in 1/D)."""
    small = _model(width=64, block_layers=3, dim_out=32)
    large = _model(width=256, block_layers=3, dim_out=32, seed=1)
    rms = lambda a: float(jnp.sqrt(jnp.mean(a ** 2)))
    for a, b, exponent in zip(jax.tree.leaves(small), jax.tree.leaves(large),
                              jax.tree.leaves(small.init_exponents()), strict=True):
        assert rms(b) / rms(a) == pytest.approx(4.0 ** -exponent, rel=0.05)
    w = large.blocks[0].weights
    assert rms(w[0]) == pytest.approx(256 ** -0.5, rel=0.02)
    assert rms(w[1]) == pytest.approx((2 / 256) ** 0.5, rel=0.02)
    assert rms(large.read_in) == pytest.approx(5 ** -0.5, rel=0.15)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_is_sp_at_the_base_shape(scheme):
    model = _model()
    s = Parametrisation(scheme).scale(model, model)
    assert all((r.init, r.lr, r.wd, r.eps) == (1, 1, 1, 1) for r in s.rows)
    assert s.forward == ForwardMultipliers()


@pytest.mark.parametrize("alpha", [0.5, 0.75, 1.0])
def test_the_notebooks_depth_rules(alpha):
    """The CompleteP notebook's residual-MLP rules written relative to a base (width ×4,
    depth ×8): SGD hidden lr (L/L₀)^(2α−1) with no width factor in SP form (the abc form's
    η·N on N(0, 1) weights with multiplier N^(−½)); Adam hidden lr N^(−1)(L/L₀)^(α−1) (the
    abc form's N^(−½)) and ε (L/L₀)^(−α)/N; branches (L/L₀)^(−α); read-out 1/N."""
    wide, base = _model(width=64, blocks=16), _model(width=16, blocks=2)
    for optimizer in ("sgd", "adam"):
        s = Parametrisation("completep", optimizer, alpha=alpha).scale(wide, base)
        rows = {r.name: r for r in s.rows}
        hidden = rows["blocks.9.weights.1"]
        assert hidden.cls == "hidden" and rows["read_out"].cls == "output"
        assert rows["read_in"].cls == "input"
        if optimizer == "sgd":
            assert hidden.lr == pytest.approx(8.0 ** (2 * alpha - 1))
        else:
            assert hidden.lr == pytest.approx(8.0 ** (alpha - 1) / 4)
            assert hidden.eps == pytest.approx(8.0 ** -alpha / 4)
        assert s.forward.branch == pytest.approx(8.0 ** -alpha)
        assert s.forward.output == pytest.approx(1 / 4)


def test_linearisation_distance_of_a_quadratic():
    """f(θ) = Aθ + (θᵀB_iθ)_i: f(θ₁) − [f(θ₀) + J(θ₀)δ] = (δᵀB_iδ)_i exactly."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3, 3))
    f = lambda t: jnp.asarray(a) @ t + jnp.einsum("i,kij,j->k", t, jnp.asarray(b), t)
    t0, t1 = rng.normal(size=3), rng.normal(size=3)
    delta = t1 - t0
    err = np.einsum("i,kij,j->k", delta, b, delta)
    jac = a + np.einsum("kij,j->ki", b + b.transpose(0, 2, 1), t0)
    f0 = a @ t0 + np.einsum("i,kij,j->k", t0, b, t0)
    lin = f0 + jac @ delta
    out = linearisation_distance(f, jnp.asarray(t0), jnp.asarray(t1))
    assert float(out["distance"]) == pytest.approx(np.linalg.norm(err) / np.linalg.norm(lin),
                                                   rel=1e-4)
    assert float(out["relative_to_change"]) == pytest.approx(
        np.linalg.norm(err) / np.linalg.norm(jac @ delta), rel=1e-4)
    # a linear function never leaves its linearisation
    lin_out = linearisation_distance(lambda t: jnp.asarray(a) @ t, jnp.asarray(t0),
                                     jnp.asarray(t1))
    assert float(lin_out["distance"]) < 1e-6


def test_a_block_branch_is_a_module_of_its_own():
    model = _model()
    h = jnp.ones(16)
    w = model.blocks[1].weights
    np.testing.assert_allclose(model.blocks[1](h), w[1] @ jax.nn.relu(w[0] @ h), rtol=1e-5)
    assert model.depth() == 3 and model.head_width() == 0
    flags = jax.tree.leaves(model.block_arrays())
    names = [r.name for r in Parametrisation().scale(model, model).rows]
    assert [n for n, f in zip(names, flags, strict=True) if f] == [
        f"blocks.{i}.weights.{k}" for i in range(3) for k in range(2)]
