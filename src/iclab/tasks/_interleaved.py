"""The interleaved prompt format of Garg et al. (2022).

A task's K = N + 1 points become 2K tokens x_1, ỹ_1, x_2, ỹ_2, …, x_K, ỹ_K of width d,
with ỹ_i = (y_i, 0, …, 0). The model's output at the position of x_i predicts y_i from
the i − 1 preceding pairs, so one sequence scores every prefix length 0 … N.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.tasks._linear_regression import RegressionExample


def all_points(example: RegressionExample) -> tuple[Float[Array, "k d"], Float[Array, " k"]]:
    """The context and the query stacked: (x_1..x_K, y_1..y_K) with K = N + 1."""
    x = jnp.concatenate([example.x, example.x_query[None]], axis=0)
    y = jnp.concatenate([example.y, example.y_query[None]], axis=0)
    return x, y


def interleave(x: Float[Array, "k d"], y: Float[Array, " k"]) -> Float[Array, "2k d"]:
    """x_1, (y_1, 0…), x_2, (y_2, 0…), … as a (2K, d) array."""
    y_tokens = jnp.zeros_like(x).at[:, 0].set(y)
    return jnp.stack([x, y_tokens], axis=1).reshape(-1, x.shape[1])


def to_interleaved_tokens(example: RegressionExample) -> Float[Array, "2k d"]:
    """The interleaved tokens of a task's context and query."""
    return interleave(*all_points(example))
