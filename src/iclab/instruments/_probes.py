"""Linear probes: what a model's activations linearly encode (Alain & Bengio 2016; used
per layer and time step by von Oswald et al. 2023, Figs. 2, 4E–F, 6).

A probe is an affine least-squares decoder ŷ = Wᵀ[a; 1] fitted on activations a of
one set of sequences and scored on held-out sequences:

    MSE = mean_i ‖ŷ_i − y_i‖² / K,    R² = 1 − Σ_i ‖ŷ_i − y_i‖² / Σ_i ‖y_i − ȳ‖²

(ȳ the fitting set's mean), so R² = 1 is perfect decoding and R² ≈ 0 no linear
information beyond the mean. ``probe_grid`` fits one probe per (layer, time step).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def fit_linear_probe(features: Float[Array, "n d"], targets: Float[Array, "n k"],
                     ridge: float = 1e-6) -> Float[Array, "d1 k"]:
    """Affine least squares W = argmin ‖[a, 1] W − y‖² + ridge·‖W‖² (ridge relative to the
    mean squared feature, for conditioning)."""
    a = jnp.concatenate([features, jnp.ones((features.shape[0], 1), features.dtype)], axis=1)
    gram = a.T @ a
    scale = jnp.trace(gram) / gram.shape[0]
    return jnp.linalg.solve(gram + ridge * scale * jnp.eye(gram.shape[0], dtype=a.dtype),
                            a.T @ targets)


def apply_linear_probe(weights: Float[Array, "d1 k"], features: Float[Array, "n d"]
                       ) -> Float[Array, "n k"]:
    return features @ weights[:-1] + weights[-1][None, :]


def probe_scores(train_features, train_targets, test_features, test_targets,
                 ridge: float = 1e-6) -> dict[str, Array]:
    """Fit on (train_features, train_targets), score on the test pair: {"mse", "r2"}."""
    weights = fit_linear_probe(train_features, train_targets, ridge)
    error = jnp.sum((apply_linear_probe(weights, test_features) - test_targets) ** 2)
    spread = jnp.sum((test_targets - train_targets.mean(0, keepdims=True)) ** 2)
    return {"mse": error / test_targets.size, "r2": 1.0 - error / spread}


def probe_grid(features: Float[Array, "n l t d"], targets: Float[Array, "n t k"],
               ridge: float = 1e-6, train_fraction: float = 0.5) -> dict[str, Array]:
    """One probe per (layer l, time step t), fitted on the first ``train_fraction`` of
    the n sequences and scored on the rest: {"mse": (L, T), "r2": (L, T)}."""
    n_train = int(features.shape[0] * train_fraction)
    if not 0 < n_train < features.shape[0]:
        raise ValueError(f"train_fraction={train_fraction} leaves no fitting or test set")

    def one(f, y):  # f: (n, d), y: (n, k)
        return probe_scores(f[:n_train], y[:n_train], f[n_train:], y[n_train:], ridge)

    per_time = jax.vmap(one, in_axes=(1, 1))  # over t
    return jax.vmap(per_time, in_axes=(1, None))(features, targets)  # over l
