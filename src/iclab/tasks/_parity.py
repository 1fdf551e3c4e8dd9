"""Sparse parity: y = ∏_{i ∈ S} x_i for x uniform on {−1, +1}^n and a hidden set S of k
coordinates (fixed by a seed). Learnable by SGD only after a long plateau whose length
grows like n^k, with hidden progress before the loss drops: a cheap grokking-like setting.

References:
    Barak, Edelman, Goel, Kakade, Malach, Zhang. "Hidden progress in deep learning: SGD
    learns parities near the computational limit", NeurIPS 2022.
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import ConfigError, check_nonnegative, check_positive_int
from iclab.tasks._protocol import VmappedTask


class ParityExample(eqx.Module):
    """x ∈ {−1, +1}^n and its label y = ∏_{i ∈ S} x_i ∈ {−1, +1}."""

    x: Float[Array, " n"]
    y: Float[Array, ""]


@dataclass(frozen=True)
class SparseParityTask(VmappedTask):
    """(n, k)-sparse parity with a hidden support drawn once from ``support_seed``.

    Args:
        n: input bits.
        k: size of the hidden support S.
        support_seed: seed of S (the same S for every example of a run).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> task = SparseParityTask(n=6, k=2)
        >>> e = task.sample(jax.random.key(0))
        >>> bool(e.y == e.x[jnp.array(task.support)].prod())
        True
    """

    n: int = 40
    k: int = 3
    support_seed: int = 0

    def __post_init__(self):
        check_positive_int("task.n", self.n)
        check_positive_int("task.k", self.k)
        check_nonnegative("task.support_seed", self.support_seed)
        if self.k > self.n:
            raise ConfigError("task.k", self.k, f"an integer <= task.n = {self.n}")

    @property
    def support(self) -> tuple[int, ...]:
        """S, sorted."""
        rng = np.random.default_rng(self.support_seed)
        return tuple(sorted(int(i) for i in rng.choice(self.n, self.k, replace=False)))

    def sample(self, key: PRNGKeyArray) -> ParityExample:
        x = jax.random.rademacher(key, (self.n,), jnp.float32)
        return ParityExample(x, jnp.prod(x[jnp.asarray(self.support)]))
