"""Progress measures of an induction head in a standard attention-only transformer
(Musat et al. 2025, eqs. 20–22): the counterparts of the three coordinates α₃, β₂, γ₃ that
carry the emergence in the disentangled model (``iclab.models.DisentangledTransformer``).

With positional embeddings p_i, token embeddings t, per-head query/key/value/output maps
W_Q, W_K, W_V, W_O of layers 1 and 2, and the unembedding W_o:

    α̃₃ = Σ_{i=1}^{L−1} (W_K¹ p_{i−1})ᵀ (W_Q¹ p_i)           layer 1 attends to the previous position
    β̃₂ = Σ_{t ∈ items} (W_K² W_O¹ W_V¹ t)ᵀ (W_Q² t)          layer 2 matches a token with what
                                                            layer 1 moved to the key
    γ̃₃ = tr(W_o W_O² W_V² T) = Σ_{ℓ ∈ labels} W_o[ℓ] · W_O² W_V² t_ℓ   layer 2 copies the token

Raw bilinear forms (the softmax's 1/√d_k is left out; embedding biases are ignored).
W_O¹ W_V¹ is the whole first layer's OV map (summed over heads); α̃₃ is the maximum over
layer-1 heads, β̃₂ and γ̃₃ the maximum over layer-2 heads.
"""

import jax.numpy as jnp
from jaxtyping import Array, Int


def induction_progress(model, items: Int[Array, " i"], labels: Int[Array, " l"],
                       length: int) -> dict[str, Array]:
    """α̃₃, β̃₂, γ̃₃ of a ``CausalTransformer`` with a linear token embedding, learned
    positions, at least two softmax layers and a linear read-out (layer norms off)."""
    from iclab.models import CausalTransformer, require

    require(model, CausalTransformer, "induction_progress")
    first, second = model.layers[0], model.layers[1]
    positions = model.position_embedding[:length]                       # (L, D)
    tokens = model.embed.weight.T                                         # (V, D)
    q1 = jnp.einsum("hkd,id->hik", first.w_q, positions[1:])
    k1 = jnp.einsum("hkd,id->hik", first.w_k, positions[:-1])
    alpha3 = jnp.einsum("hik,hik->h", q1, k1).max()
    ov1 = jnp.einsum("hdk,hke->de", first.w_p, first.w_v)                 # Σ_h W_O W_V
    t_items = tokens[items]
    moved = t_items @ ov1.T                                               # W_O¹ W_V¹ t
    beta2 = jnp.einsum("hkd,id,hke,ie->h", second.w_k, moved, second.w_q, t_items).max()
    ov2 = jnp.einsum("hdk,hke->hde", second.w_p, second.w_v)
    t_labels = tokens[labels]
    unembed = model.read_out.weight[labels]                               # (l, D)
    gamma3 = jnp.einsum("ld,hde,le->h", unembed, ov2, t_labels).max()
    return {"alpha3_tilde": alpha3, "beta2_tilde": beta2, "gamma3_tilde": gamma3}
