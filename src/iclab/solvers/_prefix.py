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


OOD_SETS = (("standard", 1.0), ("random_quadrants", 1.0), ("orthogonal_query", 1.0),
            ("repeated_query", 1.0), ("half_subspace", 1.0), ("skewed", 1.0))


def ood_error_curves(task, models, prompts: int, seed: int, scales=(1 / 3, 1 / 2, 2.0, 3.0)
                     ) -> dict[str, dict]:
    """Mean normalised squared error per position on each of Garg et al.'s
    out-of-distribution prompt sets (``ood_prompts``: standard, random quadrants, orthogonal
    and repeated queries, half subspace, skewed covariance, x and y scaled by each of
    ``scales``, noisy labels), for causal models on interleaved prompts (averaged over the
    models, e.g. training seeds), least squares and averaging.

    Returns:
        ``{prompt set: {"transformer" | "least squares" | "averaging": errors by k}}``.
    """
    import numpy as np

    from iclab.tasks import interleave, ood_prompts, query_prompt_predictions

    strategies = list(OOD_SETS) + [(f"scale_{axis}", s) for axis in ("x", "y") for s in scales]
    strategies += [("noisy_labels", 1.0)]
    out = {}
    for i, (strategy, scale) in enumerate(strategies):
        batch = ood_prompts(task, jax.random.fold_in(jax.random.key(seed), i), prompts,
                            strategy, scale)
        differ = strategy in ("random_quadrants", "orthogonal_query", "repeated_query")
        predictors = {"transformer": [lambda x, y, m=m: m(interleave(x, y))[::2]
                                      for m in models],
                      "least squares": [lambda x, y: prefix_predictions("least_squares", x, y)],
                      "averaging": [lambda x, y: prefix_predictions("averaging", x, y)]}
        name = f"{strategy}×{scale:.3g}" if strategy.startswith("scale") else strategy
        out[name] = {}
        for learner, fns in predictors.items():
            errors = []
            for fn in fns:
                preds = jax.jit(jax.vmap(lambda p, fn=fn, differ=differ:
                                         query_prompt_predictions(fn, p, differ)))(batch)
                errors.append(np.asarray((preds - batch.y_query) ** 2).mean(0)
                              / task.normaliser)
            out[name][learner] = np.mean(errors, axis=0)
    return out
