"""A GPT-style causal transformer on real-valued token sequences (Garg et al. 2022).

read-in Linear(D → W) + learned positions → L pre-LayerNorm blocks of causal softmax
multi-head attention and a GELU MLP (width 4W) → final LayerNorm → read-out Linear(W → O).
Options: Post-LN or no-LN blocks (``norm_position``) and σReparam on every linear map
(``sigma_reparam``). A ``ScalableModel``: a parametrisation (``iclab.parametrisation``)
sets its residual-branch, attention-logit and read-out multipliers.
``__call__`` returns one scalar per position (O = 1) or (T, O) logits; ``attention_patterns``
the (L, H, T, T) attention weights for instruments.
"""

import dataclasses
import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import check_choice, check_positive_int
from iclab.models._causal import causal_softmax_pattern
from iclab.models._interface import (
    AttentionPatternModel,
    ForwardMultipliers,
    HeadWeightsModel,
    ResidualStreamModel,
    ScalableModel,
    StatefulModel,
    path_name,
    replace_static,
    roles_by_path,
)
from iclab.models._rows import on_rows
from iclab.models._sigma_reparam import GAMMA_INITS, SpectralScale, reparametrised

NORM_POSITIONS = ("pre", "post", "none")
ATTENTIONS = ("softmax", "shaped")


