"""A residual MLP applied to every token: read-in Linear(D → N), L residual blocks
h ← h + b · f_ℓ(h) with f_ℓ(h) = W_K φ(W_(K−1) ⋯ φ(W_1 h)) (ReLU φ, K linear maps per
branch), read-out Linear(N → O) on (output multiplier · h).

The residual MLP of the depth-parametrisation studies (Yang et al., TP-VI; Bordelon et al.
2024; the linearisation toy of Dey et al.'s CompleteP code), as a ``ScalableModel``: a
parametrisation (``iclab.parametrisation``) sets its branch multiplier b and its read-out
multiplier. No normalisation layers.
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import check_positive_int
from iclab.models._interface import (
    ForwardMultipliers,
    ResidualStreamModel,
    ScalableModel,
    path_name,
    replace_static,
    roles_by_path,
)


@dataclass(frozen=True)
class ResidualMLPConfig:
    """Args:
        dim_in: input width D per token.
        width: residual width N.
        blocks: residual blocks L.
        block_layers: linear maps per branch K (ReLU between them).
        dim_out: outputs per token O (1: one scalar per token).
        bias: biases on every linear map (zero-initialised).
    """

    dim_in: int = 64
    width: int = 128
    blocks: int = 2
    block_layers: int = 2
    dim_out: int = 1
    bias: bool = False

    def __post_init__(self):
        for name in ("dim_in", "width", "blocks", "block_layers", "dim_out"):
            check_positive_int(f"model.{name}", getattr(self, name))


class Branch(eqx.Module):
    """One residual branch f(h) = W_K φ(⋯ φ(W_1 h + b_1) ⋯) + b_K (ReLU φ)."""

    weights: list
    biases: list | None

    def __call__(self, h: Float[Array, " n"]) -> Float[Array, " n"]:
        for k, w in enumerate(self.weights):
            if k:
                h = jax.nn.relu(h)
            h = w @ h + (self.biases[k] if self.biases is not None else 0.0)
        return h


class ResidualMLP(ResidualStreamModel, ScalableModel):
    """See the module docstring and ``ResidualMLPConfig``.

    Initialisation (Gaussian): the read-in N(0, 1/D); a branch's first map N(0, 1/N) (its
    input is the stream), the maps after a ReLU N(0, 2/N) (He), so that at b = 1 a branch's
    output has the second moment of its input; the read-out N(0, 1/N); biases 0.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> model = ResidualMLP(ResidualMLPConfig(dim_in=3, width=8, blocks=4),
        ...                     key=jax.random.key(0))
        >>> model(jnp.ones((5, 3))).shape, model.residual_stream(jnp.ones((5, 3))).shape
        ((5,), (5, 5, 8))
    """

    read_in: Float[Array, "n d"]
    blocks: list
    read_out: Float[Array, "o n"]
    read_in_bias: Float[Array, " n"] | None
    read_out_bias: Float[Array, " o"] | None
    multipliers: ForwardMultipliers = eqx.field(static=True)
    config: ResidualMLPConfig = eqx.field(static=True)

    def __init__(self, config: ResidualMLPConfig, *, key: PRNGKeyArray,
                 multipliers: ForwardMultipliers | None = None):
        n, k = config.width, config.block_layers
        keys = jax.random.split(key, config.blocks + 2)
        self.config = config
        self.multipliers = multipliers or ForwardMultipliers()
        self.read_in = jax.random.normal(keys[0], (n, config.dim_in)) / jnp.sqrt(config.dim_in)
        self.read_out = jax.random.normal(keys[1], (config.dim_out, n)) / jnp.sqrt(n)
        self.read_in_bias = jnp.zeros(n) if config.bias else None
        self.read_out_bias = jnp.zeros(config.dim_out) if config.bias else None

        def branch(key):
            ks = jax.random.split(key, k)
            weights = [jax.random.normal(ks[i], (n, n)) * jnp.sqrt((1.0 if i == 0 else 2.0) / n)
                       for i in range(k)]
            return Branch(weights, [jnp.zeros(n) for _ in range(k)] if config.bias else None)

        self.blocks = [branch(kb) for kb in keys[2:]]

    def _stream(self, x: Float[Array, " d"]) -> Float[Array, "l1 n"]:
        h0 = self.read_in @ x + (self.read_in_bias if self.read_in_bias is not None else 0.0)
        arrays = [eqx.filter(b, eqx.is_array) for b in self.blocks]
        static = eqx.partition(self.blocks[0], eqx.is_array)[1]
        branch = self.multipliers.branch

        def step(h, block_arrays):
            h = h + branch * eqx.combine(block_arrays, static)(h)
            return h, h

        _, hs = jax.lax.scan(step, h0, jax.tree.map(lambda *xs: jnp.stack(xs), *arrays))
        return jnp.concatenate([h0[None], hs])

    def residual_stream(self, tokens: Float[Array, "t d"]) -> Float[Array, "l1 t n"]:
        """The read-in's output and every block's, per token."""
        return jnp.swapaxes(jax.vmap(self._stream)(tokens), 0, 1)

    def __call__(self, tokens: Float[Array, "t d"]) -> Float[Array, "t ..."]:
        h = self.residual_stream(tokens)[-1] * self.multipliers.output
        out = h @ self.read_out.T
        out = out + self.read_out_bias[None] if self.read_out_bias is not None else out
        return out[:, 0] if self.config.dim_out == 1 else out

    def parameter_roles(self):
        """read_in (and its bias): embedding; branch weights: mlp; branch biases: bias;
        read_out: readout (its bias: bias)."""
        def role(name: str) -> str:
            if name.startswith("read_in"):
                return "embedding"
            if name == "read_out":
                return "readout"
            return "bias" if "bias" in name else "mlp"

        return roles_by_path(self, role)

    def depth(self) -> int:
        return len(self.blocks)

    def block_arrays(self):
        """Everything under ``blocks``."""
        return jax.tree_util.tree_map_with_path(
            lambda p, leaf: path_name(p).startswith("blocks.") if hasattr(leaf, "shape")
            else None, self)

    def init_exponents(self):
        """½ for the branch weights and the read-out (std ∝ 1/√N), 0 for the read-in
        (fan-in D) and the biases (zero)."""
        return jax.tree_util.tree_map_with_path(
            lambda p, leaf: (0.5 if ".weights." in f".{path_name(p)}."
                             or path_name(p) == "read_out" else 0.0)
            if hasattr(leaf, "shape") else None, self)

    def head_width(self) -> int:
        return 0

    def with_multipliers(self, multipliers: ForwardMultipliers) -> "ResidualMLP":
        return replace_static(self, multipliers=multipliers)
