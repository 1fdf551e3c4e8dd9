"""Signal propagation at initialisation: rank collapse of the tokens and the gradients of
the attention projections (Noci et al. 2022)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.models._interface import HeadWeightsModel, ResidualStreamModel, require


def token_cosine(x: Float[Array, "t w"], eps: float = 1e-12) -> Float[Array, ""]:
    """ρ(X) = (1/(m(m−1))) Σ_{α≠β} ⟨x_α, x_β⟩ / (‖x_α‖ ‖x_β‖), the mean cosine between
    the m tokens of one sequence (ρ → 1: rank collapse).

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(token_cosine(jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))), 4)
        0.4714

    References:
        Noci et al. "Signal propagation in transformers: theoretical perspectives and the
        role of rank collapse", NeurIPS 2022.
    """
    unit = x / jnp.sqrt(jnp.sum(x ** 2, axis=-1, keepdims=True) + eps)
    gram = unit @ unit.T
    m = x.shape[0]
    return (jnp.sum(gram) - jnp.trace(gram)) / (m * (m - 1))


def stream_cosines(model: ResidualStreamModel, inputs: Float[Array, "b t d"]
                   ) -> Float[Array, " layers1"]:
    """``token_cosine`` of the residual stream after the read-in and after every block,
    averaged over a batch of sequences: (L + 1,)."""
    require(model, ResidualStreamModel, "stream_cosines")
    streams = jax.vmap(model.residual_stream)(inputs)  # (B, L + 1, T, W)
    return jax.vmap(jax.vmap(token_cosine))(streams).mean(0)


def projection_gradient_norms(model: HeadWeightsModel, loss) -> dict[str, Array]:
    """‖∂L/∂W_Q‖_F, ‖∂L/∂W_K‖_F, ‖∂L/∂W_V‖_F per layer (all heads), read through the
    model's ``head_weights`` applied to its gradient: {"q", "k", "v"} → (L,).

    Rank collapse makes the queries' and keys' gradients vanish: softmax is invariant to
    a shift per row, so with aligned tokens the attention is uniform and ∂L/∂W_{Q,K} → 0.

    Args:
        model: any ``HeadWeightsModel`` whose ``head_weights`` reads its arrays linearly
            (a split and reshape of fused weights, as GPT's; not through σReparam).
        loss: model → scalar.
    """
    require(model, HeadWeightsModel, "projection_gradient_norms")
    params, static = eqx.partition(model, eqx.is_array)
    grads = jax.grad(lambda p: loss(eqx.combine(p, static)))(params)
    layers = eqx.combine(grads, static).head_weights()
    return {name: jnp.stack([jnp.sqrt(jnp.sum(layer[name] ** 2)) for layer in layers])
            for name in ("q", "k", "v")}
