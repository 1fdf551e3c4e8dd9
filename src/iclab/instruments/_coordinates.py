"""Coordinate checks (Yang et al. 2022, ``mup.coord_check``): the typical size of the
activations at every site of a network, and how it scales with width or depth."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from iclab.models._interface import ResidualStreamModel, require


def coordinate_sizes(model: ResidualStreamModel, inputs: Float[Array, "b t d"],
                     initial: ResidualStreamModel | None = None) -> dict[str, Array]:
    """The mean absolute coordinate, mean |x| over sequences, positions and coordinates,
    of every site: "embedding" (the residual stream after the read-in), "block{l}" (after
    block l = 1…L) and "output" (the model's outputs); with ``initial`` (the same network
    at initialisation) also "delta_{site}", the mean |x_t − x_0| of the change since then.

    Under μP every site's size is independent of the width at every step (up to the
    output at initialisation, which may shrink); under SP with Adam the sizes after one
    step grow with the width.

    Args:
        model: any ``ResidualStreamModel``.
        inputs: a batch of its input sequences.
        initial: optional, the model at initialisation.

    Examples:
        >>> import jax
        >>> from iclab.models import GPT, GPTConfig
        >>> m = GPT(GPTConfig(dim_in=3, width=8, layers=2, heads=2), key=jax.random.key(0))
        >>> sorted(coordinate_sizes(m, jax.numpy.ones((2, 4, 3))))
        ['block1', 'block2', 'embedding', 'output']

    References:
        Yang et al. "Tensor Programs V: Tuning large neural networks via zero-shot
        hyperparameter transfer", 2022 (the coordinate check, Fig. 5).
    """
    require(model, ResidualStreamModel, "coordinate_sizes")

    def sites(m):
        stream = jax.vmap(m.residual_stream)(inputs)  # (B, L + 1, T, W)
        out = {"embedding": stream[:, 0]}
        out.update({f"block{i}": stream[:, i] for i in range(1, stream.shape[1])})
        out["output"] = jax.vmap(m)(inputs)
        return out

    now = sites(model)
    sizes = {k: jnp.mean(jnp.abs(v)) for k, v in now.items()}
    if initial is not None:
        before = sites(initial)
        sizes.update({f"delta_{k}": jnp.mean(jnp.abs(v - before[k])) for k, v in now.items()})
    return sizes


def coordinate_slopes(frame, size: str = "size", value: str = "value",
                      by: tuple[str, ...] = ("site", "step")):
    """The least-squares slope of log₂(value / value at the smallest size) against
    log₂(size), per group (by default per site and step; seeds averaged first): 0 is
    flat, 1 is doubling with every doubling of the size.

    Args:
        frame: a tidy pandas DataFrame with columns ``size``, ``value`` and ``by``.

    Returns:
        A DataFrame with the ``by`` columns, ``slope`` and ``ratio`` (value at the largest
        size over value at the smallest).

    Examples:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"size": [1, 2, 4], "value": [1.0, 2.0, 4.0],
        ...                   "site": "h", "step": 0})
        >>> round(float(coordinate_slopes(f).slope[0]), 6)
        1.0
    """
    import pandas as pd

    mean = frame.groupby(list(by) + [size], as_index=False)[value].mean()
    rows = []
    for keys, group in mean.groupby(list(by)):
        group = group.sort_values(size)
        x = np.log2(group[size].to_numpy(float))
        v = group[value].to_numpy(float)
        ok = np.isfinite(v) & (v > 0)
        slope = float(np.polyfit(x[ok], np.log2(v[ok] / v[ok][0]), 1)[0]) \
            if ok.sum() >= 2 else float("nan")
        ratio = float(v[-1] / v[0]) if v[0] > 0 else float("nan")
        keys = keys if isinstance(keys, tuple) else (keys,)
        rows.append(dict(zip(by, keys, strict=True)) | {"slope": slope, "ratio": ratio})
    return pd.DataFrame(rows)
