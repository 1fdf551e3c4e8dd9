"""Lasso by proximal gradient descent (ISTA), vectorised over tasks.

    ŵ = argmin_w  1/(2N) ‖Xw − y‖² + α ‖w‖₁

ISTA: w ← S_{tα}(w − t Xᵀ(Xw − y)/N) with step t = 1/L, L = λ_max(XᵀX/N), and the
soft threshold S_τ(v) = sign(v) max(|v| − τ, 0). Garg et al. use scikit-learn's
coordinate descent with α ∈ {1, 0.1, 0.01, 0.001, 1e-4}; the objective is the same.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def soft_threshold(v: Float[Array, "..."], tau: float | Array) -> Float[Array, "..."]:
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - tau, 0.0)


def lasso_weights(x: Float[Array, "n d"], y: Float[Array, " n"], alpha: float | Array,
                  iterations: int = 2000) -> Float[Array, " d"]:
    """The Lasso solution for one task by ``iterations`` ISTA steps from 0."""
    n = x.shape[0]
    gram, xty = x.T @ x / n, x.T @ y / n
    step = 1.0 / jnp.maximum(jnp.linalg.eigvalsh(gram)[-1], 1e-12)

    def body(_, w):
        return soft_threshold(w - step * (gram @ w - xty), step * alpha)

    return jax.lax.fori_loop(0, iterations, body, jnp.zeros(x.shape[1], x.dtype))


def lasso_prefix_predictions(x: Float[Array, "k d"], y: Float[Array, " k"], alpha: float,
                             iterations: int = 500) -> Float[Array, " k"]:
    """Lasso's prediction of y_i from the first i − 1 pairs, for every i (0 for i = 1).

    Each prefix is solved with its unseen rows masked to zero; ``lasso_weights``
    normalises the squared error by all K rows, so the penalty is α·n/K to keep that of
    the n pairs actually seen.
    """
    k = x.shape[0]
    masks = (jnp.arange(k)[None, :] < jnp.arange(k)[:, None]).astype(x.dtype)
    weights = jax.vmap(lambda m: lasso_weights(x * m[:, None], y * m, alpha * m.sum() / k,
                                               iterations))(masks)
    return jnp.einsum("kd,kd->k", weights, x)
