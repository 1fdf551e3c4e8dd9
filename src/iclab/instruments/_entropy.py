"""Attention entropy, its lower bound from the logits' spectral norm, and softmax
saturation (the logit gap past which float arithmetic absorbs the other classes).

References:
    Zhai, Likhomanenko, Littwin, Busbridge, Ramapuram, Zhang, Gu, Susskind. "Stabilizing
    Transformer Training by Preventing Attention Entropy Collapse", ICML 2023.
    Prieto, Barsbey, Mediano, Birdal. "Grokking at the Edge of Numerical Stability",
    ICLR 2025 (softmax collapse: absorption errors in the cross-entropy).
"""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def _entr(p: Array) -> Array:
    """−p log p with 0 log 0 = 0."""
    return jnp.where(p > 0, -p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)


def attention_entropy(patterns: Float[Array, "*lh t s"], causal: bool = True
                      ) -> tuple[Array, Array]:
    """Per-head attention entropy, raw and normalised by the log of the number of keys.

        Ent(A_i) = − Σ_j A_ij log A_ij,     normalised: Ent(A_i) / log n_i ∈ [0, 1],

    with n_i the keys query i may attend to (i + 1 under a causal mask, else T). Both are
    averaged over the queries; the normalised mean leaves out rows with a single key
    (log 1 = 0), so positions of different lengths are comparable. Collapse: a head's
    mean entropy falls towards 0.

    Args:
        patterns: attention weights (…, T_query, T_key), rows summing to 1 — e.g.
            ``AttentionPatternModel.attention_patterns`` (layers, heads, T, T).
        causal: row i has i + 1 valid keys (False: all T_key).

    Returns:
        ``(entropy, normalised)``, each of shape ``patterns.shape[:-2]``.

    Examples:
        >>> import jax.numpy as jnp
        >>> uniform = jnp.full((1, 1, 4, 4), 0.25)
        >>> [round(float(x[0, 0]), 4) for x in attention_entropy(uniform, causal=False)]
        [1.3863, 1.0]

    References:
        Zhai et al., ICML 2023, Sec. 3 (entropy per head).
    """
    t, s = patterns.shape[-2:]
    rows = jnp.sum(_entr(patterns), axis=-1)
    keys = jnp.arange(1, t + 1) + (s - t) if causal else jnp.full((t,), s)
    keys = keys.reshape((1,) * (rows.ndim - 1) + (t,))
    several = keys > 1
    normalised = jnp.where(several, rows / jnp.log(jnp.maximum(keys, 2)), 0.0)
    return rows.mean(axis=-1), normalised.sum(axis=-1) / jnp.maximum(several.sum(), 1)


def entropy_lower_bound(beta: float | Array, length: int) -> Array:
    """The smallest entropy a softmax row of ``length`` logits can have when its largest
    logit gap is at most β:

        Ent ≥ log(1 + (T−1) e^{−β}) + β (T−1) e^{−β} / (1 + (T−1) e^{−β}),

    attained by the logit vector (a, b, …, b) with a − b = β. For attention logits
    a_ij = x_iᵀ W x_j with σ = ‖W‖₂ and σ_x = ‖X Xᵀ‖₂, β = σ σ_x √(T/(T−1)) bounds the
    gap (``entropy_bound_beta``), so the entropy can only collapse when the logits'
    spectral norm grows; the bound decays exponentially in β.

    Args:
        beta: the largest logit gap β ≥ 0.
        length: T, the number of keys (≥ 2).

    Examples:
        >>> round(float(entropy_lower_bound(0.0, 8)), 4)  # β = 0: uniform, log 8
        2.0794

    References:
        Zhai et al., ICML 2023, Theorem 3.1 (this form derived in the project's notes:
        the exact constant in the paper's β is not checked against the PDF).
    """
    beta = jnp.asarray(beta, float)
    tail = (length - 1) * jnp.exp(-beta)
    return jnp.log1p(tail) + beta * tail / (1 + tail)


def entropy_bound_beta(x: Float[Array, "t d"], w: Float[Array, "d d"]) -> Array:
    """β = ‖W‖₂ ‖X Xᵀ‖₂ √(T/(T−1)) for logits X W Xᵀ (any 1/√d folded into W): the
    largest logit gap any row can have. See ``entropy_lower_bound``."""
    t = x.shape[0]
    return (jnp.linalg.norm(w, 2) * jnp.linalg.norm(x @ x.T, 2) * jnp.sqrt(t / (t - 1)))


def absorption_threshold(dtype) -> float:
    """The logit gap Δ* = log(2/ε) past which ``1 + e^{−Δ}`` rounds to 1 in ``dtype``
    (ε: its machine epsilon; round to nearest): once every other logit of a softmax is
    more than Δ* below the largest, the largest probability is exactly 1, the
    cross-entropy of a correct prediction is exactly 0, and its gradient vanishes.
    float32: 16.64, float64: 36.74, bfloat16: 5.55.

    Examples:
        >>> import numpy as np
        >>> round(absorption_threshold(np.float32), 2), round(absorption_threshold(np.float64), 2)
        (16.64, 36.74)

    References:
        Prieto et al., ICLR 2025 (absorption errors; softmax collapse in grokking).
    """
    eps = float(jnp.finfo(dtype).eps)
    return float(np.log(2.0 / eps))


def logit_gap(logits: Float[Array, "*batch c"]) -> Array:
    """The gap between the largest and the second largest logit of each row."""
    top = jnp.sort(logits, axis=-1)[..., -2:]
    return top[..., 1] - top[..., 0]


def absorbed_fraction(logits: Float[Array, "*batch c"]) -> Array:
    """The fraction of rows whose ``logit_gap`` exceeds the ``absorption_threshold`` of
    the logits' own float type (rows whose softmax is saturated to exactly one-hot)."""
    return jnp.mean(logit_gap(logits) > absorption_threshold(logits.dtype))
