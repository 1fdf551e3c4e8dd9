"""An ``eqx.nn.Linear`` or ``eqx.nn.MLP`` applied to every row of an array as matrix products.

``jax.vmap(layer)(x)`` computes each row's ``W x_i`` as one dot of W with the batch of
rows, whose result XLA lays out as (out, rows) and then transposes into (rows, out), inside
the elementwise fusions that follow (the bias, the GELU) and again in the backward pass.
On XLA:CPU those strided fusions cost more than the products: in nonlinear-regression's
feature MLP they took 58 % of the training step against 29 % for the dots
(``docs/performance.md``). ``x @ Wᵀ + b`` gives the same numbers, to float rounding,
already laid out by rows.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def on_rows(layer: eqx.nn.Linear | eqx.nn.MLP, x: Float[Array, "*rows d"]
            ) -> Float[Array, "*rows e"]:
    """``layer`` applied to each row of ``x`` (any leading axes): ``x Wᵀ + b``, and for an
    MLP each layer in turn with its activation between.

    The same function as ``jax.vmap(layer)`` over the leading axes, written as matrix
    products on the rows. A layer with a ``"scalar"`` input or output, and an MLP whose
    activations are per-layer modules or whose layers run as a scan, are applied with
    ``vmap``.

    Args:
        layer: an ``eqx.nn.Linear`` or an ``eqx.nn.MLP`` with elementwise activations.
        x: rows of width ``layer``'s input size.

    Example:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> mlp = eqx.nn.MLP(3, 2, 8, depth=1, activation=jax.nn.gelu, key=jax.random.key(0))
        >>> x = jax.random.normal(jax.random.key(1), (5, 3))
        >>> bool(jnp.allclose(on_rows(mlp, x), jax.vmap(mlp)(x), atol=1e-6))
        True
    """
    if isinstance(layer, eqx.nn.Linear):
        if layer.in_features == "scalar" or layer.out_features == "scalar":
            return _vmapped(layer, x)
        y = jnp.einsum("...i,oi->...o", x, layer.weight)
        return y if layer.bias is None else y + jnp.expand_dims(layer.bias, range(y.ndim - 1))
    if isinstance(layer, eqx.nn.MLP):
        if getattr(layer, "scan", False) or any(
                eqx.is_array(leaf) for leaf in jax.tree.leaves(
                    (layer.activation, layer.final_activation))) \
                or layer.in_size == "scalar" or layer.out_size == "scalar":
            return _vmapped(layer, x)
        for hidden in layer.layers[:-1]:
            x = layer.activation(on_rows(hidden, x))
        return layer.final_activation(on_rows(layer.layers[-1], x))
    raise TypeError(f"on_rows takes an eqx.nn.Linear or eqx.nn.MLP, not {type(layer).__name__}")


def _vmapped(layer, x):
    flat = x.reshape(-1, *x.shape[x.ndim - (0 if _scalar_in(layer) else 1):])
    out = jax.vmap(layer)(flat)
    lead = x.shape[:x.ndim - (0 if _scalar_in(layer) else 1)]
    return out.reshape(*lead, *out.shape[1:])


def _scalar_in(layer) -> bool:
    return (layer.in_features if isinstance(layer, eqx.nn.Linear) else layer.in_size) == "scalar"
