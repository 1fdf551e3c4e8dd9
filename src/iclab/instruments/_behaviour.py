"""Behavioural comparison of two in-context learners (Akyürek et al., ICLR 2023, §4).

    SPD(A, B)  = E_D E_x' [(A(D)(x') − B(D)(x'))²]       squared prediction difference
    ILWD(A, B) = E_D ‖ŵ_A(D) − ŵ_B(D)‖²                  implicit linear weight difference

ŵ_A(D) is the linear model that best explains A's predictions on the context D: the
least-squares fit of A(D)(x'_p) on P probe inputs x'_p (exact for learners that are
linear in the query, e.g. linear attention, GD, ridge).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def squared_prediction_difference(preds_a: Float[Array, "..."], preds_b: Float[Array, "..."]
                                  ) -> Float[Array, ""]:
    """SPD: the mean of (ŷ_A − ŷ_B)² over tasks and query points."""
    return jnp.mean((preds_a - preds_b) ** 2)


def implicit_linear_weights(predict: Callable[[Float[Array, "t dim"]], Float[Array, ""]],
                            tokens: Float[Array, "t dim"], probes: Float[Array, "p d"]
                            ) -> Float[Array, " d"]:
    """ŵ = argmin_w Σ_p (wᵀx'_p − A(D)(x'_p))²: put each probe input in the query slot of
    ``tokens`` (query = last token, x in its first d coordinates), read A's prediction,
    and fit a linear model by least squares."""
    d = probes.shape[1]
    preds = jax.vmap(lambda x: predict(tokens.at[-1, :d].set(x)))(probes)
    return jnp.linalg.lstsq(probes, preds)[0]


def implicit_weight_difference(w_a: Float[Array, "b d"], w_b: Float[Array, "b d"]
                               ) -> Float[Array, ""]:
    """ILWD: the mean over tasks of ‖ŵ_A − ŵ_B‖²."""
    return jnp.mean(jnp.sum((w_a - w_b) ** 2, axis=-1))


def layer_implicit_weights(model, batch, d: int):
    """w^l = ∂ŷ^l/∂x_q for the read-out ŷ^l after every layer l of a linear-attention
    model whose query never acts as a key or value: each read-out is then exactly linear
    in x_q (Vladymyrov et al. 2024, Thm. 4.1). Shape (B, L, d).

    Args:
        model: a ``LayerReadoutModel`` (``layer_predictions(tokens) -> (L,)``).
        batch: a ``RegressionExample`` batch.
        d: input dimension (the query's first d coordinates).
    """
    from iclab.models import LayerReadoutModel, require
    from iclab.tasks import to_tokens

    require(model, LayerReadoutModel, "layer_implicit_weights")

    def one(tokens):
        return jax.jacobian(model.layer_predictions)(tokens)[:, -1, :d]

    return jax.vmap(one)(jax.vmap(to_tokens)(batch))


def layer_losses(model, batch) -> Float[Array, " layers"]:
    """½ E(ŷ⁽ˡ⁾ − y_q)² of the read-out after every layer l = 1..L of one model, on a
    ``RegressionExample`` batch: the loss "after K layers inside one model" (Vladymyrov et
    al. 2024, Fig. 5; von Oswald et al. 2023). Shape (L,).

    Args:
        model: a ``LayerReadoutModel``.
        batch: a ``RegressionExample`` batch.
    """
    from iclab.models import LayerReadoutModel, require
    from iclab.tasks import to_tokens

    require(model, LayerReadoutModel, "layer_losses")
    preds = jax.vmap(model.layer_predictions)(jax.vmap(to_tokens)(batch))  # (B, L)
    return 0.5 * jnp.mean((preds - batch.y_query[:, None]) ** 2, axis=0)
