"""Block-identity structure of linear attention: how much of a layer's function is made of
scaled identity blocks (von Oswald et al. 2023, "CompressedAlg").

On constructed tokens e_t = [b_1, …, b_m] (m blocks of n entries, e.g. [0, s_t, s_t, s_{t−1}]
with n = n_s) the constructions of GD and of Proposition 2 use, per head, products
W_O W_V and W_Kᵀ W_Q whose n × n blocks are multiples of the identity. A linear layer
enters the function only through the sum over heads of the 4-tensor

    T = Σ_h (W_O W_V)_h ⊗ (W_Kᵀ W_Q)_h,
    Δe_t = Σ_{t'≤t} Σ_h (W_O W_V)_h e_{t'} (e_{t'}ᵀ (W_Kᵀ W_Q)_h e_t),

which, unlike the per-head products, does not depend on how heads split the work. The
CompressedAlg of the paper replaces every block B of both products by its identity part
(tr B / n) I: 16 numbers per product and head on 4 blocks, instead of 40². That is the
orthogonal projection 𝒫 onto block-scaled identities, applied to each factor, and the
tensor of the projected factors is the projection of T onto the block-identity tensors.
So the share ‖Σ_h 𝒫(ov_h) ⊗ 𝒫(qk_h)‖² / ‖T‖² ∈ [0, 1] is the fraction of the layer that
CompressedAlg keeps; 1 − share is its relative squared error in weight space.

References:
    von Oswald, Schlegel, Meulemans, Kobayashi, Niklasson, Zucchet, Scherrer, Miller,
    Vladymyrov, Pascanu, Sacramento. "Uncovering mesa-optimization algorithms in
    Transformers", arXiv 2309.05858 (2023): Methods, CompressedAlg; SI E.2 (fixed teacher:
    "unstructured" weights).
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.instruments._spectra import head_products


def identity_blocks(m: Float[Array, "... a b"], block: int) -> Float[Array, "... a b"]:
    """Every ``block`` × ``block`` block B of the last two axes replaced by (tr B / block) I,
    its orthogonal projection onto multiples of the identity.

    Args:
        m: matrices (batched over leading axes) whose sides are multiples of ``block``.
        block: the block size n.

    Examples:
        >>> import jax.numpy as jnp
        >>> m = jnp.array([[1.0, 5.0, 2.0, 0.0], [7.0, 3.0, 0.0, 4.0],
        ...                [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
        >>> identity_blocks(m, 2).tolist()[0]
        [2.0, 0.0, 3.0, 0.0]
    """
    *lead, a, b = m.shape
    if a % block or b % block:
        raise ValueError(f"matrix sides {a} × {b} are not multiples of the block {block}")
    blocks = m.reshape(*lead, a // block, block, b // block, block)
    means = jnp.einsum("...iaja->...ij", blocks) / block
    return jnp.einsum("...ij,ab->...iajb", means, jnp.eye(block, dtype=m.dtype)).reshape(m.shape)


def _block_index(blocks, block: int, size: int) -> Array:
    if blocks is None:
        return jnp.arange(size)
    return jnp.concatenate([jnp.arange(b * block, (b + 1) * block) for b in blocks])


def _tensor_norm2(ov: Float[Array, "h a b"], qk: Float[Array, "h c d"]) -> Array:
    """‖Σ_h ov_h ⊗ qk_h‖²_F = Σ_{h,h'} ⟨ov_h, ov_h'⟩ ⟨qk_h, qk_h'⟩."""
    return jnp.sum(jnp.einsum("hab,gab->hg", ov, ov) * jnp.einsum("hab,gab->hg", qk, qk))


def identity_block_share(model, block: int, out_blocks=None, in_blocks=None) -> list[float]:
    """Per layer of a ``HeadWeightsModel``, the share of the head-summed tensor
    T = Σ_h (W_O W_V)_h ⊗ (W_Kᵀ W_Q)_h that is made of block-scaled identities:
    ‖Σ_h 𝒫(ov_h) ⊗ 𝒫(qk_h)‖² / ‖T‖², with 𝒫 = ``identity_blocks`` (1: the layer is a
    CompressedAlg layer; a random Gaussian layer of n × n blocks: about 1/n⁴, 1/n² per
    factor).

    Args:
        model: a ``HeadWeightsModel`` whose attention inputs are the residual stream
            (no positions concatenated to queries and keys).
        block: the block size n (n_s on constructed tokens).
        out_blocks: indices of the output blocks that are read (None: all), e.g. (0,) for a
            1-layer model read from its first slot.
        in_blocks: indices of the input blocks that carry data (None: all), e.g. (2, 3)
            for the masked tokens [0, 0, s_t, s_{t−1}]; rows and columns of blocks that
            are always zero do not act and are left out.

    Returns:
        One share per layer (0 for a layer whose tensor is zero).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from iclab.models import CausalTransformer, CausalTransformerConfig
        >>> config = CausalTransformerConfig(layers=("linear",), heads=2, key_size=8,
        ...                                  init_std=1.0).resolve(8, 2)
        >>> share = identity_block_share(CausalTransformer(config, key=jax.random.key(0)), 2)
        >>> 0.0 < share[0] < 1.0
        True
    """
    shares = []
    for layer in head_products(model):
        ov, qk = layer["ov"], layer["qk"]
        if qk.shape[-1] != ov.shape[-1]:
            raise ValueError("identity_block_share: queries and keys read more than the "
                             "residual stream (positions concatenated)")
        rows = _block_index(out_blocks, block, ov.shape[-2])
        cols = _block_index(in_blocks, block, ov.shape[-1])
        ov, qk = ov[:, rows][:, :, cols], qk[:, cols][:, :, cols]
        total = _tensor_norm2(ov, qk)
        kept = _tensor_norm2(identity_blocks(ov, block), identity_blocks(qk, block))
        shares.append(float(jnp.where(total > 0, kept / jnp.where(total > 0, total, 1.0), 0.0)))
    return shares


def compressed_products(model, block: int) -> list[dict[str, Array]]:
    """CompressedAlg's products: every layer's per-head W_O W_V and W_Kᵀ W_Q
    (``head_products``) with each n × n block replaced by its identity part. Build the
    compressed model with ``CausalTransformer.with_head_products``."""
    return [{"ov": identity_blocks(p["ov"], block), "qk": identity_blocks(p["qk"], block)}
            for p in head_products(model)]
