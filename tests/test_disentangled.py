"""The disentangled transformer, its 19-dimensional invariant subspace, the orthonormal
item–label task and its symmetry groups (Musat et al. 2025), against numpy and closed forms."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.models import (
    DisentangledCoordinates,
    DisentangledTransformer,
    pairs_population_loss,
    subspace_basis,
    subspace_coordinates,
    subspace_residual,
)
from iclab.tasks import (
    OrthonormalPairsTask,
    complex_structure,
    finite_symmetry_groups,
    finite_symmetry_orbit,
    haar_orthogonal,
    haar_unitary_real,
    pauli_group,
)


def numpy_forward(w1, w2, w3, tokens):
    """The whole-sequence forward pass written out with explicit causal softmax rows."""
    w1, w2, w3, x = (np.asarray(a, np.float64) for a in (w1, w2, w3, tokens))

    def attend(h, w):
        out = np.zeros_like(h)
        for t in range(h.shape[0]):
            scores = np.array([h[t] @ w @ h[s] for s in range(t + 1)])
            weights = np.exp(scores - scores.max())
            weights /= weights.sum()
            out[t] = weights @ h[: t + 1]
        return out

    h1 = np.concatenate([x, attend(x, w1)], -1)
    h2 = np.concatenate([h1, attend(h1, w2)], -1)
    return w3 @ h2[-1]


def random_model(key, dim, scale=0.5):
    k1, k2, k3 = jax.random.split(key, 3)
    return DisentangledTransformer(
        dim, scale * jax.random.normal(k1, (2 * dim, 2 * dim)),
        scale * jax.random.normal(k2, (4 * dim, 4 * dim)),
        scale * jax.random.normal(k3, (dim, 8 * dim)))


def random_subspace_model(key, dim):
    k1, k2, k3 = jax.random.split(key, 3)
    return DisentangledTransformer.from_coordinates(
        jax.random.normal(k1, (3,)), jax.random.normal(k2, (12,)), jax.random.normal(k3, (4,)),
        dim)


def commutant_dimension(group: np.ndarray) -> int:
    """dim of {W : g W gᵀ = W for all g}: the rank of the group average of g ⊗ g."""
    n = group.shape[1]
    average = np.einsum("gij,gkl->ikjl", group, group).reshape(n * n, n * n) / len(group)
    return int(np.linalg.matrix_rank(average, tol=1e-8))


def test_complex_structure_and_haar_samplers():
    j = np.asarray(complex_structure(6))
    np.testing.assert_allclose(j @ j, -np.eye(6))
    np.testing.assert_allclose(j.T, -j)
    o = np.asarray(haar_orthogonal(jax.random.key(0), 6))
    u = np.asarray(haar_unitary_real(jax.random.key(1), 6))
    np.testing.assert_allclose(o @ o.T, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(u @ u.T, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(u @ j, j @ u, atol=1e-5)
    assert np.abs(o @ j - j @ o).max() > 0.1  # a generic rotation does not commute with J


def test_pauli_groups_have_the_continuous_groups_commutants():
    with jax.enable_x64(True):
        content = np.asarray(pauli_group(8))
        assert content.shape == (64, 8, 8)
        # closed under products up to sign
        flat = content.reshape(64, -1)
        for a, b in [(3, 17), (40, 9), (63, 63)]:
            product = (content[a] @ content[b]).reshape(-1)
            assert np.min(np.minimum(np.abs(flat - product).max(1),
                                     np.abs(flat + product).max(1))) < 1e-12
        seq = OrthonormalPairsTask(n_pairs=3).canonical(0)
        orbit = finite_symmetry_orbit(OrthonormalPairsTask(n_pairs=3), seq)
        assert orbit.tokens.shape == (64 * 64, 7, 16)
    with pytest.raises(ConfigError, match="power of 2"):
        pauli_group(6)
    assert commutant_dimension(np.asarray(pauli_group(4))) == 1


def test_position_group_commutant_is_span_of_i_and_j():
    with jax.enable_x64(True):
        content, positions = (np.asarray(g) for g in finite_symmetry_groups(8))
        assert positions.shape == (64, 8, 8)
        j = np.asarray(complex_structure(8))
        np.testing.assert_allclose(np.einsum("gij,jk->gik", positions, j),
                                   np.einsum("ij,gjk->gik", j, positions), atol=1e-12)
        assert commutant_dimension(positions) == 2  # span{I, J}, as for U(4)
        assert commutant_dimension(content) == 1


def test_basis_is_orthogonal_and_fixed_by_the_symmetries():
    d = 6
    basis = subspace_basis(d)
    assert [basis[k].shape[0] for k in ("alpha", "beta", "gamma")] == [3, 12, 4]
    for b in basis.values():
        gram = np.einsum("kmn,lmn->kl", b, b)
        np.testing.assert_allclose(gram, d * np.eye(len(b)))
    o = np.asarray(haar_orthogonal(jax.random.key(2), d))
    s = np.asarray(haar_unitary_real(jax.random.key(3), d))
    g1, g2, g3 = lifts(o, s)
    for b in basis["alpha"]:
        np.testing.assert_allclose(g1.T @ b @ g1, b, atol=1e-5)
    for b in basis["beta"]:
        np.testing.assert_allclose(g2.T @ b @ g2, b, atol=1e-5)
    for b in basis["gamma"]:
        np.testing.assert_allclose(o.T @ b @ g3, b, atol=1e-5)


def lifts(o, s):
    """diag(O, S) on the streams of W¹, W² and W³'s input."""
    d = o.shape[0]
    g1 = np.block([[o, np.zeros((d, d))], [np.zeros((d, d)), s]])
    return g1, np.kron(np.eye(2), g1), np.kron(np.eye(4), g1)


