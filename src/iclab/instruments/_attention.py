"""Attention-pattern scores for induction circuits (Olsson et al. 2022; the detection
patterns of TransformerLens' ``head_detector``), usable on any model that exposes its
attention weights A[t, s] (query t, key s ≤ t; rows sum to 1 for softmax attention).

Scoring rule ("mul"): the fraction of attention mass that falls on the pattern M,

    score = Σ_t Σ_s A[t, s] M[t, s] / Σ_t Σ_s A[t, s],

summed over the query rows t whose pattern is non-empty (rows with nothing to match are
left out). A head that puts all its mass on the pattern scores 1; uniform causal
attention scores the mean of |M[t]| / (t + 1) weighted over those rows. Patterns:

- previous token: M[t, t − 1] = 1;
- duplicate token: M[t, s] = 1 if tokens[s] = tokens[t], s < t;
- induction (prefix matching): M[t, s] = 1 if tokens[s − 1] = tokens[t], 1 ≤ s ≤ t — attend
  to the token *after* an earlier occurrence of the current one.

Known weakness of "mul" (TransformerLens#255): a head attending everywhere gets partial
credit; compare against the uniform-attention value, which ``uniform_score`` returns.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def previous_token_mask(length: int) -> Array:
    return jnp.eye(length, k=-1, dtype=bool)


def duplicate_token_mask(tokens: Int[Array, " t"]) -> Array:
    same = tokens[:, None] == tokens[None, :]
    return same & jnp.tril(jnp.ones(same.shape, bool), k=-1)


def induction_mask(tokens: Int[Array, " t"]) -> Array:
    """M[t, s] = [tokens[s − 1] = tokens[t]] for 1 ≤ s ≤ t."""
    dup_or_self = (tokens[:, None] == tokens[None, :]) & jnp.tril(
        jnp.ones((tokens.shape[0],) * 2, bool), k=-1)
    shifted = jnp.zeros_like(dup_or_self).at[:, 1:].set(dup_or_self[:, :-1])
    return shifted & jnp.tril(jnp.ones_like(shifted))


def pattern_score(pattern: Float[Array, "t t"], mask: Array) -> Float[Array, ""]:
    """Fraction of attention on ``mask`` over the rows where ``mask`` is non-empty."""
    rows = mask.any(axis=1)
    on = jnp.sum(jnp.where(mask, pattern, 0.0), axis=1)
    total = jnp.sum(pattern, axis=1)
    return jnp.sum(jnp.where(rows, on, 0.0)) / jnp.maximum(
        jnp.sum(jnp.where(rows, total, 0.0)), 1e-12)


def uniform_score(mask: Array) -> Float[Array, ""]:
    """The score of uniform causal attention A[t, s] = 1/(t + 1) on ``mask``: a baseline."""
    t = mask.shape[0]
    uniform = jnp.tril(jnp.ones((t, t))) / jnp.arange(1, t + 1)[:, None]
    return pattern_score(uniform, mask)


def head_scores(patterns: Float[Array, "l h t t"], tokens: Int[Array, " t"]
                ) -> dict[str, Float[Array, "l h"]]:
    """Previous-token, duplicate-token and induction scores of every head, one sequence."""
    masks = {"previous_token": previous_token_mask(tokens.shape[0]),
             "duplicate_token": duplicate_token_mask(tokens),
             "induction": induction_mask(tokens)}
    per_head = lambda m: jax.vmap(jax.vmap(lambda a: pattern_score(a, m)))(patterns)
    return {name: per_head(m) for name, m in masks.items()}


def icl_score(loss_per_position: Float[Array, " t"], early: int, late: int) -> Float[Array, ""]:
    """In-context-learning score (Olsson et al. 2022): loss at position ``late`` minus loss
    at position ``early`` (they use tokens 500 and 50); more negative = more ICL."""
    return loss_per_position[late] - loss_per_position[early]


def repeat_icl_score(loss_per_position: Float[Array, " t"], length: int) -> Float[Array, ""]:
    """The ICL score on repeated random tokens [BOS, r_1 … r_L, r_1 … r_L] (Olsson et al.
    2022; ``RepeatedTokensTask`` with two repeats), from the next-token losses ℓ_t
    (entry t predicts token t + 1): the mean over the block's offsets i = 1 … L − 1 of

        ℓ_{L+i} − ℓ_i = icl_score(ℓ, early=i, late=L + i),

    the loss on r_{i+1} in the second copy minus in the first. Offset 0 is left out: r_1
    follows r_L in the second copy, which no earlier token predicts. A model that copies
    perfectly scores −ℓ̄ (first copy); one that ignores the context scores 0.

    Example:
        >>> import jax.numpy as jnp
        >>> float(repeat_icl_score(jnp.array([4., 4., 4., 4., 0., 0.]), 3))
        -4.0
    """
    early = jnp.arange(1, length)
    return jnp.mean(icl_score(loss_per_position, early, early + length))


def query_row_scores(patterns: Float[Array, "l h t t"], tokens: Int[Array, " t"]
                     ) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """The induction score of the last layer at the query row (the last position) and the
    previous-token score of the first layer, each the largest over heads, for one
    sequence's attention patterns (Olsson et al. 2022's "mul" rule: fraction of the row's
    attention mass on the pattern).

    Returns:
        (induction score, previous-token score).
    """
    last_row = jnp.zeros((tokens.shape[0],) * 2, bool).at[-1].set(True)
    induction = induction_mask(tokens) & last_row
    previous = previous_token_mask(tokens.shape[0])
    ind = jax.vmap(lambda a: pattern_score(a, induction))(patterns[-1]).max()
    prev = jax.vmap(lambda a: pattern_score(a, previous))(patterns[0]).max()
    return ind, prev


def item_label_scores(patterns: Float[Array, "l h t t"], labels: Int[Array, " n"],
                      target: Int[Array, ""]) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """The two halves of an induction head on an item–label sequence x₁, ℓ₁, …, x_N, ℓ_N,
    x_q (T = 2N + 1; Reddy 2024), each the largest over heads ("mul" rule):

    - induction: the last layer's attention from the query on the label tokens that carry
      the query's label, M[2N, 2j + 1] = [ℓ_j = target];
    - previous item: the first layer's attention from every label token on its own item,
      M[2j + 1, 2j] = 1.

    Uniform attention scores |{j: ℓ_j = target}| / (2N + 1) and the mean of 1/(2j + 2).

    Returns:
        (induction score, previous-item score).
    """
    n = labels.shape[0]
    t = 2 * n + 1
    label_rows = jnp.arange(1, t, 2)
    induction = jnp.zeros((t, t), bool).at[-1, label_rows].set(labels == target)
    previous = jnp.zeros((t, t), bool).at[label_rows, label_rows - 1].set(True)
    ind = jax.vmap(lambda a: pattern_score(a, induction))(patterns[-1]).max()
    prev = jax.vmap(lambda a: pattern_score(a, previous))(patterns[0]).max()
    return ind, prev
