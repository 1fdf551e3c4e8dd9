"""Compare a trained in-context learner with a reference learner on the same tasks.

Definitions follow von Oswald et al. 2022 (§4, Fig. 2) and their reference code:
the prediction difference, and the agreement of the *sensitivities*
s = ∂ŷ/∂x_q, the linear model each learner implies for the task.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


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
