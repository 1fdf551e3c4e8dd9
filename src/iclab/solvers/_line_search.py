"""One-dimensional minimisation used to tune step sizes of baselines."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0  # 1/φ ≈ 0.618


def golden_section_search(f: Callable[[jax.Array], jax.Array], lo: float, hi: float,
                          iterations: int = 40) -> jax.Array:
    """Minimiser of a unimodal f on [lo, hi] by golden-section search.

    Each iteration shrinks the bracket by 1/φ ≈ 0.618, so 40 iterations reach
    a relative bracket of 0.618⁴⁰ ≈ 4e-9. Runs inside ``jit`` (``lax.fori_loop``).
    """

    def body(_, bracket):
        a, b = bracket
        c, d = b - _INV_PHI * (b - a), a + _INV_PHI * (b - a)
        keep_left = f(c) < f(d)
        return jnp.where(keep_left, a, c), jnp.where(keep_left, d, b)

    a, b = jax.lax.fori_loop(0, iterations, body, (jnp.asarray(lo, float), jnp.asarray(hi, float)))
    return (a + b) / 2


def grid_then_golden(f: Callable[..., jax.Array], lo: float, hi: float, *args,
                     n_grid: int = 64, iterations: int = 40, max_expansions: int = 8
                     ) -> tuple[float, float]:
    """Minimise x ↦ f(x, *args) on [lo, ∞): a vectorised grid on [lo, hi], then
    golden section between the grid neighbours of the best point. If the best grid
    point is the upper edge, the grid is doubled (at most ``max_expansions`` times).
    ``args`` (e.g. a data batch) are passed as jit arguments, not baked-in constants.

    Returns:
        (argmin, min) as Python floats.
    """
    f_grid = jax.jit(jax.vmap(f, in_axes=(0,) + (None,) * len(args)))
    for _ in range(max_expansions + 1):
        grid = jnp.linspace(lo, hi, n_grid)
        values = np.asarray(f_grid(grid, *args))
        best = int(np.nanargmin(values))
        if best < n_grid - 1:
            break
        hi = lo + 2 * (hi - lo)
    left, right = grid[max(best - 1, 0)], grid[min(best + 1, n_grid - 1)]
    refine = jax.jit(lambda a, b, *args: golden_section_search(lambda x: f(x, *args), a, b,
                                                                iterations))
    x = refine(left, right, *args)
    fx = float(jax.jit(f)(x, *args))
    if fx > values[best]:  # f not unimodal in the bracket: keep the grid point
        return float(grid[best]), float(values[best])
    return float(x), fx
