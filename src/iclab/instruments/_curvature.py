"""Curvature of a loss at parameters θ, matrix-free: Hessian–vector products, the top
eigenvalue (sharpness) by warm-started power iteration and by Lanczos, the Hutchinson
trace, the spectral density by stochastic Lanczos quadrature, preconditioned versions,
and the curvature along one direction from three forward passes.

Operators act on flat vectors (``jax.flatten_util.ravel_pytree`` of the parameters).
Lanczos, Hutchinson and SLQ use ``matfree`` (the optional extra ``iclab[curvature]``);
power iteration and the finite-difference curvature need nothing beyond JAX.

Use a fixed batch (the loss closes over it) and, for small models, float64.

References:
    Pearlmutter. "Fast exact multiplication by the Hessian", Neural Computation 1994.
    Ghorbani, Krishnan, Xiao. "An investigation into neural net optimization via Hessian
    eigenvalue density", ICML 2019 (SLQ for network Hessians).
    Yao, Gholami, Keutzer, Mahoney. "PyHessian", 2020 (power iteration, Hutchinson, SLQ).
    Cohen, Kaur, Li, Kolter, Talwalkar. "Gradient descent on neural networks typically
    occurs at the edge of stability", ICLR 2021; Cohen et al., "Adaptive gradient methods
    at the edge of stability", 2022 (preconditioned sharpness of Adam).
    Krämer, Moreno-Muñoz, Roy, Hauberg. "Gradients of functions of large matrices",
    NeurIPS 2024 (``matfree``).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray

Matvec = Callable[[Array], Array]


def _matfree():
    try:
        import matfree.decomp
        import matfree.stochtrace
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Lanczos, Hutchinson and SLQ need matfree: "
                          "pip install 'iclab[curvature]'") from None
    return matfree


def hvp(loss: Callable[[Any], Array], params: Any, v: Any) -> Any:
    """H v, the Hessian of ``loss`` at ``params`` times the pytree ``v``, by
    forward-over-reverse differentiation (Pearlmutter): d/dε ∇L(θ + ε v) at ε = 0."""
    return jax.jvp(jax.grad(loss), (params,), (v,))[1]


def hessian_operator(loss: Callable[[Any], Array], params: Any,
                     diagonal: Any | None = None) -> tuple[Matvec, Array]:
    """The Hessian as a matvec on flat vectors, and the flat parameters.

    With ``diagonal`` (a pytree like ``params`` of positive per-parameter factors d_p),
    the operator is the preconditioned D^{1/2} H D^{1/2}, whose top eigenvalue is the
    sharpness that matters for per-parameter step sizes η_p = η d_p: gradient descent is
    stable while it is below 2/η.

    Examples:
        >>> import jax.numpy as jnp
        >>> matvec, flat = hessian_operator(lambda p: jnp.sum(p["w"] ** 2), {"w": jnp.ones(2)})
        >>> matvec(jnp.array([1.0, 0.0])).tolist()
        [2.0, 0.0]
    """
    flat, unravel = ravel_pytree(params)
    scale = None if diagonal is None else jnp.sqrt(ravel_pytree(diagonal)[0])

    def matvec(x: Array) -> Array:
        if scale is not None:
            x = scale * x
        y = ravel_pytree(hvp(loss, params, unravel(x)))[0]
        return y if scale is None else scale * y

    return matvec, flat


def power_iteration(matvec: Matvec, v0: Float[Array, " n"], iters: int = 20
                    ) -> tuple[Array, Array]:
    """The eigenvalue of largest magnitude and its eigenvector, by power iteration
    v ← A v / ‖A v‖ from ``v0`` (warm-start it with the previous call's vector); the
    estimate is the Rayleigh quotient vᵀ A v.

    Examples:
        >>> import jax.numpy as jnp
        >>> a = jnp.diag(jnp.array([1.0, 3.0]))
        >>> round(float(power_iteration(lambda v: a @ v, jnp.ones(2), 50)[0]), 4)
        3.0
    """
    def step(v, _):
        w = matvec(v)
        return w / jnp.linalg.norm(w), None

    v, _ = jax.lax.scan(step, v0 / jnp.linalg.norm(v0), None, length=iters)
    return v @ matvec(v), v


def lanczos_eigenvalues(matvec: Matvec, v0: Float[Array, " n"], num_matvecs: int = 20
                        ) -> Array:
    """The Ritz values of a symmetric operator after ``num_matvecs`` Lanczos steps with
    full reorthogonalisation (``matfree.decomp.tridiag_sym``), in ascending order: the
    extreme ones converge first, so the last is the top-eigenvalue estimate. With
    ``num_matvecs`` equal to the dimension they are the exact spectrum.

    Examples:
        >>> import jax.numpy as jnp
        >>> a = jnp.diag(jnp.arange(1.0, 6.0))
        >>> [round(float(x), 3) for x in lanczos_eigenvalues(lambda v: a @ v, jnp.ones(5), 5)]
        [1.0, 2.0, 3.0, 4.0, 5.0]
    """
    decompose = _matfree().decomp.tridiag_sym(num_matvecs, materialize=True, reortho="full")
    result = decompose(matvec, v0)
    return jnp.linalg.eigvalsh(result.J_small)


def hutchinson_trace(matvec: Matvec, like: Float[Array, " n"], key: PRNGKeyArray,
                     samples: int = 100) -> Array:
    """tr A ≈ (1/S) Σ_s z_sᵀ A z_s with Rademacher z (Hutchinson 1989; matfree's Monte
    Carlo estimator). Unbiased; its variance is 2(‖A‖_F² − Σ_i A_ii²)/S."""
    st = _matfree().stochtrace
    estimate = st.estimator_monte_carlo(st.monte_carlo_trace(),
                                        sampler=st.sampler_signs(like, num=samples))
    return estimate(matvec, key)


def spectral_density(matvec: Matvec, like: Float[Array, " n"], key: PRNGKeyArray,
                     num_matvecs: int = 30, samples: int = 4) -> tuple[Array, Array]:
    """Stochastic Lanczos quadrature: for each of ``samples`` random unit vectors v, the
    Lanczos tridiagonal T = U diag(θ) Uᵀ gives nodes θ_j and weights w_j = U_{0j}², with
    Σ_j w_j f(θ_j) ≈ vᵀ f(A) v (exact for polynomials of degree < 2·num_matvecs). The
    spectral density is ≈ (1/S) Σ_s Σ_j w_sj δ(t − θ_sj); ``density_on_grid`` smooths it.

    Returns:
        ``(nodes, weights)``, each (samples, num_matvecs).
    """
    decompose = _matfree().decomp.tridiag_sym(num_matvecs, materialize=True, reortho="full")
    probes = jax.random.rademacher(key, (samples,) + like.shape, like.dtype)

    def one(v):
        theta, u = jnp.linalg.eigh(decompose(matvec, v / jnp.linalg.norm(v)).J_small)
        return theta, u[0] ** 2

    return jax.vmap(one)(probes)


def density_on_grid(nodes: Array, weights: Array, grid: Array, width: float) -> Array:
    """The SLQ density smoothed by a Gaussian of standard deviation ``width`` on ``grid``
    (integrates to ≈ 1 when the grid covers the spectrum)."""
    diff = grid[:, None, None] - nodes[None]
    kernel = jnp.exp(-0.5 * (diff / width) ** 2) / (width * jnp.sqrt(2 * jnp.pi))
    return jnp.sum(kernel * weights[None], axis=(1, 2)) / nodes.shape[0]


def optimizer_hyperparams(opt_state: Any) -> dict:
    """The hyperparameters (learning_rate, b1, b2, eps, ...) of the
    ``optax.inject_hyperparams`` states inside an optimiser state (the first state's value
    where two name the same one); {} without one.

    Examples:
        >>> import jax.numpy as jnp, optax
        >>> opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
        >>> round(float(optimizer_hyperparams(opt.init(jnp.zeros(2)))["learning_rate"]), 3)
        0.1
    """
    found = [s.hyperparams for s in jax.tree.leaves(
        opt_state, is_leaf=lambda x: hasattr(x, "hyperparams")) if hasattr(s, "hyperparams")]
    merged: dict = {}
    for hyper in found:
        merged.update({k: v for k, v in hyper.items() if k not in merged})
    return merged


def adam_diagonal(opt_state: Any, eps: float | None = None) -> Any:
    """Adam's per-parameter step factors 1 / (√ν̂ + ε), ν̂ = ν / (1 − β₂^t), from an Optax
    state (the first ``ScaleByAdamState`` found; β₂ and, unless given, ε from an
    ``inject_hyperparams`` state when there is one, else 0.999 and 1e-8). Before Adam's
    first step (count 0) ν̂ is undefined and the factors are NaN.

    With ``hessian_operator(..., diagonal=...)`` this gives Adam's preconditioned
    sharpness λ_max(P^{-1/2} H P^{-1/2}), P = diag(√ν̂ + ε), whose edge-of-stability
    threshold is (2 + 2β₁)/((1 − β₁) η) (38/η for β₁ = 0.9)."""
    import optax

    found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(
        x, optax.ScaleByAdamState)) if isinstance(s, optax.ScaleByAdamState)]
    if not found:
        raise ValueError("adam_diagonal: no ScaleByAdamState in this optimiser state")
    adam = found[0]
    hyper = optimizer_hyperparams(opt_state)
    b2 = hyper.get("b2", 0.999)
    if eps is None:
        eps = hyper.get("eps", 1e-8)
    correction = 1 - jnp.asarray(b2) ** adam.count
    return jax.tree.map(lambda nu: 1.0 / (jnp.sqrt(nu / correction) + eps), adam.nu)


def directional_curvature(loss: Callable[[Any], Array], params: Any, direction: Any,
                          h: float = 1e-3) -> Array:
    """The curvature of the loss along ``direction`` u from three forward passes,

        uᵀ H u / uᵀ u ≈ (L(θ + h û) − 2 L(θ) + L(θ − h û)) / h²,   û = u / ‖u‖,

    (error O(h²)). Along the update direction it is the sharpness the step actually
    meets: a step of length s along û overshoots the local quadratic once s > 2/curvature.
    """
    flat, unravel = ravel_pytree(params)
    u = ravel_pytree(direction)[0]
    u = u / jnp.linalg.norm(u)
    at = lambda s: loss(unravel(flat + s * u))
    return (at(h) - 2 * at(0.0) + at(-h)) / h**2
