"""In-context linear regression (von Oswald et al. 2022; Garg et al. 2022; Vladymyrov et al. 2024).

One task is a weight vector w ~ N(0, w_scale² I_d) and a noise level σ; its
context holds N pairs (x_j, y_j) with y_j = wᵀx_j + ε_j, ε_j ~ N(0, σ²), and a
query x_q whose target is y_q = wᵀx_q (+ ε_q if ``query_noise``). Tokens are
e_j = [x_j; y_j] and the query token is [x_q; 0].
"""

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import (
    ConfigError,
    check_choice,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from iclab.tasks._protocol import BatchDrawnTask

INPUT_DISTRIBUTIONS = ("uniform", "gaussian")
NOISE_DISTRIBUTIONS = ("fixed", "uniform", "categorical")


@dataclass(frozen=True)
class RegressionEvalConfig:
    """Held-out evaluation tasks of an in-context regression recipe.

    Args:
        tasks: number of evaluation tasks (von Oswald et al.'s reference uses 10,000).
        seed: key of the evaluation tasks (the reference's ``PRNGKey(5)``).
        ood_tasks: tasks per point of an out-of-distribution sweep.
    """

    tasks: int = 10_000
    seed: int = 5
    ood_tasks: int = 1000

    def __post_init__(self):
        check_positive_int("eval.tasks", self.tasks)
        check_positive_int("eval.ood_tasks", self.ood_tasks)


class RegressionExample(eqx.Module):
    """One in-context regression task: context (x, y), query (x_query, y_query), true w,
    and the task's label-noise standard deviation σ."""

    x: Float[Array, "n d"]
    y: Float[Array, " n"]
    x_query: Float[Array, " d"]
    y_query: Float[Array, ""]
    w: Float[Array, " d"]
    noise_std: Float[Array, ""]


@dataclass(frozen=True)
class LinearRegressionTask(BatchDrawnTask):
    """Noisy linear regression with N context pairs in dimension d.

    Inputs are uniform, x ~ U(−r/2, r/2)^d with r = ``input_range``, or Gaussian,
    x ~ N(0, s² I_d) with s = ``input_std``. The noise standard deviation σ of a
    task is ``noise_std`` ("fixed"), σ ~ U(0, noise_std) ("uniform": the mixed-noise
    task of Vladymyrov et al. with σ_max = noise_std), or drawn uniformly from
    ``noise_levels`` ("categorical").

    Warning:
        The reference code of von Oswald et al. uses ``input_range=1``, i.e.
        U(−0.5, 0.5); the paper's text says U(−1, 1) (``input_range=2``), which
        multiplies every squared-error loss by 4.

    Args:
        d: input dimension.
        n_context: number of context pairs N.
        input_dist: "uniform" or "gaussian".
        input_range: r above (uniform inputs).
        input_std: s above (Gaussian inputs).
        w_scale: standard deviation of each entry of w.
        noise_dist: "fixed", "uniform" or "categorical".
        noise_std: σ ("fixed") or σ_max ("uniform").
        noise_levels: the set of σ for "categorical", e.g. (1.0, 3.0).
        query_noise: add label noise to the query target too.
    """

    d: int = 10
    n_context: int = 10
    input_dist: str = "uniform"
    input_range: float = 1.0
    input_std: float = 1.0
    w_scale: float = 1.0
    noise_dist: str = "fixed"
    noise_std: float = 0.0
    noise_levels: tuple[float, ...] = ()
    query_noise: bool = True

    ARRAY_FIELDS = ("noise_std", "w_scale", "input_range", "input_std")

    def __post_init__(self):
        check_positive_int("task.d", self.d)
        check_positive_int("task.n_context", self.n_context)
        check_choice("task.input_dist", self.input_dist, INPUT_DISTRIBUTIONS)
        check_positive("task.input_range", self.input_range)
        check_positive("task.input_std", self.input_std)
        check_positive("task.w_scale", self.w_scale)
        check_choice("task.noise_dist", self.noise_dist, NOISE_DISTRIBUTIONS)
        check_nonnegative("task.noise_std", self.noise_std)
        for level in self.noise_levels:
            check_nonnegative("task.noise_levels", level)
        if self.noise_dist == "categorical" and not self.noise_levels:
            raise ConfigError("task.noise_levels", self.noise_levels,
                              "a non-empty list of noise levels for noise_dist=categorical")

    @property
    def input_variance(self) -> float:
        """σ_x², the variance of each input coordinate (r²/12 or s²)."""
        if self.input_dist == "uniform":
            return self.input_range**2 / 12.0
        return self.input_std**2

    @property
    def mean_noise_variance(self) -> float:
        """E σ² over tasks: σ², σ_max²/3 (uniform) or the mean of the squared levels."""
        if self.noise_dist == "fixed":
            return self.noise_std**2
        if self.noise_dist == "uniform":
            return self.noise_std**2 / 3.0
        return sum(level**2 for level in self.noise_levels) / len(self.noise_levels)

    def _noise_levels(self, key: PRNGKeyArray, batch_size: int) -> Float[Array, " b"]:
        if self.noise_dist == "fixed":
            return jnp.full((batch_size,), self.noise_std)
        if self.noise_dist == "uniform":
            return jax.random.uniform(key, (batch_size,), maxval=self.noise_std)
        levels = jnp.asarray(self.noise_levels)
        return levels[jax.random.randint(key, (batch_size,), 0, len(self.noise_levels))]

    def _inputs(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        # Drawn flat and reshaped: XLA's threefry is ~4x faster on a 1-D shape.
        size = math.prod(shape)
        if self.input_dist == "uniform":
            half = self.input_range / 2
            flat = jax.random.uniform(key, (size,), minval=-half, maxval=half)
        else:
            flat = jax.random.normal(key, (size,)) * self.input_std
        return flat.reshape(shape)

    def sample_batch(self, key: PRNGKeyArray, batch_size: int) -> RegressionExample:
        """``batch_size`` independent tasks, stacked on a leading axis."""
        key_w, key_x, key_noise, key_sigma = jax.random.split(key, 4)
        b, n, d = batch_size, self.n_context + 1, self.d
        w = self.w_scale * jax.random.normal(key_w, (b * d,)).reshape(b, d)
        xs = self._inputs(key_x, (b, n, d))
        ys = jnp.einsum("bnd,bd->bn", xs, w)
        sigma = self._noise_levels(key_sigma, b)
        if self.noise_dist != "fixed" or not _is_zero(self.noise_std):
            noise = jax.random.normal(key_noise, (b * n,)).reshape(b, n) * sigma[:, None]
            if not self.query_noise:
                noise = noise.at[:, -1].set(0.0)
            ys = ys + noise
        return RegressionExample(x=xs[:, :-1], y=ys[:, :-1], x_query=xs[:, -1],
                                 y_query=ys[:, -1], w=w, noise_std=sigma)


def _is_zero(value) -> bool:
    """Whether a (possibly traced) value is a Python zero: a traced σ adds its noise."""
    return isinstance(value, int | float) and value == 0


def to_tokens(example: RegressionExample) -> Float[Array, "n+1 d+1"]:
    """Stack e_j = [x_j; y_j] for the context and [x_q; 0] for the query."""
    context = jnp.concatenate([example.x, example.y[:, None]], axis=1)
    query = jnp.concatenate([example.x_query, jnp.zeros((1,), example.x_query.dtype)])
    return jnp.concatenate([context, query[None]], axis=0)


