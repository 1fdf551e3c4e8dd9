"""The disentangled two-layer attention-only transformer and its 19-dimensional invariant
subspace (Musat, Pimentel, Noci, Stolfo, Sachan, Hofmann 2025, "On the Emergence of
Induction Heads for In-Context Learning"; concatenated residual stream after Friedman et
al. 2023 and Nichani et al. 2024).

Tokens are x_t = [c_t; p_t] ∈ R^{2D} (content, position). Each layer concatenates its
attention output to the stream instead of adding it, and merges key and query into one
matrix; with causal softmax rows A = softmax_{t'≤t}(h_t W h_{t'}) (no 1/√d scale):

    h⁰ = x,                      A¹ = softmax(h⁰ W¹ h⁰ᵀ),   W¹ ∈ R^{2D×2D}
    h¹ = [h⁰, A¹ h⁰] ∈ R^{4D},   A² = softmax(h¹ W² h¹ᵀ),   W² ∈ R^{4D×4D}
    h² = [h¹, A² h¹] ∈ R^{8D},   ŷ = W³ h²_T ∈ R^D           (the query is the last token).

Streams of h² in order: c, p, c̄, p̄, c̃, p̃, c̄̃, p̄̃ (bar: averaged by layer 1; tilde: by layer 2).

**Invariant subspace.** If the data are invariant under x ↦ diag(O, S) x with O ∈ O(D)
acting on contents (and the target) and S ∈ U(D/2) acting on positions — orthogonal
maps commuting with the complex structure J (``complex_structure``) — the population loss
satisfies L(g·W) = L(W) for W¹ ↦ gᵀW¹g etc., so its gradient at a g-fixed W is g-fixed and
gradient descent from W = 0 stays in the fixed space: every content–content block is a
multiple of I (the commutant of O(D)), every position–position block lies in span{I, J}
(the commutant of U(D/2)), and mixed blocks vanish. That space has dimension 19:

    W¹ = diag(α₁ I, α₂ I + α₃ J)                                         α ∈ R³
    W²: content blocks (c,c) β₁, (c,c̄) β₂, (c̄,c) β₃, (c̄,c̄) β₄ times I;
        position blocks (p,p), (p,p̄), (p̄,p), (p̄,p̄) times β I + β' J   β ∈ R¹²
    W³ = [γ₁ I, 0, γ₂ I, 0, γ₃ I, 0, γ₄ I, 0]                             γ ∈ R⁴

The induction head is α₃ (a label attends to its item, whose position is J⁻¹ times its
own), β₂ (the query's token matches the item a key attended to) and γ₃ (copy the
attended token). ``subspace_basis`` gives the 19 matrices (mutually orthogonal),
``subspace_coordinates`` the projection and ``subspace_residual`` what lies outside.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.models._causal import causal_mask
from iclab.models._interface import AttentionPatternModel
from iclab.tasks._induction import complex_structure

ALPHA_NAMES = ("α1 token·token", "α2 pos·pos", "α3 pos·J·pos (previous token)")
BETA_NAMES = ("β1 c·c", "β2 c·c̄ (match token)", "β3 c̄·c", "β4 c̄·c̄",
              "β5 p·p I", "β6 p·p J", "β7 p·p̄ I", "β8 p·p̄ J",
              "β9 p̄·p I", "β10 p̄·p J", "β11 p̄·p̄ I", "β12 p̄·p̄ J")
GAMMA_NAMES = ("γ1 c", "γ2 c̄", "γ3 c̃ (copy)", "γ4 c̄̃")


def _block_matrix(rows: int, cols: int, dim: int, entries) -> Array:
    """A (rows·dim, cols·dim) matrix with the given (row stream, column stream, D×D block)."""
    out = jnp.zeros((rows * dim, cols * dim))
    for r, c, block in entries:
        out = out.at[r * dim:(r + 1) * dim, c * dim:(c + 1) * dim].set(block)
    return out


def subspace_basis(dim: int) -> dict[str, Float[Array, "k m n"]]:
    """The 19 basis matrices of the invariant subspace: {"alpha": (3, 2D, 2D),
    "beta": (12, 4D, 4D), "gamma": (4, D, 8D)} in the order of the module docstring."""
    eye, j = jnp.eye(dim), complex_structure(dim)
    alpha = [_block_matrix(2, 2, dim, [(0, 0, eye)]), _block_matrix(2, 2, dim, [(1, 1, eye)]),
             _block_matrix(2, 2, dim, [(1, 1, j)])]
    beta = [_block_matrix(4, 4, dim, [(r, c, eye)]) for r, c in ((0, 0), (0, 2), (2, 0), (2, 2))]
    beta += [_block_matrix(4, 4, dim, [(r, c, b)])
             for r, c in ((1, 1), (1, 3), (3, 1), (3, 3)) for b in (eye, j)]
    gamma = [_block_matrix(1, 8, dim, [(0, s, eye)]) for s in (0, 2, 4, 6)]
    return {"alpha": jnp.stack(alpha), "beta": jnp.stack(beta), "gamma": jnp.stack(gamma)}


class DisentangledTransformer(AttentionPatternModel):
    """Two causal softmax layers with merged key–query matrices W¹, W² and a concatenated
    residual stream, read out by W³ at the last token (see the module docstring)."""

    w1: Float[Array, "c c"]
    w2: Float[Array, "f f"]
    w3: Float[Array, "d e"]

    def __init__(self, dim: int, w1=None, w2=None, w3=None):
        """Zero-initialised (the paper's setting) unless the matrices are given."""
        self.w1 = jnp.zeros((2 * dim, 2 * dim)) if w1 is None else w1
        self.w2 = jnp.zeros((4 * dim, 4 * dim)) if w2 is None else w2
        self.w3 = jnp.zeros((dim, 8 * dim)) if w3 is None else w3

    @property
    def dim(self) -> int:
        return self.w3.shape[0]

    @classmethod
    def from_coordinates(cls, alpha: Float[Array, " 3"], beta: Float[Array, " 12"],
                         gamma: Float[Array, " 4"], dim: int) -> "DisentangledTransformer":
        """The model W(α, β, γ) = Σ coordinate × basis matrix."""
        basis = subspace_basis(dim)
        return cls(dim, jnp.tensordot(alpha, basis["alpha"], 1),
                   jnp.tensordot(beta, basis["beta"], 1), jnp.tensordot(gamma, basis["gamma"], 1))

    def attention_patterns(self, tokens: Float[Array, "t c"]) -> Float[Array, "2 1 t t"]:
        """A¹ and A² on the whole sequence (one head per layer)."""
        mask = causal_mask(tokens.shape[0])
        softmax = lambda s: jax.nn.softmax(jnp.where(mask, s, -jnp.inf), axis=-1)
        a1 = softmax(tokens @ self.w1 @ tokens.T)
        h1 = jnp.concatenate([tokens, a1 @ tokens], -1)
        a2 = softmax(h1 @ self.w2 @ h1.T)
        return jnp.stack([a1, a2])[:, None]

    def query_outputs(self, context: Float[Array, "t c"], queries: Float[Array, "q c"]
                      ) -> Float[Array, "q d"]:
        """ŷ for each query appended, one at a time, after the same context: with causal
        attention the context's streams do not depend on the query, so they are computed
        once; each query adds one row to A¹ and A²."""
        a1 = jax.nn.softmax(jnp.where(causal_mask(context.shape[0]),
                                      context @ self.w1 @ context.T, -jnp.inf), axis=-1)
        h1 = jnp.concatenate([context, a1 @ context], -1)

        def row(h, w, query):
            """One causal row: attention of ``query`` over h and itself; returns Σ a h."""
            scores = jnp.concatenate([h @ (w.T @ query), (query @ w @ query)[None]])
            weights = jax.nn.softmax(scores)
            return weights[:-1] @ h + weights[-1] * query

        def one(query):
            h1_q = jnp.concatenate([query, row(context, self.w1, query)])
            h2_q = jnp.concatenate([h1_q, row(h1, self.w2, h1_q)])
            return self.w3 @ h2_q

        return jax.vmap(one)(queries)

    def __call__(self, tokens: Float[Array, "t c"]) -> Float[Array, " d"]:
        """ŷ at the last token of the sequence."""
        return self.query_outputs(tokens[:-1], tokens[-1:])[0]


def subspace_coordinates(model: DisentangledTransformer) -> dict[str, Array]:
    """α, β, γ of the orthogonal projection of (W¹, W², W³) on the subspace:
    coordinate_i = ⟨W, B_i⟩_F / ‖B_i‖²_F."""
    basis = subspace_basis(model.dim)
    out = {}
    for name, w in (("alpha", model.w1), ("beta", model.w2), ("gamma", model.w3)):
        b = basis[name]
        out[name] = jnp.einsum("kmn,mn->k", b, w) / jnp.einsum("kmn,kmn->k", b, b)
    return out


def subspace_residual(model: DisentangledTransformer) -> dict[str, Array]:
    """‖W − P W‖_F over the three matrices together ("absolute") and divided by ‖W‖_F
    ("relative"; 0 for W = 0), with P the projection on the 19-dimensional subspace."""
    coords = subspace_coordinates(model)
    projected = DisentangledTransformer.from_coordinates(coords["alpha"], coords["beta"],
                                                         coords["gamma"], model.dim)
    sq = lambda a: jnp.sum(a * a)
    off = sum(sq(a - b) for a, b in zip((model.w1, model.w2, model.w3),
                                         (projected.w1, projected.w2, projected.w3), strict=True))
    total = sq(model.w1) + sq(model.w2) + sq(model.w3)
    absolute = jnp.sqrt(off)
    return {"absolute": absolute,
            "relative": jnp.where(total > 0, absolute / jnp.sqrt(jnp.where(total > 0, total, 1.0)),
                                  0.0)}


class DisentangledCoordinates(eqx.Module):
    """The disentangled transformer restricted to its invariant subspace: the 19
    coordinates α (3), β (12), γ (4). Gradient descent on them with learning rate η is
    gradient descent on (W¹, W², W³) with learning rate η·D on the population loss
    (the basis matrices are orthogonal with ‖B_i‖²_F = D), so the loss as a function of
    the coordinates, and its time scale, do not depend on D."""

    alpha: Float[Array, " 3"]
    beta: Float[Array, " 12"]
    gamma: Float[Array, " 4"]
    dim: int = eqx.field(static=True)

    def __init__(self, dim: int, alpha=None, beta=None, gamma=None):
        """Zero-initialised unless coordinates are given."""
        self.alpha = jnp.zeros(3) if alpha is None else alpha
        self.beta = jnp.zeros(12) if beta is None else beta
        self.gamma = jnp.zeros(4) if gamma is None else gamma
        self.dim = dim

    def model(self) -> DisentangledTransformer:
        return DisentangledTransformer.from_coordinates(self.alpha, self.beta, self.gamma,
                                                        self.dim)

    def query_outputs(self, context, queries):
        return self.model().query_outputs(context, queries)

    def __call__(self, tokens):
        return self.model()(tokens)


def pairs_population_loss(model, task) -> Array:
    """½ E‖ŷ − y‖² of a disentangled model on the orthonormal item–label task
    (``OrthonormalPairsTask``), as the mean over the query pair k* of the canonical
    sequences' losses: the exact population loss for a model in the invariant subspace."""
    context, queries, targets = task.canonical_batch()
    return 0.5 * jnp.sum((model.query_outputs(context, queries) - targets) ** 2, -1).mean()


def subspace_check(n_pairs: int, steps: int, lr: float, haar_control: bool = False) -> dict:
    """Full-batch gradient descent from zero on (W¹, W², W³) in float64 on the N = ``n_pairs``
    orthonormal task, with the reduced (α, β, γ) dynamics run alongside (Musat et al. 2025,
    Theorem 1: training from zero stays in the 19-dimensional subspace).

    The batch is every canonical sequence under a finite symmetry group with the same
    commutant as O(D) × U(D/2) (``finite_symmetry_orbit``), so the loss is exactly
    invariant; with ``haar_control``, as many i.i.d. Haar-rotated sequences (invariant only
    on average). The reduced dynamics take steps lr / D: the basis matrices have
    ‖B‖²_F = D.

    Returns:
        per-step ``loss``, relative ``residual`` outside the subspace, largest
        ``deviation`` of the 19 coordinates from the reduced dynamics; ``sequences``, ``dim``.
    """
    import numpy as np

    from iclab.tasks._induction import OrthonormalPairsTask, finite_symmetry_orbit

    with jax.enable_x64(True):
        task = OrthonormalPairsTask(n_pairs=n_pairs)
        d = task.width
        orbits = [finite_symmetry_orbit(task, task.canonical(k)) for k in range(task.n_pairs)]
        tokens = jnp.concatenate([o.tokens for o in orbits])
        targets = jnp.concatenate([o.target for o in orbits])
        if haar_control:
            sample = task.sample_batch(jax.random.key(steps), tokens.shape[0])
            tokens, targets = sample.tokens, sample.target

        def full_loss(model):
            return 0.5 * jnp.sum((jax.vmap(model)(tokens) - targets) ** 2, -1).mean()

        def step(carry, _):
            model, reduced = carry
            loss, grads = jax.value_and_grad(full_loss)(model)
            model = jax.tree.map(lambda w, g: w - lr * g, model, grads)
            reduced_grads = jax.grad(lambda c: pairs_population_loss(c, task))(reduced)
            reduced = jax.tree.map(lambda w, g: w - lr / d * g, reduced, reduced_grads)
            coords = subspace_coordinates(model)
            deviation = jnp.max(jnp.stack([jnp.abs(coords[k] - getattr(reduced, k)).max()
                                           for k in ("alpha", "beta", "gamma")]))
            return (model, reduced), (loss, subspace_residual(model)["relative"], deviation)

        start = (DisentangledTransformer(d), DisentangledCoordinates(d))
        _, (loss, residual, deviation) = jax.jit(lambda c: jax.lax.scan(
            step, c, None, length=steps))(start)
        return {"loss": np.asarray(loss), "residual": np.asarray(residual),
                "deviation": np.asarray(deviation), "sequences": int(tokens.shape[0]), "dim": d}
