"""Baseline learners scored on every prefix of a prompt (Garg et al. 2022, §3).

For points (x_1, y_1), …, (x_K, y_K), ``prefix_predictions`` returns ŷ_i for
i = 1..K, each fitted on the first i − 1 pairs only (ŷ_1 = 0 for every learner):

* least squares: the min-norm solution X⁺y of the pairs seen so far;
* ridge(λ): (XᵀX + λI)⁻¹Xᵀy;
* k-NN: the mean label of the k nearest inputs seen so far (fewer if fewer seen);
* averaging: ŵ = (1/n) Σ_j y_j x_j.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

LEARNERS = ("least_squares", "ridge", "knn", "averaging")


def _prefix_weights(learner: str, x, y, mask, lam: float):
    xm, ym = x * mask[:, None], y * mask
    if learner == "least_squares":
        return jnp.linalg.pinv(xm) @ ym
    if learner == "ridge":
        return jnp.linalg.solve(xm.T @ xm + lam * jnp.eye(x.shape[1], dtype=x.dtype), xm.T @ ym)
    return xm.T @ ym / jnp.maximum(mask.sum(), 1.0)  # averaging


def prefix_predictions(learner: str, x: Float[Array, "k d"], y: Float[Array, " k"],
                       lam: float = 0.1, neighbours: int = 3) -> Float[Array, " k"]:
    """ŷ_i from the first i − 1 pairs, for every i (see the module docstring)."""
    if learner not in LEARNERS:
        raise ValueError(f"learner {learner!r} not in {LEARNERS}")
    k = x.shape[0]
    masks = (jnp.arange(k)[None, :] < jnp.arange(k)[:, None]).astype(x.dtype)  # row i: j < i
    if learner == "knn":
        def one(i, mask):
            dist = jnp.where(mask > 0, jnp.sum((x - x[i][None]) ** 2, axis=1), jnp.inf)
            neg, idx = jax.lax.top_k(-dist, neighbours)
            valid = jnp.isfinite(neg)
            return jnp.sum(jnp.where(valid, y[idx], 0.0)) / jnp.maximum(valid.sum(), 1)
        return jax.vmap(one)(jnp.arange(k), masks)
    weights = jax.vmap(lambda m: _prefix_weights(learner, x, y, m, lam))(masks)
    return jnp.einsum("kd,kd->k", weights, x)
