"""Power et al.'s algorithmic datasets: every equation ``x ∘ y = z`` over Z_p, split once
into a training and a held-out set. A finite dataset, not a sampler: the engine draws its
batches with ``iclab.engine.finite_sampler``.

Tokens follow the reference's layout without its end-of-sequence markers: ``[x, ∘, y, =]``
with the operands 0 … p − 1, the operator p and "=" p + 1 (vocabulary p + 2); the target is
z. Division is generated as in the reference: for b ≠ 0 and every c, a = b·c mod p, so
a/b = c (p (p − 1) equations).

References:
    Power, Burda, Edwards, Babuschkin, Misra. "Grokking: generalization beyond
    overfitting on small algorithmic datasets", 2022 (``openai/grok``, ``grok/data.py``).
"""

from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from iclab._errors import ConfigError, check_choice, check_in_range, check_nonnegative

MODULAR_OPERATIONS = ("x+y", "x-y", "x*y", "x/y", "x^2+y^2", "x^2+xy+y^2", "x^3+xy")


class Equations(eqx.Module):
    """Equations as model inputs: ``tokens`` (N, 4) = [x, ∘, y, =], ``target`` (N,) = z."""

    tokens: Int[Array, "n 4"]
    target: Int[Array, " n"]


def _table(p: int, operation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = (a.reshape(-1) for a in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if operation == "x/y":  # divisor b ≠ 0, quotient c, dividend a = b·c
        b, c = np.meshgrid(np.arange(1, p), np.arange(p), indexing="ij")
        b, c = b.reshape(-1), c.reshape(-1)
        return (b * c) % p, b, c
    z = {"x+y": x + y, "x-y": x - y, "x*y": x * y, "x^2+y^2": x**2 + y**2,
         "x^2+xy+y^2": x**2 + x * y + y**2, "x^3+xy": x**3 + x * y}[operation]
    return x, y, z % p


@dataclass(frozen=True)
class ModularArithmetic:
    """All equations ``x ∘ y = z (mod p)`` of one operation, split once.

    Args:
        p: the modulus (a prime for division; the reference uses 97).
        operation: one of ``MODULAR_OPERATIONS``.
        train_fraction: the share of the equations in the training set (the grokking
            papers use 0.3–0.5; the reference code's default is 0.05).
        split_seed: seed of the shuffle that splits them.

    Examples:
        >>> train, test = ModularArithmetic(p=5, operation="x/y", train_fraction=0.5).split()
        >>> train.tokens.shape[0] + test.tokens.shape[0]  # 5 · 4 equations
        20
    """

    p: int = 97
    operation: str = "x/y"
    train_fraction: float = 0.5
    split_seed: int = 0

    def __post_init__(self):
        if isinstance(self.p, bool) or not isinstance(self.p, int) or not self.p >= 2:
            raise ConfigError("task.p", self.p, "an integer >= 2")
        check_choice("task.operation", self.operation, MODULAR_OPERATIONS)
        check_in_range("task.train_fraction", self.train_fraction, 0, 1, closed_high=True)
        if not self.train_fraction > 0:
            raise ConfigError("task.train_fraction", self.train_fraction, "a number in (0, 1]")
        check_nonnegative("task.split_seed", self.split_seed)
        if self.operation == "x/y" and any(self.p % q == 0 for q in range(2, self.p)):
            raise ConfigError("task.p", self.p, "a prime for x/y (division needs inverses)")

    @property
    def vocab_size(self) -> int:
        """p operands, the operator and "="."""
        return self.p + 2

    def equations(self) -> Equations:
        """Every equation, in the table's order (x-major; for x/y, divisor-major)."""
        x, y, z = _table(self.p, self.operation)
        tokens = np.stack([x, np.full_like(x, self.p), y, np.full_like(x, self.p + 1)], axis=1)
        return Equations(jnp.asarray(tokens, jnp.int32), jnp.asarray(z, jnp.int32))

    def split(self) -> tuple[Equations, Equations]:
        """(train, test): a seeded shuffle, the first ⌈f N⌉ equations for training."""
        every = self.equations()
        n = every.target.shape[0]
        order = np.random.default_rng(self.split_seed).permutation(n)
        cut = int(np.ceil(self.train_fraction * n))
        pick = lambda idx: Equations(every.tokens[idx], every.target[idx])
        return pick(order[:cut]), pick(order[cut:])
