"""Compare a trained in-context learner with a reference learner on the same tasks.

Definitions follow von Oswald et al. 2022 (§4, Fig. 2) and their reference code:
the prediction difference, and the agreement of the *sensitivities*
s = ∂ŷ/∂x_q, the linear model each learner implies for the task.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.tasks import RegressionExample


def query_loss(preds: Float[Array, " b"], targets: Float[Array, " b"]) -> Float[Array, ""]:
    """L = 1/(2B) Σ_b (ŷ_b − y_b)², the ½-MSE on the query used in training."""
    return 0.5 * jnp.mean((preds - targets) ** 2)


def cosine_similarity(a: Float[Array, "b d"], b: Float[Array, "b d"], eps: float = 1e-8
                      ) -> Float[Array, " b"]:
    """Row-wise cos(a, b) = aᵀb / ((‖a‖ + ε)(‖b‖ + ε)) (ε as in the reference code)."""
    num = jnp.sum(a * b, axis=-1)
    return num / ((jnp.linalg.norm(a, axis=-1) + eps) * (jnp.linalg.norm(b, axis=-1) + eps))


def prediction_difference(preds: Float[Array, " b"], reference: Float[Array, " b"]
                          ) -> dict[str, Float[Array, ""]]:
    """How far two learners' query predictions are on the same tasks.

    Returns:
        ``mean_abs``: (1/B) Σ_b |ŷ_b − ŷ_b^ref| (the reference code's "preds diff");
        ``relative``: ‖ŷ − ŷ^ref‖₂ / ‖ŷ^ref‖₂ over the batch (scale-free).
    """
    diff = preds - reference
    return {"mean_abs": jnp.mean(jnp.abs(diff)),
            "relative": jnp.linalg.norm(diff) / jnp.linalg.norm(reference)}


def label_polynomial_parts(predict: Callable[[RegressionExample], Float[Array, ""]],
                           example: RegressionExample) -> dict[str, Float[Array, ""]]:
    """Split a prediction into its parts of degree 0, 1 and 2 in the context labels.

    One linear self-attention layer whose query carries the label 0 predicts
    ŷ = −Σ_j s_j v_j with a score s_j and a value v_j that are both affine in y_j, so
    ŷ(t·y) = f₀ + t f₁ + t² f₂ exactly, and three evaluations give the parts:

        f₀ = ŷ(0),   f₁ = (ŷ(y) − ŷ(−y)) / 2,   f₂ = (ŷ(y) + ŷ(−y)) / 2 − ŷ(0).

    One GD step from w₀ on features φ, ŷ = w₀ᵀφ_q + (η/N) Σ_j (y_j − w₀ᵀφ_j) φ_jᵀφ_q, is
    a linear model fitted in context: f₂ = 0 (von Oswald et al. 2023, Prop. 1). A large
    f₂ means the learner uses the labels' energy Σ_j y_j² (times a function of the
    inputs), which no GD step does.

    Returns:
        ``label_free`` f₀, ``linear`` f₁, ``quadratic`` f₂, and ``degree_residual``
        ŷ(2y) − (f₀ + 2 f₁ + 4 f₂): zero when ŷ has degree ≤ 2 in y, so that the split
        is exact (not so for several attention layers or an MLP on the labels).
    """
    def at(t):
        return predict(RegressionExample(example.x, t * example.y, example.x_query,
                                         example.y_query, example.w, example.noise_std))

    plus, minus, zero = at(1.0), at(-1.0), at(0.0)
    linear, quadratic = (plus - minus) / 2, (plus + minus) / 2 - zero
    return {"label_free": zero, "linear": linear, "quadratic": quadratic,
            "degree_residual": at(2.0) - (zero + 2 * linear + 4 * quadratic)}


def query_sensitivity(predict: Callable[[Float[Array, "t dim"]], Float[Array, ""]],
                      tokens: Float[Array, "t dim"], d: int) -> Float[Array, " d"]:
    """s = ∂ŷ/∂x_q: the gradient of the prediction w.r.t. the query's first d inputs.

    For a learner that fits a linear model w from the context, s = w.
    """
    return jax.grad(predict)(tokens)[-1, :d]


def sensitivity_agreement(sens: Float[Array, "b d"], reference: Float[Array, "b d"]
                          ) -> dict[str, Float[Array, ""]]:
    """``cos``: mean_b cos(s_b, s_b^ref) ("model cos"); ``l2``: mean_b ‖s_b − s_b^ref‖₂."""
    return {"cos": jnp.mean(cosine_similarity(sens, reference)),
            "l2": jnp.mean(jnp.linalg.norm(sens - reference, axis=-1))}


def token_sensitivities(f: Callable[[Float[Array, "t d"]], Float[Array, "t w"]],
                        tokens: Float[Array, "t d"]) -> dict[str, Float[Array, ""]]:
    """How much each output token of a sequence map depends on each input token, as the
    Frobenius norms n[j, s] = ‖∂f(X)_j / ∂X_s‖_F over the context (the last token, the
    query, left out), averaged:

        next  = mean_j n[j, j + 1]   (copying from the following token),
        own   = mean_j n[j, j],
        other = mean over j and s ∉ {j, j + 1} of n[j, s],

    with j over the first T − 2 tokens and s over the first T − 1. On the standard token
    construction a first layer that merges each x_j with its y_j has next ≫ other (the
    reference notebook ``normal_token_construct``'s ``analyse_copy``).
    """
    jac = jax.jacrev(f)(tokens)                                    # (T, W, T, d)
    norms = jnp.sqrt(jnp.sum(jac**2, axis=(1, 3)))[:-1, :-1]        # context rows, cols
    c = norms.shape[0]
    j = jnp.arange(c - 1)
    mask = jnp.ones((c - 1, c), bool).at[j, j].set(False).at[j, j + 1].set(False)
    rows = norms[:-1]
    return {"next": rows[j, j + 1].mean(), "own": rows[j, j].mean(),
            "other": jnp.sum(jnp.where(mask, rows, 0.0)) / mask.sum()}
