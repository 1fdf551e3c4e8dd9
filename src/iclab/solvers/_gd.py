"""Gradient descent on the in-context least-squares loss, and the LSA that implements it.

The in-context loss of a linear model W on the context of one task is

    L(W) = 1/(2N) Σ_j ‖W x_j − y_j‖²,   ∇L(W) = 1/N Σ_j (W x_j − y_j) x_jᵀ,

and k steps of GD from W₀ with learning rate η are W_{t+1} = W_t − η ∇L(W_t).

Reference: von Oswald et al., "Transformers learn in-context by gradient
descent", ICML 2023 (arXiv 2212.07677), Proposition 1.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.models import LSATransformer, LSATransformerConfig
from iclab.solvers._line_search import grid_then_golden
from iclab.tasks import RegressionExample


def gd_weights(x: Float[Array, "n d"], y: Float[Array, " n"], lr: float | Array, steps: int,
               w0: Float[Array, " d"] | None = None) -> Float[Array, " d"]:
    """w_k after k GD steps w_{t+1} = w_t − (η/N) Xᵀ(X w_t − y) from w₀ (default 0)."""
    w = jnp.zeros(x.shape[1], x.dtype) if w0 is None else w0
    n = x.shape[0]

    def step(w, _):
        return w - (lr / n) * (x.T @ (x @ w - y)), None

    w, _ = jax.lax.scan(step, w, None, length=steps)
    return w


def gd_predict(example: RegressionExample, lr: float | Array, steps: int = 1) -> Float[Array, ""]:
    """The query prediction ŷ = w_kᵀ x_q of k-step GD on the task's context."""
    return gd_weights(example.x, example.y, lr, steps) @ example.x_query


def gd_loss(batch: RegressionExample, lr: float | Array, steps: int = 1) -> Float[Array, ""]:
    """½ mean over tasks of (ŷ_GD − y_q)², the loss the trained model is compared with."""
    preds = jax.vmap(gd_predict, in_axes=(0, None, None))(batch, lr, steps)
    return 0.5 * jnp.mean((preds - batch.y_query) ** 2)


def one_step_optimal_lr(batch: RegressionExample) -> Float[Array, ""]:
    """Exact minimiser of the one-step GD loss over η on a fixed batch.

    One step from 0 predicts ŷ_b = η a_b with a_b = (1/N) Σ_j y_j x_jᵀ x_q, so
    the loss ½ mean (η a_b − y_b)² is quadratic in η and η* = Σ a_b y_b / Σ a_b².
    """
    a = jax.vmap(gd_predict, in_axes=(0, None))(batch, 1.0)
    return jnp.sum(a * batch.y_query) / jnp.sum(a * a)


def fit_one_step_from_init(batch: RegressionExample, iterations: int = 20
                           ) -> tuple[Float[Array, " d"], Float[Array, ""]]:
    """(w₀, η) minimising Σ_b (ŷ_b − y_b)² for one GD step from a shared w₀,
    ŷ = w₀ᵀx_q + (η/N) Σ_j (y_j − w₀ᵀx_j) x_jᵀx_q, by exact alternating least squares from
    (0, η*(w₀ = 0)):

        given η:  ŷ − η g = w₀ᵀ z with g = (1/N) Σ_j y_j x_jᵀx_q, z = (I − η Σ̂) x_q, Σ̂ = XᵀX/N;
        given w₀: ŷ − w₀ᵀx_q = η b with b = (1/N) Σ_j (y_j − w₀ᵀx_j) x_jᵀx_q.

    Each update is an exact minimisation, so the loss never increases (the regression
    counterpart of ``fit_gd_step``, Proposition 1 of von Oswald et al. 2023b).
    """
    n = batch.x.shape[1]
    g = jnp.einsum("bn,bnd,bd->b", batch.y, batch.x, batch.x_query) / n
    cov_q = jnp.einsum("bnd,bne,be->bd", batch.x, batch.x, batch.x_query) / n  # Σ̂ x_q

    def eta_given(w0):
        b = g - jnp.einsum("bnd,d,bne,be->b", batch.x, w0, batch.x, batch.x_query) / n
        return jnp.sum(b * (batch.y_query - batch.x_query @ w0)) / jnp.sum(b * b)

    def w0_given(eta):
        z = batch.x_query - eta * cov_q
        return jnp.linalg.lstsq(z, batch.y_query - eta * g)[0]

    w0 = jnp.zeros(batch.x.shape[-1], batch.x.dtype)
    eta = eta_given(w0)
    for _ in range(iterations):  # unrolled: no ``while`` loop around the solve
        w0 = w0_given(eta)
        eta = eta_given(w0)
    return w0, eta


def tune_gd_lr(batch: RegressionExample, steps: int = 1) -> tuple[float, float]:
    """η minimising the k-step GD loss on ``batch``: grid search then golden section.

    The grid starts on [0, 4/λ̄], with λ̄ the mean over tasks of the largest
    eigenvalue of Σ̂ = XᵀX/N (GD diverges beyond η = 2/λ_max), and is widened
    automatically if the best point lies on its upper edge.

    Returns:
        (η*, loss at η*).
    """
    cov = jnp.einsum("bnd,bne->bde", batch.x, batch.x) / batch.x.shape[1]
    lam = float(jnp.mean(jnp.linalg.eigvalsh(cov)[:, -1]))
    return grid_then_golden(lambda lr, b: gd_loss(b, lr, steps), 0.0, 4.0 / lam, batch)


def gd_construction(d: int, n_context: int, lr: float, steps: int = 1,
                    w0: Float[Array, " d"] | None = None) -> LSATransformer:
    """The recurrent LSA whose L = ``steps`` layers are exactly L GD steps.

    With tokens e = [x; y] (row vectors) and key size d + 1:

        W_Q = W_K = [[I_d, 0], [0, 0]]      so  q_iᵀ k_j = x_iᵀ x_j,
        W_V = Mᵀ,  M = [[0, 0], [W₀, −1]]    so  v_j = (0, W₀ x_j − y_j),
        W_P = diag(0_d, η/N),

    and each token becomes e_i ← (x_i, y_i − ΔW x_i) with ΔW = −η∇L(W₀). The query
    token must enter as (x_q, −W₀ x_q) — i.e. (x_q, 0) for W₀ = 0 — and the read-out
    −H[−1, −1] equals (W₀ + ΔW) x_q. Context y-slots become residuals, so stacking
    the layer L times performs L GD steps.
    """
    dim = d + 1
    w0 = jnp.zeros(d) if w0 is None else w0
    config = LSATransformerConfig(dim=dim, layers=steps, heads=1, key_size=dim, recurrent=True)
    model = LSATransformer(config, key=jax.random.key(0))
    w_qk = jnp.zeros((dim, dim)).at[:d, :d].set(jnp.eye(d))
    m = jnp.zeros((dim, dim)).at[d, :d].set(w0).at[d, d].set(-1.0)
    w_p = jnp.zeros((dim, dim)).at[d, d].set(lr / n_context)
    attn = model.blocks[0].attn
    weights = (w_qk[None], w_qk[None], m.T[None], w_p[None])
    return eqx.tree_at(lambda m: (m.blocks[0].attn.w_q, m.blocks[0].attn.w_k,
                                  m.blocks[0].attn.w_v, m.blocks[0].attn.w_p),
                       model, tuple(w.astype(attn.w_q.dtype) for w in weights))
