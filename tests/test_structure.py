"""Block-identity structure of linear attention (CompressedAlg): the share against an
explicit 4-tensor in numpy, the projection's algebra, the exact realisation of products,
and the GD construction's share in closed form."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.instruments import (
    compressed_products,
    head_products,
    identity_block_share,
    identity_blocks,
)
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.solvers import ar_gd_predictions
from iclab.tasks import DynamicsTask, constructed_tokens


def numpy_share(model, n, out_blocks=None, in_blocks=None):
    """The 4-tensor T[a, b, c, d] = Σ_h ov[h, a, b] qk[h, c, d] written out, projected on
    every (E_ij ⊗ I) ⊗ (E_kl ⊗ I) one block combination at a time."""
    shares = []
    for p in head_products(model):
        ov, qk = np.asarray(p["ov"], np.float64), np.asarray(p["qk"], np.float64)
        m = ov.shape[1] // n
        outs = range(m) if out_blocks is None else out_blocks
        ins = range(m) if in_blocks is None else in_blocks
        sub = lambda a, blocks_a, blocks_b: a[np.ix_(
            range(a.shape[0]), [b * n + i for b in blocks_a for i in range(n)],
            [b * n + i for b in blocks_b for i in range(n)])]
        ov, qk = sub(ov, outs, ins), sub(qk, ins, ins)
        t = np.einsum("hab,hcd->abcd", ov, qk)
        kept = 0.0
        for i, j, k, m_ in itertools.product(range(len(outs)), range(len(ins)), range(len(ins)),
                                            range(len(ins))):
            coef = sum(t[i * n + p, j * n + p, k * n + q, m_ * n + q]
                       for p in range(n) for q in range(n)) / n ** 2
            kept += coef ** 2 * n ** 2
        shares.append(kept / np.sum(t ** 2))
    return shares


def model(layers=2, heads=3, key_size=5, dim_in=12, key=0, **kwargs):
    config = CausalTransformerConfig(layers=("linear",) * layers, heads=heads,
                                     key_size=key_size, init_std=0.3, **kwargs)
    return CausalTransformer(config.resolve(dim_in, 3), key=jax.random.key(key))


@pytest.mark.parametrize("blocks", [(None, None), ((0,), (2, 3)), ((1, 3), (0, 2, 3))])
def test_share_matches_an_explicit_four_tensor(blocks):
    m = model()
    got = identity_block_share(m, 3, *blocks)
    want = numpy_share(m, 3, *blocks)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert all(0 < v < 1 for v in got)


def test_identity_blocks_is_an_orthogonal_projection():
    a, b = jax.random.normal(jax.random.key(1), (2, 3, 12, 8))
    pa = identity_blocks(a, 4)
    np.testing.assert_allclose(identity_blocks(pa, 4), pa, atol=1e-6)
    np.testing.assert_allclose(jnp.sum((a - pa) * identity_blocks(b, 4)), 0.0, atol=1e-4)
    blocks = np.asarray(pa).reshape(3, 3, 4, 2, 4)
    off_diagonal = blocks * (1 - np.eye(4))[None, None, :, None, :]
    assert np.abs(off_diagonal).max() == 0
    with pytest.raises(ValueError, match="multiples"):
        identity_blocks(a, 5)


def test_products_are_realised_exactly_and_compression_is_fully_structured():
    m = model(mlp=True, layer_norm=True, clip=2.0, dim=12, readout="linear", max_len=9)
    tokens = jax.random.normal(jax.random.key(2), (7, 12))
    same = m.with_head_products(head_products(m))
    assert same.config.key_size == 12
    np.testing.assert_allclose(same(tokens), m(tokens), atol=2e-5)
    compressed = m.with_head_products(compressed_products(m, 3))
    np.testing.assert_allclose(identity_block_share(compressed, 3), 1.0, atol=1e-5)
    assert not np.allclose(compressed(tokens), m(tokens), atol=1e-3)
    softmax = CausalTransformer(CausalTransformerConfig(layers=("softmax",)).resolve(12, 3),
                                key=jax.random.key(0))
    with pytest.raises(ValueError, match="only for linear"):
        softmax.with_head_products(head_products(softmax))


def gd_construction(n, eta, phi0):
    """One head on masked tokens [0, 0, s_t, s_{t−1}] doing η (G_t − Φ₀ H_t) s_t: values
    s_j − Φ₀ s_{j−1} written to slot 0, scores s_{j−1} · s_t."""
    d = 4 * n
    ov = jnp.zeros((d, d)).at[:n, 2 * n:3 * n].set(eta * jnp.eye(n))
    ov = ov.at[:n, 3 * n:].set(-eta * phi0)
    qk = jnp.zeros((d, d)).at[3 * n:, 2 * n:3 * n].set(jnp.eye(n))
    base = CausalTransformer(CausalTransformerConfig(layers=("linear",), heads=1,
                                                     key_size=d).resolve(d, n),
                             key=jax.random.key(0))
    return base.with_head_products([{"ov": ov[None], "qk": qk[None]}])


def test_gd_construction_is_one_gd_step_with_its_closed_form_share():
    n, eta = 4, 0.3
    phi0 = 0.5 * jax.random.normal(jax.random.key(3), (n, n))
    states = DynamicsTask(state_dim=n, length=9).sample(jax.random.key(4)).inputs
    lsa = gd_construction(n, eta, phi0)
    tokens = constructed_tokens(states, mask_query=True)
    np.testing.assert_allclose(lsa(tokens), ar_gd_predictions(states, phi0, eta)
                               - states @ phi0.T, atol=1e-5)
    tr, fro = float(jnp.trace(phi0)), float(jnp.sum(phi0 ** 2))
    closed = (n ** 2 + tr ** 2) / (n ** 2 + n * fro)
    (share,) = identity_block_share(lsa, n, out_blocks=(0,), in_blocks=(2, 3))
    assert share == pytest.approx(closed, rel=1e-5)
    assert share < 0.9
    (scaled,) = identity_block_share(gd_construction(n, eta, 0.2 * jnp.eye(n)), n,
                                     out_blocks=(0,), in_blocks=(2, 3))
    assert scaled == pytest.approx(1.0, abs=1e-6)