@dataclass(frozen=True)
class GPTConfig:
    """Args:
        dim_in: token width D.
        width: residual width W (tiny: 64, small: 128, standard: 256).
        layers: blocks L (tiny: 3, small: 6, standard: 12).
        heads: attention heads (tiny: 2, small: 4, standard: 8).
        max_len: longest sequence (learned positions).
        norm_position: "pre" (h + f(LN(h)), a final LayerNorm), "post" (LN(h + f(h)), the
            original Transformer's; no final LayerNorm) or "none" (h + f(h), no LayerNorm).
        sigma_reparam: "off", or σReparam (Zhai et al. 2023) on every linear map (read-in,
            fused qkv, attention output, MLPs, read-out): "one" (γ₀ = 1) or "sigma0"
            (γ₀ = σ(W₀)); see ``iclab.models.SpectralScale``.
        dim_out: outputs per position (1: a scalar per position; the vocabulary for a
            language model).
        residual: False drops the skip connections: each block replaces the stream,
            h ← f(h) (Dong et al. 2021's pure attention, with the MLPs).
        attention: "softmax", or "shaped" (Noci et al. 2023): the causal softmax of the
            logits q·k/√d_k further divided by τ₀√W, centred at the identity,
            A = I + softmax(·) − U with U the causal uniform pattern (rows still sum to 1).
        shaped_tau: τ₀ of the shaped attention.
    """

    dim_in: int = 0
    width: int = 64
    layers: int = 3
    heads: int = 2
    max_len: int = 128
    norm_position: str = "pre"
    sigma_reparam: str = "off"
    dim_out: int = 1
    residual: bool = True
    attention: str = "softmax"
    shaped_tau: float = 1.0

    def __post_init__(self):
        for key in ("width", "layers", "heads", "max_len", "dim_out"):
            check_positive_int(f"model.{key}", getattr(self, key))
        check_choice("model.norm_position", self.norm_position, NORM_POSITIONS)
        check_choice("model.sigma_reparam", self.sigma_reparam, ("off",) + GAMMA_INITS)
        check_choice("model.attention", self.attention, ATTENTIONS)
        if not self.shaped_tau > 0:
            from iclab._errors import ConfigError

            raise ConfigError("model.shaped_tau", self.shaped_tau, "a positive number")
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
    spectral: tuple[SpectralScale, ...] | None
    heads: int = eqx.field(static=True)
    norm_position: str = eqx.field(static=True)
    residual: bool = eqx.field(static=True)
    attention: str = eqx.field(static=True)
    shaped_tau: float = eqx.field(static=True)

    def __init__(self, width: int, heads: int, *, key: PRNGKeyArray,
                 norm_position: str = "pre", sigma_reparam: str = "off",
                 residual: bool = True, attention: str = "softmax",
                 shaped_tau: float = 1.0):
        k1, k2, k3 = jax.random.split(key, 3)
        self.ln1, self.ln2 = eqx.nn.LayerNorm(width), eqx.nn.LayerNorm(width)
        self.qkv = eqx.nn.Linear(width, 3 * width, key=k1)
        self.out = eqx.nn.Linear(width, width, key=k2)
        self.mlp = eqx.nn.MLP(width, width, 4 * width, depth=1, activation=jax.nn.gelu, key=k3)
        self.heads = heads
        self.norm_position = norm_position
        self.residual, self.attention, self.shaped_tau = residual, attention, shaped_tau
        self.spectral = None if sigma_reparam == "off" else tuple(
            SpectralScale.initialise(linear.weight, sigma_reparam) for linear in self._linears())

    def _linears(self) -> tuple[eqx.nn.Linear, ...]:
        return self.qkv, self.out, self.mlp.layers[0], self.mlp.layers[1]

    def effective(self) -> tuple[eqx.nn.Linear, eqx.nn.Linear, eqx.nn.MLP]:
        """qkv, out and the MLP with their σReparam weights."""
        if self.spectral is None:
            return self.qkv, self.out, self.mlp
        qkv, out, first, second = (reparametrised(linear, scale) for linear, scale in zip(
            self._linears(), self.spectral, strict=True))
        mlp = eqx.tree_at(lambda m: (m.layers[0], m.layers[1]), self.mlp, (first, second))
        return qkv, out, mlp

    def refreshed(self) -> "_Block":
        if self.spectral is None:
            return self
        new = tuple(scale.refresh(linear.weight) for linear, scale in zip(
            self._linears(), self.spectral, strict=True))
        return eqx.tree_at(lambda b: b.spectral, self, new)

    def pattern_and_update(self, h: Float[Array, "t w"],
                           multipliers: ForwardMultipliers | None = None):
        t, w = h.shape
        multipliers = ForwardMultipliers() if multipliers is None else multipliers
        c = multipliers.branch
        qkv, out, mlp = self.effective()
        norm = (lambda ln, x: x) if self.norm_position == "none" else (
            lambda ln, x: jax.vmap(ln)(x))
        x = norm(self.ln1, h) if self.norm_position == "pre" else h
        q, k, v = jnp.split(on_rows(qkv, x), 3, axis=-1)
        split = lambda a: a.reshape(t, self.heads, w // self.heads).transpose(1, 0, 2)
        q, k, v = split(q) * multipliers.logit, split(k), split(v)  # (H, T, W/H)
        if self.attention == "shaped":
            rows = jnp.arange(1, t + 1, dtype=h.dtype)[:, None]
            uniform = jnp.where(jnp.tril(jnp.ones((t, t), bool)), 1.0 / rows, 0.0)
            pattern = jnp.eye(t, dtype=h.dtype)[None] + jax.vmap(causal_softmax_pattern)(
                q / (self.shaped_tau * math.sqrt(w)), k) - uniform[None]
        else:
            pattern = jax.vmap(causal_softmax_pattern)(q, k)
        mixed = jnp.einsum("hqk,hkc->qhc", pattern, v).reshape(t, w)
        add = (lambda h, f: h + c * f) if self.residual else (lambda h, f: c * f)
        if self.norm_position == "post":
            h = norm(self.ln1, add(h, on_rows(out, mixed)))
            return pattern, norm(self.ln2, add(h, on_rows(mlp, h)))
        h = add(h, on_rows(out, mixed))
        x = norm(self.ln2, h) if self.norm_position == "pre" else h
        return pattern, add(h, on_rows(mlp, x))


def _gpt_role(name: str) -> str:
    if name.startswith("spectral") or ".spectral." in name:
        return "state" if name.endswith(".u") else "norm"  # σReparam's u and γ
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


class GPT(ResidualStreamModel, AttentionPatternModel, ScalableModel, HeadWeightsModel,
          StatefulModel):
    read_in: eqx.nn.Linear
    positions: Float[Array, "max_len w"]
    blocks: tuple[_Block, ...]
    ln_f: eqx.nn.LayerNorm
    read_out: eqx.nn.Linear
    spectral: tuple[SpectralScale, SpectralScale] | None
    norm_position: str = eqx.field(static=True)
    multipliers: ForwardMultipliers = eqx.field(static=True)
    scalar_output: bool = eqx.field(static=True)

    def __init__(self, config: GPTConfig, *, key: PRNGKeyArray):
        if config.dim_in == 0:
            raise ValueError("GPTConfig.dim_in is unset (0): call config.resolve(dim_in)")
        keys = jax.random.split(key, config.layers + 3)
        self.read_in = eqx.nn.Linear(config.dim_in, config.width, key=keys[0])
        self.positions = 0.02 * jax.random.normal(keys[1], (config.max_len, config.width))
        self.blocks = tuple(_Block(config.width, config.heads, key=k,
                                   norm_position=config.norm_position,
                                   sigma_reparam=config.sigma_reparam,
                                   residual=config.residual, attention=config.attention,
                                   shaped_tau=config.shaped_tau) for k in keys[3:])
        self.ln_f = eqx.nn.LayerNorm(config.width)
        self.read_out = eqx.nn.Linear(config.width, config.dim_out, key=keys[2])
        self.norm_position = config.norm_position
        self.multipliers = ForwardMultipliers()
        self.scalar_output = config.dim_out == 1
        self.spectral = None if config.sigma_reparam == "off" else (
            SpectralScale.initialise(self.read_in.weight, config.sigma_reparam),
            SpectralScale.initialise(self.read_out.weight, config.sigma_reparam))

    def refreshed(self) -> "GPT":
        """One power-iteration step on every σReparam vector (no-op without σReparam)."""
        if self.spectral is None:
            return self
        spectral = (self.spectral[0].refresh(self.read_in.weight),
                    self.spectral[1].refresh(self.read_out.weight))
        return eqx.tree_at(lambda m: (m.blocks, m.spectral), self,
                           (tuple(b.refreshed() for b in self.blocks), spectral))

    def head_weights(self) -> list[dict]:
        """The fused qkv Linear split into heads (its rows: q, then k, then v; head h owns
        the rows h·W/H … (h+1)·W/H − 1 of each), and the out Linear's columns per head;
        logit scale 1/√(W/H). Biases are left out (they shift, not rotate, the logits)."""
        out = []
        for block in self.blocks:
            qkv, out_linear, _ = block.effective()
            w = qkv.weight.shape[1]
            d = w // block.heads
            q, k, v = (qkv.weight[i * w:(i + 1) * w].reshape(block.heads, d, w)
                       for i in range(3))
            o = out_linear.weight.reshape(w, block.heads, d).transpose(1, 0, 2)
            out.append({"q": q, "k": k, "v": v, "o": o,
                        "logit_scale": self.multipliers.logit / math.sqrt(d)})
        return out

    def parameter_roles(self):
        """read_in, positions: embedding; qkv, out: attention; MLP weights: mlp;
        LayerNorms (gain and bias): norm; read_out: readout; other biases: bias."""
        return roles_by_path(self, _gpt_role)

    def depth(self) -> int:
        return len(self.blocks)

    def block_arrays(self):
        """Everything under ``blocks``."""
        roles = self.parameter_roles()
        return eqx.tree_at(lambda t: t.blocks, jax.tree.map(lambda r: False, roles),
                           jax.tree.map(lambda r: True, roles.blocks))

    def init_exponents(self):
        """½ for the linear maps whose fan-in is the width (Equinox's U(±1/√fan_in) for
        weight and bias: in the blocks and the read-out), 0 for the read-in (fan-in D),
        the positions (std 0.02) and the LayerNorms."""
        def exponent(path, leaf):
            if not hasattr(leaf, "shape"):
                return None
            name = path_name(path)
            fan_in_width = name.startswith("read_out.") or (
                name.startswith("blocks.") and (".qkv." in name or ".out." in name
                                                or ".mlp." in name))
            return 0.5 if fan_in_width else 0.0

        return jax.tree_util.tree_map_with_path(exponent, self)

    def head_width(self) -> int:
        return self.read_in.weight.shape[0] // self.blocks[0].heads if self.blocks else 0

    def with_multipliers(self, multipliers: ForwardMultipliers) -> "GPT":
        return replace_static(self, multipliers=multipliers)

    def _run(self, tokens: Float[Array, "t d"]):
        read_in, read_out = (self.read_in, self.read_out) if self.spectral is None else (
            reparametrised(self.read_in, self.spectral[0]),
            reparametrised(self.read_out, self.spectral[1]))
        h0 = on_rows(read_in, tokens) + self.positions[: tokens.shape[0]]
        # the blocks run as one lax.scan over their stacked arrays (the parameters stay
        # one module per block): compilation does not grow with the depth
        arrays = [eqx.filter(b, eqx.is_array) for b in self.blocks]
        static = eqx.partition(self.blocks[0], eqx.is_array)[1]

        def step(h, block_arrays):
            pattern, h = eqx.combine(block_arrays, static).pattern_and_update(
                h, self.multipliers)
            return h, (pattern, h)

        h, (patterns, hs) = jax.lax.scan(step, h0, jax.tree.map(
            lambda *xs: jnp.stack(xs), *arrays))
        stream = jnp.concatenate([h0[None], hs])
        final = jax.vmap(self.ln_f)(h) if self.norm_position == "pre" else h
        out = on_rows(read_out, final * self.multipliers.output)
        out = out[:, 0] if self.scalar_output else out
        return out, patterns, stream

    def __call__(self, tokens: Float[Array, "t d"]) -> Float[Array, " t"]:
        return self._run(tokens)[0]

    def attention_patterns(self, tokens: Float[Array, "t d"]) -> Float[Array, "l h t t"]:
        return self._run(tokens)[1]

    def residual_stream(self, tokens: Float[Array, "t d"]) -> Float[Array, "l1 t w"]:
        """The activations after the read-in (with positions) and after every block."""
        return self._run(tokens)[2]
