"""A greedy regression tree (CART) of bounded depth, in JAX — the decision-tree baseline of
Garg et al. (2022) for in-context regression of decision trees (their sklearn
``DecisionTreeRegressor(max_depth=4)``).

Growing: every internal node of a full binary tree of depth ``depth`` (heap order, root
0) receives the seen points that reach it and chooses the split x_f ≤ t minimising the
summed squared error of its two sides,

    SSE = Σ_left (y − ȳ_left)² + Σ_right (y − ȳ_right)²,

over features f and thresholds t halfway between consecutive distinct values of x_f
among its points (sklearn's rule; ties go to the lowest feature, then the lowest
threshold — sklearn breaks them at random). A node with no valid
split (fewer than two distinct values in every feature) sends everything left. A leaf
predicts the mean label of its points, or its nearest non-empty ancestor's mean.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def fit_tree(x: Float[Array, "n d"], y: Float[Array, " n"], mask: Float[Array, " n"],
             depth: int = 4) -> dict[str, Array]:
    """The tree on the points with mask 1: {"feature", "threshold"} per internal node
    (2^depth − 1) and "value" per leaf (2^depth)."""
    n_internal = 2**depth - 1
    masks = [mask.astype(x.dtype)]  # masks[node], built level by level
    means = [jnp.sum(mask * y) / jnp.maximum(mask.sum(), 1.0)]
    features, thresholds = [], []
    for node in range(n_internal):
        m, fallback = masks[node], means[node]
        feature, threshold = _best_split(x, y, m)
        features.append(feature)
        thresholds.append(threshold)
        go_left = (x[:, feature] <= threshold).astype(x.dtype)
        for side in (m * go_left, m * (1 - go_left)):
            count = side.sum()
            masks.append(side)
            means.append(jnp.where(count > 0, jnp.sum(side * y) / jnp.maximum(count, 1.0),
                                   fallback))
    return {"feature": jnp.stack(features), "threshold": jnp.stack(thresholds),
            "value": jnp.stack(means[n_internal:])}


def _best_split(x, y, m):
    """(feature, threshold) of the best split of the points with mask m, or (0, +inf)."""
    n, d = x.shape
    seen = m[:, None] > 0
    # candidate thresholds: halfway from each point's value to the next larger value seen
    larger = (x[None, :, :] > x[:, None, :]) & seen[None, :, :]          # (i, j, f)
    nxt = jnp.min(jnp.where(larger, x[None, :, :], jnp.inf), axis=1)    # (i, f)
    valid = seen & jnp.isfinite(nxt)
    threshold = jnp.where(valid, (x + jnp.where(valid, nxt, 0.0)) / 2, jnp.inf)
    left = (x[None, :, :] <= threshold[:, None, :]) * m[None, :, None]  # (i, j, f)
    right = (1 - (x[None, :, :] <= threshold[:, None, :])) * m[None, :, None]

    def sse(side):
        count = side.sum(1)
        total = jnp.einsum("ijf,j->if", side, y)
        squares = jnp.einsum("ijf,j->if", side, y * y)
        return squares - total**2 / jnp.maximum(count, 1.0)

    cost = jnp.where(valid, sse(left) + sse(right), jnp.inf)                 # (i, f)
    best = jnp.min(cost)
    # ties (within rounding): the lowest feature, then the lowest threshold
    near = cost <= best + 1e-9 * (1.0 + jnp.abs(best))
    f = jnp.argmax(near.any(axis=0))
    t = jnp.min(jnp.where(near[:, f], threshold[:, f], jnp.inf))
    found = jnp.isfinite(best)
    return jnp.where(found, f, 0), jnp.where(found, t, jnp.inf)


def tree_predict(tree: dict[str, Array], x: Float[Array, "n d"]) -> Float[Array, " n"]:
    n_internal = tree["feature"].shape[0]
    depth = (n_internal + 1).bit_length() - 1

    def one(point):
        node = 0
        for _ in range(depth):
            right = point[tree["feature"][node]] > tree["threshold"][node]
            node = 2 * node + 1 + right.astype(jnp.int32)
        return tree["value"][node - n_internal]

    return jax.vmap(one)(x)


def tree_prefix_predictions(x: Float[Array, "k d"], y: Float[Array, " k"], depth: int = 4
                            ) -> Float[Array, " k"]:
    """ŷ_i of a depth-``depth`` tree grown on the first i − 1 pairs (ŷ_1 = 0)."""
    k = x.shape[0]
    masks = (jnp.arange(k)[None, :] < jnp.arange(k)[:, None]).astype(x.dtype)

    def one(i, mask):
        return tree_predict(fit_tree(x, y, mask, depth), x[i][None])[0]

    return jax.vmap(one)(jnp.arange(k), masks)
