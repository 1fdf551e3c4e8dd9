"""Per-array optax pieces of a parametrisation: constant multipliers on updates and on
weight decay (the multipliers are pytrees of Python floats shaped like the parameters)."""

import jax
import optax


def _leafwise(f, tree, *others):
    """``f`` over the leaves of ``tree`` and of ``others`` taken in the same order, with
    ``tree``'s structure (the multiplier trees may differ from the parameters in static
    metadata, e.g. a model's forward multipliers)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rest = [jax.tree_util.tree_leaves(o) for o in others]
    if any(len(r) != len(leaves) for r in rest):
        raise ValueError("multipliers and parameters have different numbers of arrays")
    return jax.tree_util.tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *rest, strict=True)])


def scale_by_multipliers(multipliers) -> optax.GradientTransformation:
    """u_p ← c_p · u_p for every parameter array p (stateless).

    The per-parameter learning rate of μP and its relatives: chained before
    ``optax.scale_by_learning_rate(η)`` it makes array p's step η · c_p · u_p.

    Args:
        multipliers: a pytree of floats with the parameters' structure (None where the
            parameters have no array).

    Examples:
        >>> import jax.numpy as jnp
        >>> t = scale_by_multipliers({"a": 2.0, "b": 0.5})
        >>> u, _ = t.update({"a": jnp.ones(2), "b": jnp.ones(2)}, t.init(None))
        >>> [float(u["a"][0]), float(u["b"][0])]
        [2.0, 0.5]

    References:
        Yang et al. "Tensor Programs V: Tuning large neural networks via zero-shot
        hyperparameter transfer", 2022 (per-layer learning rates, ``MuAdam``/``MuSGD``).
    """

    def update(updates, state, params=None):
        del params
        return _leafwise(lambda u, c: u * c, updates, multipliers), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def add_scaled_decayed_weights(weight_decay, multipliers, mask=None
                               ) -> optax.GradientTransformation:
    """u_p ← u_p + λ · c_p · θ_p: weight decay with a per-array multiplier c_p.

    Placed after the optimiser's direction (AdamW's decoupled decay) or before it (L2 added
    to the gradient); with the learning-rate multipliers after it the decay per step is
    η · lr_p · λ · c_p · θ_p.

    Args:
        weight_decay: λ (a number, or an injected hyperparameter).
        multipliers: c_p, a pytree of floats with the parameters' structure.
        mask: optional params → pytree of bools; only True arrays decay.

    Examples:
        >>> import jax.numpy as jnp
        >>> t = add_scaled_decayed_weights(0.1, {"w": 4.0})
        >>> p = {"w": jnp.ones(1)}
        >>> round(float(t.update({"w": jnp.zeros(1)}, t.init(p), p)[0]["w"][0]), 6)
        0.4

    References:
        Loshchilov & Hutter. "Decoupled weight decay regularization", ICLR 2019.
    """

    def update(updates, state, params):
        if params is None:
            raise ValueError("add_scaled_decayed_weights needs the parameters")
        keep = jax.tree.map(lambda c: True, multipliers) if mask is None else mask(params)
        return _leafwise(lambda u, c, p, k: u + weight_decay * c * p if k else u,
                         updates, multipliers, params, keep), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