def test_subspace_has_dimension_19_the_group_average_lands_in_it():
    """Averaging random weights over the finite symmetry group (the projection on its
    fixed space) gives zero residual: the fixed space is inside the 19-dimensional span,
    and the basis is fixed (previous test), so the two coincide."""
    with jax.enable_x64(True):
        d = 8
        content, positions = (np.asarray(g) for g in finite_symmetry_groups(d))
        eye = np.eye(d)
        model = random_model(jax.random.key(4), d)
        ws = [np.asarray(w) for w in (model.w1, model.w2, model.w3)]

        def average(ws, maps):
            """Mean over the maps (o, s) of gᵀ W g (W³: oᵀ W³ g)."""
            out = [np.zeros_like(w) for w in ws]
            for o, s in maps:
                g1, g2, g3 = lifts(o, s)
                out[0] += g1.T @ ws[0] @ g1 / len(maps)
                out[1] += g2.T @ ws[1] @ g2 / len(maps)
                out[2] += o.T @ ws[2] @ g3 / len(maps)
            return out

        # the product group's average is the content average of the position average
        ws = average(average(ws, [(eye, s) for s in positions]), [(o, eye) for o in content])
        averaged = DisentangledTransformer(d, *(jnp.asarray(w) for w in ws))
        assert float(subspace_residual(averaged)["relative"]) < 1e-12
        assert float(jnp.linalg.norm(averaged.w2)) > 0.1
        assert float(subspace_residual(model)["relative"]) > 0.9  # a generic W is not


def test_forward_matches_numpy_and_query_outputs():
    task = OrthonormalPairsTask(n_pairs=2, dim=6)
    model = random_model(jax.random.key(5), task.width)
    seq = task.sample(jax.random.key(6))
    np.testing.assert_allclose(model(seq.tokens),
                               numpy_forward(model.w1, model.w2, model.w3, seq.tokens),
                               rtol=1e-4, atol=1e-5)
    context, queries, _ = task.canonical_batch()
    out = model.query_outputs(context, queries)
    for k in range(task.n_pairs):
        np.testing.assert_allclose(out[k], model(task.canonical(k).tokens), rtol=1e-5,
                                   atol=1e-6)
    patterns = model.attention_patterns(seq.tokens)
    assert patterns.shape == (2, 1, task.length, task.length)
    np.testing.assert_allclose(patterns.sum(-1), 1.0, rtol=1e-5)
    assert float(jnp.triu(patterns[0, 0], 1).max()) == 0.0


def test_canonical_task_layout():
    task = OrthonormalPairsTask(n_pairs=3)
    d = task.width
    assert d == 8 and task.length == 7
    for k in range(3):
        seq = task.canonical(k)
        c, p = np.asarray(seq.tokens[:, :d]), np.asarray(seq.tokens[:, d:])
        np.testing.assert_allclose(c[:-1] @ c[:-1].T, np.eye(6))        # orthonormal contents
        np.testing.assert_allclose(p @ p.T, np.eye(7))                  # orthonormal positions
        np.testing.assert_allclose(c[-1], c[2 * k])                     # query repeats item k
        np.testing.assert_allclose(seq.target, c[2 * k + 1])            # target: its label
        j = np.asarray(complex_structure(d))
        for pair in range(3):
            np.testing.assert_allclose(p[2 * pair + 1], j @ p[2 * pair])  # label at J a_k
    sample = task.sample(jax.random.key(7))
    c, p = np.asarray(sample.tokens[:, :d]), np.asarray(sample.tokens[:, d:])
    np.testing.assert_allclose(p @ p.T, np.eye(7), atol=1e-5)
    np.testing.assert_allclose(c[:-1] @ c[:-1].T, np.eye(6), atol=1e-5)
    for bad in (7, 6):
        with pytest.raises(ConfigError, match="task.dim"):
            OrthonormalPairsTask(n_pairs=3, dim=bad)


