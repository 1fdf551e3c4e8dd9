"""The empirical neural tangent kernel Θ(x, x') = J(x) J(x')ᵀ, J = ∂f(x; θ)/∂θ, by
Jacobian contraction, and what is read from it: eigenvalues, distance from the kernel at
initialisation, alignment with the targets.

Under NTK parametrisation the kernel of a wide network barely moves during training (lazy
training: the distance from Θ₀ shrinks with width); under μP it keeps evolving (feature
learning).

References:
    Jacot, Gabriel, Hongler. "Neural tangent kernel", NeurIPS 2018.
    Novak, Sohl-Dickstein, Schoenholz. "Fast finite width neural tangent kernel", ICML 2022
    (the implementations of ``neural_tangents.empirical_ntk_fn``).
    Cristianini, Shawe-Taylor, Elisseeff, Kandola. "On kernel-target alignment", NeurIPS
    2001.
    Fort, Dziugaite, Paul, Kharaghani, Roy, Ganguli. "Deep learning versus kernel learning",
    NeurIPS 2020 (kernel distance).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def empirical_ntk(f: Callable[[Any, Array], Array], params: Any, x1: Array,
                  x2: Array | None = None, trace_outputs: bool = True) -> Array:
    """Θ(x1_i, x2_j) = Σ_p ∂f(x1_i)/∂θ_p ∂f(x2_j)/∂θ_p for ``f(params, x) -> outputs``.

    Args:
        f: the network on one input (outputs of any shape; flattened to C values).
        params: the pytree of parameters.
        x1, x2: batches of inputs (leading axis); x2 defaults to x1.
        trace_outputs: sum over the C outputs (an N1 × N2 kernel); False gives the full
            (N1, N2, C, C) kernel.

    Examples:
        >>> import jax.numpy as jnp
        >>> f = lambda p, x: p["w"] @ x  # linear model: Θ = x1 · x2
        >>> x = jnp.array([[1.0, 0.0], [1.0, 2.0]])
        >>> empirical_ntk(f, {"w": jnp.ones(2)}, x).tolist()
        [[1.0, 1.0], [1.0, 5.0]]
    """
    x2 = x1 if x2 is None else x2

    def jacobian(x):
        jac = jax.vmap(jax.jacrev(lambda p, xi: jnp.reshape(f(p, xi), (-1,))),
                       in_axes=(None, 0))(params, x)
        return jnp.concatenate([leaf.reshape(leaf.shape[0], leaf.shape[1], -1)
                                for leaf in jax.tree.leaves(jac)], axis=-1)  # (N, C, P)

    j1, j2 = jacobian(x1), jacobian(x2)
    if trace_outputs:
        return jnp.einsum("ncp,mcp->nm", j1, j2)
    return jnp.einsum("ncp,mdp->nmcd", j1, j2)


def kernel_eigenvalues(kernel: Float[Array, "n n"], top: int | None = None) -> Array:
    """The eigenvalues of a symmetric kernel matrix in descending order (the ``top``
    largest when given)."""
    values = jnp.linalg.eigvalsh(0.5 * (kernel + kernel.T))[::-1]
    return values if top is None else values[:top]


def kernel_distance(kernel: Float[Array, "n n"], initial: Float[Array, "n n"]) -> Array:
    """‖Θ_t − Θ₀‖_F / ‖Θ₀‖_F: how far the kernel has moved from initialisation (0 in the
    lazy limit). Fort et al.'s scale-free variant is 1 − ⟨Θ_t, Θ₀⟩_F / (‖Θ_t‖_F ‖Θ₀‖_F)."""
    return jnp.linalg.norm(kernel - initial) / jnp.linalg.norm(initial)


def kernel_target_alignment(kernel: Float[Array, "n n"], targets: Float[Array, "n ..."]
                            ) -> Array:
    """A(Θ, y) = ⟨Θ, y yᵀ⟩_F / (‖Θ‖_F ‖y yᵀ‖_F) ∈ [−1, 1] (Cristianini et al.); for
    vector targets y yᵀ is Y Yᵀ."""
    y = targets.reshape(targets.shape[0], -1)
    target = y @ y.T
    return jnp.sum(kernel * target) / (jnp.linalg.norm(kernel) * jnp.linalg.norm(target))


def linearisation_distance(f: Callable[[Any], Array], params0: Any, params1: Any
                           ) -> dict[str, Array]:
    """How far a function of the parameters moved from its first-order Taylor model:

        lin = f(θ₀) + ⟨θ₁ − θ₀, ∇f(θ₀)⟩   (one ``jax.jvp``)
        distance = ‖f(θ₁) − lin‖ / ‖lin‖
        relative_to_change = ‖f(θ₁) − lin‖ / ‖lin − f(θ₀)‖

    Norms are Frobenius over all of ``f``'s outputs. A lazy (linearised, NTK-like) update
    has ``distance`` → 0; feature learning keeps it of order one. Dey et al. measure the
    first form on one block's output after one optimiser step to tell depth-μP's lazy
    blocks (α = ½) from CompleteP's (α = 1).

    Args:
        f: params → an array (e.g. one block's output on a batch).
        params0: θ₀ (the point of linearisation).
        params1: θ₁ (a pytree like ``params0``).

    Returns:
        {"distance", "relative_to_change", "change"} with change = ‖f(θ₁) − f(θ₀)‖ / ‖f(θ₀)‖.

    Examples:
        >>> import jax.numpy as jnp
        >>> out = linearisation_distance(lambda t: t ** 2, jnp.array(1.0), jnp.array(1.5))
        >>> [round(float(out[k]), 4) for k in ("distance", "relative_to_change")]
        [0.125, 0.25]

    References:
        Chizat, Oyallon, Bach. "On lazy training in differentiable programming", NeurIPS
        2019. Dey et al. "Don't be lazy: CompleteP enables compute-efficient deep
        transformers", 2025.
    """
    delta = jax.tree.map(lambda a, b: b - a, params0, params1)
    f0, first = jax.jvp(f, (params0,), (delta,))
    f1 = f(params1)
    lin = f0 + first
    err = jnp.linalg.norm((f1 - lin).ravel())
    return {"distance": err / jnp.linalg.norm(lin.ravel()),
            "relative_to_change": err / jnp.linalg.norm(first.ravel()),
            "change": jnp.linalg.norm((f1 - f0).ravel()) / jnp.linalg.norm(f0.ravel())}
