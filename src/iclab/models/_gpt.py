"""A GPT-style causal transformer on real-valued token sequences (Garg et al. 2022).

read-in Linear(D → W) + learned positions → L pre-LayerNorm blocks of causal softmax
multi-head attention and a GELU MLP (width 4W) → final LayerNorm → read-out Linear(W → 1).
``__call__`` returns one scalar per position; ``attention_patterns`` the (L, H, T, T)
attention weights for instruments.
"""

import dataclasses
import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import check_positive_int
from iclab.models._causal import causal_softmax_pattern
from iclab.models._interface import (
    AttentionPatternModel,
    HeadWeightsModel,
    ParameterRolesModel,
    ResidualStreamModel,
    roles_by_path,
)


@dataclass(frozen=True)
class GPTConfig:
    """Args:
        dim_in: token width D.
        width: residual width W (tiny: 64, small: 128, standard: 256).
        layers: blocks L (tiny: 3, small: 6, standard: 12).
        heads: attention heads (tiny: 2, small: 4, standard: 8).
        max_len: longest sequence (learned positions).
    """

    dim_in: int = 0
    width: int = 64
    layers: int = 3
    heads: int = 2
    max_len: int = 128

    def __post_init__(self):
        for key in ("width", "layers", "heads", "max_len"):
            check_positive_int(f"model.{key}", getattr(self, key))
        if self.width % self.heads:
            from iclab._errors import ConfigError

            raise ConfigError("model.heads", self.heads, f"a divisor of model.width={self.width}")

    def resolve(self, dim_in: int) -> "GPTConfig":
        return dataclasses.replace(self, dim_in=self.dim_in or dim_in)


class _Block(eqx.Module):
    ln1: eqx.nn.LayerNorm
    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    ln2: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP
    heads: int = eqx.field(static=True)

    def __init__(self, width: int, heads: int, *, key: PRNGKeyArray):
        k1, k2, k3 = jax.random.split(key, 3)
        self.ln1, self.ln2 = eqx.nn.LayerNorm(width), eqx.nn.LayerNorm(width)
        self.qkv = eqx.nn.Linear(width, 3 * width, key=k1)
        self.out = eqx.nn.Linear(width, width, key=k2)
        self.mlp = eqx.nn.MLP(width, width, 4 * width, depth=1, activation=jax.nn.gelu, key=k3)
        self.heads = heads

    def pattern_and_update(self, h: Float[Array, "t w"]):
        t, w = h.shape
        q, k, v = jnp.split(jax.vmap(self.qkv)(jax.vmap(self.ln1)(h)), 3, axis=-1)
        split = lambda a: a.reshape(t, self.heads, w // self.heads).transpose(1, 0, 2)
        q, k, v = split(q), split(k), split(v)  # (H, T, W/H)
        pattern = jax.vmap(causal_softmax_pattern)(q, k)
        mixed = jnp.einsum("hqk,hkc->qhc", pattern, v).reshape(t, w)
        h = h + jax.vmap(self.out)(mixed)
        return pattern, h + jax.vmap(self.mlp)(jax.vmap(self.ln2)(h))


def _gpt_role(name: str) -> str:
    if ".ln" in name or name.startswith("ln_f"):
        return "norm"
    if name.endswith(".bias"):
        return "bias"
    if ".qkv." in name or ".out." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    return {"read_in": "embedding", "positions": "embedding",
            "read_out": "readout"}.get(name.split(".")[0], "other")


class GPT(ResidualStreamModel, AttentionPatternModel, ParameterRolesModel, HeadWeightsModel):
    read_in: eqx.nn.Linear
    positions: Float[Array, "max_len w"]
    blocks: tuple[_Block, ...]
    ln_f: eqx.nn.LayerNorm
    read_out: eqx.nn.Linear

    def __init__(self, config: GPTConfig, *, key: PRNGKeyArray):
        if config.dim_in == 0:
            raise ValueError("GPTConfig.dim_in is unset (0): call config.resolve(dim_in)")
        keys = jax.random.split(key, config.layers + 3)
        self.read_in = eqx.nn.Linear(config.dim_in, config.width, key=keys[0])
        self.positions = 0.02 * jax.random.normal(keys[1], (config.max_len, config.width))
        self.blocks = tuple(_Block(config.width, config.heads, key=k) for k in keys[3:])
        self.ln_f = eqx.nn.LayerNorm(config.width)
        self.read_out = eqx.nn.Linear(config.width, 1, key=keys[2])

    def head_weights(self) -> list[dict]:
        """The fused qkv Linear split into heads (its rows: q, then k, then v; head h owns
        the rows h·W/H … (h+1)·W/H − 1 of each), and the out Linear's columns per head;
        logit scale 1/√(W/H). Biases are left out (they shift, not rotate, the logits)."""
        out = []
        for block in self.blocks:
            w = block.qkv.weight.shape[1]
            d = w // block.heads
            q, k, v = (block.qkv.weight[i * w:(i + 1) * w].reshape(block.heads, d, w)
                       for i in range(3))
            o = block.out.weight.reshape(w, block.heads, d).transpose(1, 0, 2)
            out.append({"q": q, "k": k, "v": v, "o": o, "logit_scale": 1 / math.sqrt(d)})
        return out

    def parameter_roles(self):
        """read_in, positions: embedding; qkv, out: attention; MLP weights: mlp;
        LayerNorms (gain and bias): norm; read_out: readout; other biases: bias."""
        return roles_by_path(self, _gpt_role)

    def _run(self, tokens: Float[Array, "t d"]):
        h = jax.vmap(self.read_in)(tokens) + self.positions[: tokens.shape[0]]
        patterns, stream = [], [h]
        for block in self.blocks:
            pattern, h = block.pattern_and_update(h)
            patterns.append(pattern)
            stream.append(h)
        out = jax.vmap(self.read_out)(jax.vmap(self.ln_f)(h))[:, 0]
        return out, jnp.stack(patterns), jnp.stack(stream)

    def __call__(self, tokens: Float[Array, "t d"]) -> Float[Array, " t"]:
        return self._run(tokens)[0]

    def attention_patterns(self, tokens: Float[Array, "t d"]) -> Float[Array, "l h t t"]:
        return self._run(tokens)[1]

    def residual_stream(self, tokens: Float[Array, "t d"]) -> Float[Array, "l1 t w"]:
        """The activations after the read-in (with positions) and after every block."""
        return self._run(tokens)[2]