def test_in_the_subspace_every_sample_has_its_canonical_loss():
    """Equivariance: for W in the subspace, ℓ(W; g·x) = ℓ(W; x), so the population loss is
    the canonical mean exactly; off the subspace samples differ (the test can fail)."""
    task = OrthonormalPairsTask(n_pairs=3, dim=10)
    batch = task.sample_batch(jax.random.key(8), 16)
    inside = random_subspace_model(jax.random.key(9), task.width)
    canonical = jnp.stack([0.5 * jnp.sum((inside(task.canonical(k).tokens)
                                          - task.canonical(k).target) ** 2)
                           for k in range(3)])
    k_star = jnp.argmax(jnp.abs(batch.tokens[:, :-1:2, :task.width]
                                @ batch.tokens[:, -1, :task.width][:, :, None])[..., 0], -1)
    losses = jax.vmap(lambda t, y: 0.5 * jnp.sum((inside(t) - y) ** 2))(batch.tokens,
                                                                     batch.target)
    np.testing.assert_allclose(losses, canonical[k_star], rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(pairs_population_loss(inside, task), canonical.mean(), rtol=1e-6)
    outside = random_model(jax.random.key(10), task.width, scale=0.3)
    off = jax.vmap(lambda t, y: 0.5 * jnp.sum((outside(t) - y) ** 2))(batch.tokens, batch.target)
    assert float(jnp.std(off)) > 1e-2


def test_loss_and_gradient_at_zero_closed_form():
    """At W = 0: ŷ = 0, L = ½; only γ has a gradient: ∂L/∂γ₁ = 0 (own token),
    ∂L/∂γ₂ = ∂L/∂γ₃ = −1/(2N+1) (uniform average over all tokens holds the target once),
    ∂L/∂γ₄ = −E_k (1/(2N+1)) Σ_{t=2k}^{2N+1} 1/t (the prefix averages after label k)."""
    with jax.enable_x64(True):
        n = 4
        task = OrthonormalPairsTask(n_pairs=n)
        zero = DisentangledCoordinates(task.width)
        loss, grads = jax.value_and_grad(pairs_population_loss)(zero, task)
        assert float(loss) == pytest.approx(0.5)
        np.testing.assert_allclose(grads.alpha, 0.0, atol=1e-15)
        np.testing.assert_allclose(grads.beta, 0.0, atol=1e-15)
        length = 2 * n + 1
        g4 = -np.mean([sum(1 / t for t in range(2 * k, length + 1)) / length
                       for k in range(1, n + 1)])
        np.testing.assert_allclose(grads.gamma, [0.0, -1 / length, -1 / length, g4], atol=1e-14)


def test_training_stays_in_the_subspace_only_on_a_symmetric_population():
    """GD from zero on the symmetry-closed batch = the reduced 19-coordinate dynamics
    (lr / D on coordinates); on one canonical sequence the weights leave the subspace."""
    with jax.enable_x64(True):
        task = OrthonormalPairsTask(n_pairs=3)
        d = task.width
        orbits = [finite_symmetry_orbit(task, task.canonical(k)) for k in range(3)]
        tokens = jnp.concatenate([o.tokens for o in orbits])[::1]
        targets = jnp.concatenate([o.target for o in orbits])

        def train(tokens, targets, steps=30, lr=2.0):
            loss = lambda m: 0.5 * jnp.sum((jax.vmap(m)(tokens) - targets) ** 2, -1).mean()

            @eqx.filter_jit
            def run(model):
                def step(m, _):
                    g = jax.grad(loss)(m)
                    return jax.tree.map(lambda w, gw: w - lr * gw, m, g), None
                return jax.lax.scan(step, model, None, length=steps)[0]
            return run(DisentangledTransformer(d))

        model = train(tokens, targets)
        assert float(subspace_residual(model)["relative"]) < 1e-12
        reduced = DisentangledCoordinates(d)
        for _ in range(30):
            g = jax.grad(lambda c: pairs_population_loss(c, task))(reduced)
            reduced = jax.tree.map(lambda w, gw: w - 2.0 / d * gw, reduced, g)
        coords = subspace_coordinates(model)
        for name in ("alpha", "beta", "gamma"):
            np.testing.assert_allclose(coords[name], getattr(reduced, name), atol=1e-12)
        assert float(jnp.abs(reduced.gamma).max()) > 0.1  # it did train
        single = task.canonical(1)
        lone = train(single.tokens[None], single.target[None])
        assert float(subspace_residual(lone)["relative"]) > 1e-3
