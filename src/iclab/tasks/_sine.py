"""In-context sine regression (von Oswald et al. 2023, §5 "non-linear regression").

A task is y = A sin(x + φ) with A = 0.1 + 0.4 u_A and φ = π u_φ, u ~ U(0, 1), and
inputs x ~ U(−r/2, r/2) (r = 10 in the reference). Tokens are (x, y) ∈ R², the
query (x_q, 0).

Warning:
    The reference code draws A and φ with the same PRNG key, so u_A = u_φ and the
    family has one parameter. ``coupled=True`` (the default) reproduces that;
    ``coupled=False`` draws them independently.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from iclab._errors import check_positive, check_positive_int
from iclab.tasks._linear_regression import RegressionExample
from iclab.tasks._protocol import BatchDrawnTask


@dataclass(frozen=True)
class SineRegressionTask(BatchDrawnTask):
    """Args:
        n_context: context pairs N.
        input_range: r, with x ~ U(−r/2, r/2).
        coupled: A and φ share one uniform draw (the reference's behaviour).
    """

    n_context: int = 10
    input_range: float = 10.0
    coupled: bool = True

    def __post_init__(self):
        check_positive_int("task.n_context", self.n_context)
        check_positive("task.input_range", self.input_range)

    @property
    def d(self) -> int:
        return 1

    def sample_batch(self, key: PRNGKeyArray, batch_size: int) -> RegressionExample:
        """``batch_size`` tasks; ``w`` holds (A, φ) of each task, ``noise_std`` is 0."""
        key_x, key_a, key_p = jax.random.split(key, 3)
        n = self.n_context + 1
        half = self.input_range / 2
        xs = jax.random.uniform(key_x, (batch_size * n,), minval=-half, maxval=half)
        xs = xs.reshape(batch_size, n, 1)
        u_a = jax.random.uniform(key_a, (batch_size,))
        u_p = u_a if self.coupled else jax.random.uniform(key_p, (batch_size,))
        amplitude, phase = 0.1 + 0.4 * u_a, jnp.pi * u_p
        ys = amplitude[:, None] * jnp.sin(xs[..., 0] + phase[:, None])
        return RegressionExample(x=xs[:, :-1], y=ys[:, :-1], x_query=xs[:, -1],
                                 y_query=ys[:, -1], w=jnp.stack([amplitude, phase], axis=1),
                                 noise_std=jnp.zeros(batch_size))
