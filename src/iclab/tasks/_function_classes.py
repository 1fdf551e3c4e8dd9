"""The function classes of Garg et al. (2022), §2 and their ``tasks.py``.

Inputs x ~ N(0, I_d); one function f per prompt:

* ``linear``: f(x) = wᵀx, w ~ N(0, I_d);
* ``sparse_linear``: as linear with all but ``sparsity`` (= 3) random coordinates of w zeroed;
* ``quadratic``: f(x) = (x ⊙ x)ᵀw / √3;
* ``relu_net``: f(x) = √(2/r) Σ_i a_i ReLU(W_iᵀx), W ~ N(0, I), a ~ N(0, 1), r = 100 units;
* ``decision_tree``: a full binary tree of depth 4 whose internal nodes test a random
  coordinate against 0 (right if > 0) and whose 16 leaves hold N(0, 1) values.

``noise_std`` adds Gaussian label noise (the "noisy linear regression" evaluation).
Normalisation constants for the reported error (zero estimator = 1) are in
``normaliser``: d for linear / quadratic (E y² = d) and ReLU nets, s for sparse, 1 for trees.
"""

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import ConfigError, check_choice, check_nonnegative, check_positive_int
from iclab.tasks._linear_regression import RegressionExample
from iclab.tasks._protocol import VmappedTask

KINDS = ("linear", "sparse_linear", "quadratic", "relu_net", "decision_tree")


@dataclass(frozen=True)
class FunctionClassTask(VmappedTask):
    """Args:
        kind: one of ``KINDS``.
        d: input dimension.
        n_context: context pairs N (a prompt has N + 1 points).
        sparsity: non-zero coordinates of w for ``sparse_linear``.
        hidden: ReLU units r for ``relu_net``.
        depth: tree depth for ``decision_tree``.
        noise_std: label noise σ.
    """

    kind: str = "linear"
    d: int = 20
    n_context: int = 40
    sparsity: int = 3
    hidden: int = 100
    depth: int = 4
    noise_std: float = 0.0

    def __post_init__(self):
        check_choice("task.kind", self.kind, KINDS)
        for key in ("d", "n_context", "sparsity", "hidden", "depth"):
            check_positive_int(f"task.{key}", getattr(self, key))
        check_nonnegative("task.noise_std", self.noise_std)

    @property
    def normaliser(self) -> float:
        return {"linear": self.d, "sparse_linear": self.sparsity, "quadratic": self.d,
                "relu_net": self.d, "decision_tree": 1.0}[self.kind]

    def function(self, key: PRNGKeyArray, x, active_dims=None):
        """(f(x) for x of shape (n, d), parameters of f as a flat vector). For sparse
        linear functions the non-zero coordinates are drawn among the first
        ``active_dims`` (all d if None)."""
        d = self.d
        if self.kind in ("linear", "sparse_linear", "quadratic"):
            kw, ks = jax.random.split(key)
            w = jax.random.normal(kw, (d,))
            if self.kind == "sparse_linear":
                scores = jax.random.uniform(ks, (d,))
                if active_dims is not None:
                    scores = jnp.where(jnp.arange(d) < active_dims, scores, 2.0)
                keep = jnp.argsort(scores)[: self.sparsity]
                w = jnp.zeros(d).at[keep].set(w[keep])
            features = x**2 / math.sqrt(3.0) if self.kind == "quadratic" else x
            return features @ w, w
        if self.kind == "relu_net":
            k1, k2 = jax.random.split(key)
            w1 = jax.random.normal(k1, (d, self.hidden))
            a = jax.random.normal(k2, (self.hidden,))
            return math.sqrt(2.0 / self.hidden) * jax.nn.relu(x @ w1) @ a, a
        # decision tree: node n (heap order, root 0) tests coordinate coords[n] against 0
        kc, kv = jax.random.split(key)
        internal = 2**self.depth - 1
        coords = jax.random.randint(kc, (internal,), 0, d)
        leaves = jax.random.normal(kv, (2**self.depth,))

        def evaluate(point):
            node = 0
            for _ in range(self.depth):
                node = 2 * node + 1 + (point[coords[node]] > 0).astype(jnp.int32)
            return leaves[node - internal]

        return jax.vmap(evaluate)(x), leaves

    OPTIONS = {"active_dims": None}  # a curriculum's active input dimensions (traced)

    def sample(self, key: PRNGKeyArray, active_dims=None) -> RegressionExample:
        """One prompt; with ``active_dims`` (traced or concrete) the coordinates of x from
        ``active_dims`` on are zeroed before f is applied (Garg et al.'s curriculum)."""
        kx, kf, kn = jax.random.split(key, 3)
        n = self.n_context + 1
        x = jax.random.normal(kx, (n * self.d,)).reshape(n, self.d)
        if active_dims is not None:
            x = x * (jnp.arange(self.d) < active_dims).astype(x.dtype)[None, :]
        y, params = self.function(kf, x, active_dims)
        y = y + self.noise_std * jax.random.normal(kn, (n,))
        return RegressionExample(x=x[:-1], y=y[:-1], x_query=x[-1], y_query=y[-1],
                                 w=params, noise_std=jnp.asarray(self.noise_std))



