"""Ridge-regression baselines for in-context regression with unknown noise
(Vladymyrov et al. 2024, §6), vectorised over tasks.

    w_λ = (XᵀX + λ I)⁻¹ Xᵀy                       ridge
    w_OLS = X⁺ y                                  least squares (min-norm)
    σ̂² = ‖y − X w_OLS‖² / (N − d)                 unbiased noise estimate (N > d)

Baselines: the *oracle* uses λ = σ_τ²/τ² with the task's true noise σ_τ and the
prior w ~ N(0, τ² I) (the Bayes posterior mean); *ConstRR* one λ tuned per noise
distribution; *AdaRR* λ = σ̂²; *TunedRR* λ = c · min(σ̂², t) with (t, c) tuned.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from iclab.solvers._line_search import grid_then_golden
from iclab.tasks import RegressionExample


def ridge_weights(x: Float[Array, "n d"], y: Float[Array, " n"], lam: float | Array
                  ) -> Float[Array, " d"]:
    """w_λ = (XᵀX + λI)⁻¹ Xᵀy."""
    d = x.shape[1]
    return jnp.linalg.solve(x.T @ x + lam * jnp.eye(d, dtype=x.dtype), x.T @ y)


def ols_weights(x: Float[Array, "n d"], y: Float[Array, " n"]) -> Float[Array, " d"]:
    """The minimum-norm least-squares solution X⁺y (also when N < d)."""
    return jnp.linalg.pinv(x) @ y


def noise_variance_estimate(x: Float[Array, "n d"], y: Float[Array, " n"]) -> Float[Array, ""]:
    """σ̂² = ‖y − X w_OLS‖² / (N − d), unbiased for Gaussian noise when N > d."""
    n, d = x.shape
    residual = y - x @ ols_weights(x, y)
    return residual @ residual / (n - d)


def oracle_ridge_weights(example: RegressionExample, prior_var: float = 1.0) -> Float[Array, " d"]:
    """Bayes-optimal ridge with the task's true noise: λ = σ_τ² / τ²."""
    return ridge_weights(example.x, example.y, example.noise_std**2 / prior_var)


def adaptive_ridge_weights(example: RegressionExample, cap: float | Array = jnp.inf,
                           scale: float | Array = 1.0) -> Float[Array, " d"]:
    """AdaRR (λ = σ̂²), or TunedRR (λ = scale · min(σ̂², cap)) when cap/scale are given."""
    sigma2 = noise_variance_estimate(example.x, example.y)
    return ridge_weights(example.x, example.y, scale * jnp.minimum(sigma2, cap))


def weights_loss(batch: RegressionExample, weights: Float[Array, "b d"]) -> Float[Array, ""]:
    """½ mean over tasks of (wᵀx_q − y_q)² for per-task weight vectors."""
    preds = jnp.einsum("bd,bd->b", weights, batch.x_query)
    return 0.5 * jnp.mean((preds - batch.y_query) ** 2)


class RidgePath(eqx.Module):
    """Query predictions of ridge for any λ ≥ 0 from one eigendecomposition per task.

    With XᵀX = V diag(s) Vᵀ, the ridge prediction on the query is
    ŷ(λ) = Σ_k a_k / (s_k + λ),  a_k = (x_qᵀ v_k)(v_kᵀ Xᵀy),
    so a sweep over λ (or a λ per task) costs O(d) per task instead of a solve.
    """

    eigenvalues: Float[Array, "b d"]
    coefficients: Float[Array, "b d"]
    targets: Float[Array, " b"]
    noise_var: Float[Array, " b"]

    def __init__(self, batch: RegressionExample):
        s, v = jnp.linalg.eigh(jnp.einsum("bnd,bne->bde", batch.x, batch.x))
        xty = jnp.einsum("bnd,bn->bd", batch.x, batch.y)
        self.eigenvalues = s
        self.coefficients = (jnp.einsum("bd,bdk->bk", batch.x_query, v)
                             * jnp.einsum("bdk,bd->bk", v, xty))
        self.targets = batch.y_query
        self.noise_var = jax.vmap(noise_variance_estimate)(batch.x, batch.y)

    def predictions(self, lam: float | Float[Array, " b"]) -> Float[Array, " b"]:
        lam = jnp.asarray(lam)
        lam = lam[:, None] if lam.ndim == 1 else lam
        return jnp.sum(self.coefficients / (self.eigenvalues + lam), axis=-1)

    def loss(self, lam: float | Float[Array, " b"]) -> Float[Array, ""]:
        """½ mean over tasks of (ŷ(λ) − y_q)²."""
        return 0.5 * jnp.mean((self.predictions(lam) - self.targets) ** 2)


def ridge_loss(batch: RegressionExample, lam: float | Array) -> Float[Array, ""]:
    """½ mean query loss of ridge with λ (a scalar, or one per task)."""
    return RidgePath(batch).loss(lam)


def tune_const_ridge(batch: RegressionExample) -> tuple[float, float]:
    """ConstRR: the single λ ≥ 0 minimising the query loss on ``batch`` (searched in log λ).

    Returns:
        (λ, loss).
    """
    path = RidgePath(batch)
    log_lam, loss = grid_then_golden(lambda log_lam, p: p.loss(jnp.exp(log_lam)), -12.0, 6.0,
                                     path, n_grid=73)
    return float(np.exp(log_lam)), loss


def tune_tuned_ridge(batch: RegressionExample, sweeps: int = 3) -> tuple[float, float, float]:
    """TunedRR: (cap t, scale c) of λ = c · min(σ̂², t) by coordinate-wise search in logs.

    Returns:
        (t, c, loss).
    """
    path = RidgePath(batch)

    def loss(log_cap, log_scale, p):
        return p.loss(jnp.exp(log_scale) * jnp.minimum(p.noise_var, jnp.exp(log_cap)))

    log_cap, log_scale = float(np.log(float(jnp.max(path.noise_var)) + 1e-6)), 0.0
    value = float(loss(log_cap, log_scale, path))
    for _ in range(sweeps):
        log_cap, value = grid_then_golden(lambda c, p, ls=log_scale: loss(c, ls, p),
                                          -8.0, log_cap + 1.0, path, n_grid=33)
        log_scale, value = grid_then_golden(lambda ls, p, c=log_cap: loss(c, ls, p),
                                            -4.0, 2.0, path, n_grid=33)
    return float(np.exp(log_cap)), float(np.exp(log_scale)), value


def _standard_gaussian(task) -> bool:
    return task.input_dist == "gaussian" and task.input_std == 1.0 and task.w_scale == 1.0


def analytic_one_layer_loss(task) -> float | None:
    """L₁ = ½[D − ND/(N + D + 1 + Eσ²)]: the population loss of the best single
    preconditioned GD step from 0, ŷ = η* Σ_j y_j x_jᵀ x_q with η* = 1/(N + D + 1 + Eσ²),
    for x, w ~ N(0, I) (uses E[(XᵀX)²] = N(N + D + 1) I; Vladymyrov et al. 2024). None for
    other input or weight distributions.

    Args:
        task: a ``LinearRegressionTask``.
    """
    if not _standard_gaussian(task):
        return None
    n, d = task.n_context, task.d
    return 0.5 * (d - n * d / (n + d + 1 + task.mean_noise_variance))


def analytic_one_layer_step(task) -> float | None:
    """The step η* · N of ``analytic_one_layer_loss`` in the N-normalised convention of
    ``DiagonalLSA.gd`` (ω_yx = −η*), or None where the closed form does not apply."""
    if not _standard_gaussian(task):
        return None
    return task.n_context / (task.n_context + task.d + 1 + task.mean_noise_variance)
