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

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from iclab._errors import check_choice, check_nonnegative, check_positive_int
from iclab.tasks._linear_regression import RegressionExample

KINDS = ("linear", "sparse_linear", "quadratic", "relu_net", "decision_tree")


@dataclass(frozen=True)
class FunctionClassTask:
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

    def function(self, key: PRNGKeyArray, x):
        """(f(x) for x of shape (n, d), parameters of f as a flat vector)."""
        d = self.d
        if self.kind in ("linear", "sparse_linear", "quadratic"):
            kw, ks = jax.random.split(key)
            w = jax.random.normal(kw, (d,))
            if self.kind == "sparse_linear":
                keep = jax.random.permutation(ks, d)[: self.sparsity]
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

    def sample(self, key: PRNGKeyArray) -> RegressionExample:
        kx, kf, kn = jax.random.split(key, 3)
        n = self.n_context + 1
        x = jax.random.normal(kx, (n * self.d,)).reshape(n, self.d)
        y, params = self.function(kf, x)
        y = y + self.noise_std * jax.random.normal(kn, (n,))
        return RegressionExample(x=x[:-1], y=y[:-1], x_query=x[-1], y_query=y[-1],
                                 w=params, noise_std=jnp.asarray(self.noise_std))

    def sample_batch(self, key: PRNGKeyArray, batch_size: int) -> RegressionExample:
        return jax.vmap(self.sample)(jax.random.split(key, batch_size))