OOD_STRATEGIES = ("standard", "random_quadrants", "orthogonal_query", "repeated_query",
                  "half_subspace", "skewed", "scale_x", "scale_y", "noisy_labels")


class QueryPrompts(eqx.Module):
    """Prompts whose i-th prediction uses its own query: position i is predicted from the
    pairs (x_j, y_j), j < i, and the input ``x_query[i]`` with target ``y_query[i]``.
    In-distribution prompts have x_query = x and y_query = y."""

    x: Float[Array, "k d"]
    y: Float[Array, " k"]
    x_query: Float[Array, "k d"]
    y_query: Float[Array, " k"]


def _transformation(key: PRNGKeyArray, singular_values: Array) -> Array:
    """U diag(s) Uᵀ with a Haar-random U, scaled so that Σ s² = d (E‖x‖² unchanged for
    x = z·T, z ~ N(0, I)) — Garg et al.'s ``sample_transformation(normalize=True)``."""
    d = singular_values.shape[0]
    q, r = jnp.linalg.qr(jax.random.normal(key, (d, d)))
    u = q * jnp.sign(jnp.diag(r))[None, :]
    t = u @ jnp.diag(singular_values) @ u.T
    return t * jnp.sqrt(d / jnp.sum(singular_values**2))


def ood_prompts(task: FunctionClassTask, key: PRNGKeyArray, batch_size: int, strategy: str,
                scale: float = 2.0) -> QueryPrompts:
    """Garg et al.'s (2022, §4; ``eval.build_evals``) prompts for the linear class, K = N + 1
    points each (``orthogonal_query``: min(K, d) points):

    - standard: x ~ N(0, I), the training distribution;
    - random_quadrants: context inputs share one random sign pattern (|x| ⊙ s); queries keep
      their own signs;
    - orthogonal_query: query i is x_i minus its projection on span(x_1..x_{i−1}), rescaled
      to ‖x_i‖;
    - repeated_query: query i is a copy of a uniformly drawn earlier input x_j, j < i;
    - half_subspace: every input lies in one random d/2-dimensional subspace (x = z T);
    - skewed: x = z T with T's singular values ∝ 1/i (i = 1..d);
    - scale_x / scale_y: inputs / weights multiplied by ``scale``;
    - noisy_labels: y = (wᵀx + ε)·√(d/(d+1)), ε ~ N(0, 1), for every label and target.

    One transformation T per call (shared by the batch), as in the reference.
    """
    check_choice("strategy", strategy, OOD_STRATEGIES)
    if task.kind != "linear":
        raise ConfigError("task.kind", task.kind, "linear (the out-of-distribution prompts "
                          "are defined for linear regression)")
    d = task.d
    k = task.n_context + 1 if strategy != "orthogonal_query" else min(task.n_context + 1, d)
    k_t, k_b = jax.random.split(key)
    if strategy == "half_subspace":
        t = _transformation(k_t, (jnp.arange(d) < d // 2).astype(float))
    elif strategy == "skewed":
        t = _transformation(k_t, 1.0 / (jnp.arange(d) + 1.0))
    else:
        t = jnp.eye(d)

    def one(key):
        kx, kw, ks, kj, kn = jax.random.split(key, 5)
        x = jax.random.normal(kx, (k * d,)).reshape(k, d) @ t
        w = jax.random.normal(kw, (d,))
        x_query = x
        if strategy == "scale_x":
            x, x_query = scale * x, scale * x
        if strategy == "scale_y":
            w = scale * w
        if strategy == "random_quadrants":
            signs = jnp.sign(jax.random.normal(ks, (d,)))
            x = jnp.abs(x) * signs[None, :]
        if strategy == "repeated_query":
            j = jnp.floor(jax.random.uniform(kj, (k,)) * jnp.arange(k)).astype(int)
            x_query = x[j]
        if strategy == "orthogonal_query":
            def orthogonal(i):
                mask = (jnp.arange(k) < i).astype(x.dtype)[:, None]
                basis = x * mask
                coef = jnp.linalg.lstsq(basis.T, x[i])[0]
                residual = x[i] - basis.T @ coef
                return residual * jnp.linalg.norm(x[i]) / jnp.linalg.norm(residual)
            x_query = jax.vmap(orthogonal)(jnp.arange(k))
        y, y_query = x @ w, x_query @ w
        if strategy == "noisy_labels":
            noise = jax.random.normal(kn, (k,))  # x_query = x here, so one draw per point
            renorm = math.sqrt(d / (d + 1))
            y, y_query = (y + noise) * renorm, (y_query + noise) * renorm
        return QueryPrompts(x, y, x_query, y_query)

    return jax.vmap(one)(jax.random.split(k_b, batch_size))


def query_prompt_predictions(predict, prompts: QueryPrompts, queries_differ: bool = True
                             ) -> Float[Array, " k"]:
    """The i-th prediction of ``predict`` (x (K, d), y (K,)) → ŷ (K,) for one prompt, made
    with x_i, y_i replaced by the i-th query (one call per position when
    ``queries_differ``; one call when x_query = x)."""
    if not queries_differ:
        return predict(prompts.x, prompts.y)

    def at(i):
        x = prompts.x.at[i].set(prompts.x_query[i])
        y = prompts.y.at[i].set(prompts.y_query[i])
        return predict(x, y)[i]

    return jax.vmap(at)(jnp.arange(prompts.x.shape[0]))


@dataclass(frozen=True)
class CurriculumConfig:
    """Garg et al.'s curriculum (``curriculum.py``): every ``interval`` steps the active
    input dimensions grow by ``dims_inc`` from ``dims_start`` up to ``task.d`` and the
    prompt's points by ``points_inc`` from ``points_start`` up to N + 1. Inactive
    coordinates of x are zeroed (so only the active part of w matters) and points beyond
    the active count are left out of the loss — with a causal model the same as
    truncating the prompt. ``enabled`` = False trains on the full task from step 0.

    Args:
        enabled: use the curriculum (False: the full task from step 0).
        dims_start: active input dimensions at step 0.
        dims_inc: dimensions added every ``interval`` steps (up to ``task.d``).
        points_start: prompt points at step 0.
        points_inc: points added every ``interval`` steps (up to N + 1).
        interval: steps between increments.
    """

    enabled: bool = False
    dims_start: int = 5
    dims_inc: int = 1
    points_start: int = 11
    points_inc: int = 2
    interval: int = 2000

    def __post_init__(self):
        for key in ("dims_start", "points_start", "interval"):
            check_positive_int(f"curriculum.{key}", getattr(self, key))
        for key in ("dims_inc", "points_inc"):
            check_nonnegative(f"curriculum.{key}", getattr(self, key))

    def at(self, step, d: int, points: int):
        """(active dimensions, active points) at ``step`` (traced or concrete)."""
        stage = step // self.interval
        return (jnp.minimum(d, self.dims_start + self.dims_inc * stage),
                jnp.minimum(points, self.points_start + self.points_inc * stage))
