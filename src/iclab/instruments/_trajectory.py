"""Per-layer norms of parameters, gradients and updates, and the loss on fixed batches
along the trajectory with its one-step line profile.

References:
    Sandler, Zhmoginov, Vladymyrov, Miller. "Training trajectories, mini-batch losses and
    the curious role of the learning rate", arXiv 2301.02312 (2023): the loss on a fixed
    batch is close to a quadratic along its own gradient, and one large step brings it
    near zero.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array


def parameter_names(tree: Any) -> list[str]:
    """Stable dotted names of a pytree's array leaves, e.g. ``blocks.0.attn.w_q``
    (``jax.tree_util.keystr`` with the brackets and quotes removed)."""
    from iclab.models import path_name

    return [path_name(path) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
            if hasattr(leaf, "shape")]


def layer_norms(params: Any, grads: Any | None = None, updates: Any | None = None
                ) -> dict[str, Array]:
    """Per array (layer weight, bias, …): ``{name}/norm`` ‖θ‖_F and ``{name}/rms``
    ‖θ‖_F/√n of the parameters; with ``grads`` ``{name}/grad_norm``; with ``updates`` (the
    step actually applied) ``{name}/update_norm`` and ``{name}/update_ratio``
    ‖Δθ‖_F / ‖θ‖_F, whose typical size is the effective learning rate of that layer.

    Examples:
        >>> import jax.numpy as jnp
        >>> out = layer_norms({"w": jnp.full((2, 2), 3.0)}, updates={"w": jnp.ones((2, 2))})
        >>> {k: round(float(v), 4) for k, v in out.items()}
        {'w/norm': 6.0, 'w/rms': 3.0, 'w/update_norm': 2.0, 'w/update_ratio': 0.3333}
    """
    arrays = [leaf for leaf in jax.tree.leaves(params) if hasattr(leaf, "shape")]
    out = {}
    grad_leaves = None if grads is None else jax.tree.leaves(grads)
    update_leaves = None if updates is None else jax.tree.leaves(updates)
    for i, (name, leaf) in enumerate(zip(parameter_names(params), arrays, strict=True)):
        norm = jnp.linalg.norm(leaf.reshape(-1))
        out[f"{name}/norm"] = norm
        out[f"{name}/rms"] = norm / jnp.sqrt(leaf.size)
        if grad_leaves is not None:
            out[f"{name}/grad_norm"] = jnp.linalg.norm(grad_leaves[i].reshape(-1))
        if update_leaves is not None:
            step = jnp.linalg.norm(update_leaves[i].reshape(-1))
            out[f"{name}/update_norm"] = step
            out[f"{name}/update_ratio"] = step / jnp.where(norm > 0, norm, 1.0)
    return out


def role_norms(model) -> dict[str, Array]:
    """‖θ_r‖_F over all arrays of each parameter role r of a ``ParameterRolesModel``
    ("readout": the last layer's weight norm, the slingshot signal of Thilak et al. 2022).

    Examples:
        >>> import jax
        >>> from iclab.models import TokenMLP, TokenMLPConfig
        >>> model = TokenMLP(TokenMLPConfig(tokens=2, vocab=3, embed=2, hidden=(4,), out=3),
        ...                  key=jax.random.key(0))
        >>> sorted(role_norms(model))
        ['bias', 'embedding', 'mlp', 'readout']
    """
    import equinox as eqx

    from iclab.models import ParameterRolesModel, require

    require(model, ParameterRolesModel, "role_norms")
    squares: dict[str, Array] = {}
    arrays = jax.tree.leaves(eqx.filter(model, eqx.is_array))
    for leaf, role in zip(arrays, jax.tree.leaves(model.parameter_roles()), strict=True):
        squares[role] = squares.get(role, 0.0) + jnp.sum(leaf**2)
    return {role: jnp.sqrt(value) for role, value in squares.items()}


def fixed_batch_losses(loss: Callable[[Any, Any], Array], params: Any, batches: list
                       ) -> Array:
    """L_{B_k}(θ) for batches B_k frozen at the start of training (some that training will
    see, some held out): one forward pass each, logged along the trajectory."""
    return jnp.stack([loss(params, batch) for batch in batches])


def line_profile(loss: Callable[[Any, Any], Array], params: Any, batch: Any,
                 steps: Array) -> dict[str, Array]:
    """The one-step line profile ℓ(s) = L_B(θ − s ∇L_B(θ)) on a grid of step sizes s, and
    its least-squares quadratic a s² − b s + c:

    - ``losses``: ℓ(s) on ``steps``;
    - ``a``, ``b``, ``c`` and ``r2`` (the fit's coefficient of determination);
    - ``s_star`` = b / (2a), the fitted minimiser, and ``ratio`` ℓ(s*) / ℓ(0).

    For a quadratic loss the fit is exact (r2 = 1) and s* = ‖g‖² / gᵀHg.
    """
    flat, unravel = ravel_pytree(params)
    g = ravel_pytree(jax.grad(loss)(params, batch))[0]
    values = jax.vmap(lambda s: loss(unravel(flat - s * g), batch))(steps)
    design = jnp.stack([steps**2, -steps, jnp.ones_like(steps)], axis=1)
    (a, b, c), *_ = jnp.linalg.lstsq(design, values)
    fitted = design @ jnp.array([a, b, c])
    r2 = 1 - jnp.sum((values - fitted) ** 2) / jnp.sum((values - values.mean()) ** 2)
    s_star = b / (2 * a)
    return {"losses": values, "a": a, "b": b, "c": c, "r2": r2, "s_star": s_star,
            "ratio": loss(unravel(flat - s_star * g), batch) / loss(params, batch)}
