"""Linear self-attention (LSA) transformers on in-context regression tokens.

Row-vector convention (as in the reference code of von Oswald et al. 2022). With
H ∈ R^{T×D} the tokens of one sequence and C = H[:T−1] the context rows (the last
token, the query, is never a key or value), one layer does

    H ← H + Σ_h  φ(H W_Q,h (C W_K,h)ᵀ) (C W_V,h) W_P,h

with φ = identity (linear attention, no 1/√k, no 1/N) or a row softmax of the
scores scaled by 1/√k. The prediction is read from the query's last coordinate
with a minus sign, ŷ = −H[T−1, D−1], so that the GD construction reads out
+(W₀ + ΔW) x_q (``iclab.solvers.gd_construction``).
"""

import dataclasses
import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import ConfigError, check_nonnegative, check_positive_int
from iclab.models._causal import sinusoidal_positions
from iclab.models._interface import QueryReadoutModel
from iclab.models._rows import on_rows


def _variance_scaling(key: PRNGKeyArray, shape: tuple[int, ...], scale: float):
    """Truncated normal with std √(scale / fan_in), fan_in = shape[-2], one draw per head.

    This is haiku's ``VarianceScaling(scale)`` as used by the reference code; for
    one head it is identical, for several heads W_P's fan-in is k rather than H·k.
    """
    init = jax.nn.initializers.variance_scaling(
        scale, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1, batch_axis=(0,))
    return init(key, shape)


class LinearSelfAttention(eqx.Module):
    """Multi-head (linear or softmax) self-attention whose keys exclude the query token."""

    w_q: Float[Array, "heads dim key"]
    w_k: Float[Array, "heads dim key"]
    w_v: Float[Array, "heads dim key"]
    w_p: Float[Array, "heads key dim"]
    softmax: bool = eqx.field(static=True)

    def __init__(self, dim: int, heads: int, key_size: int, softmax: bool = False,
                 init_scale: float = 1.0, *, key: PRNGKeyArray):
        kq, kk, kv, kp = jax.random.split(key, 4)
        self.w_q = _variance_scaling(kq, (heads, dim, key_size), init_scale)
        self.w_k = _variance_scaling(kk, (heads, dim, key_size), init_scale)
        self.w_v = _variance_scaling(kv, (heads, dim, key_size), init_scale)
        self.w_p = _variance_scaling(kp, (heads, key_size, dim), init_scale)
        self.softmax = softmax

    def attend(self, queries: Float[Array, "q dim"], context: Float[Array, "c dim"]
               ) -> Float[Array, "q dim"]:
        """The residual update Σ_h φ(Q_h K_hᵀ) V_h W_P,h for the given query rows."""
        if not self.softmax:
            # Linear attention regroups as Q (W_KQ (CᵀC) W_PV): the context enters only
            # through its D×D Gram matrix, and the weight products are shared by the
            # batch. ~1.6x faster than projecting Q, K, V for batches of short sequences.
            gram = context.T @ context  # (D, D)
            mix = jnp.einsum("hab,bc,hcd->ad", self.qk(), gram, self.pv())
            return queries @ mix
        q = jnp.einsum("td,hdk->htk", queries, self.w_q)  # (H, q, k)
        k = jnp.einsum("td,hdk->htk", context, self.w_k)  # (H, c, k)
        v = jnp.einsum("td,hdk->htk", context, self.w_v)  # (H, c, k)
        scores = jnp.einsum("hqk,hck->hqc", q, k) / math.sqrt(q.shape[-1])
        out = jnp.einsum("hqc,hck->hqk", jax.nn.softmax(scores, axis=-1), v)
        return jnp.einsum("hqk,hkd->qd", out, self.w_p)

    def attend_factored(self, queries: Float[Array, "q dim"], context: Float[Array, "c dim"]
                        ) -> Float[Array, "q dim"]:
        """The same update through the weight products, Σ_h φ(Q W_KQ,h Cᵀ) C W_PV,h.

        Cheaper than ``attend`` when there are few query rows (e.g. the read-out
        layer, which only needs the query token): O(q·(D² + cD)) per head instead
        of projecting every context token.
        """
        scores = jnp.einsum("qa,hab,cb->hqc", queries, self.qk(), context)
        if self.softmax:
            scores = jax.nn.softmax(scores / math.sqrt(self.w_q.shape[-1]), axis=-1)
        return jnp.einsum("hqc,ca,hab->qb", scores, context, self.pv())

    def __call__(self, h: Float[Array, "t dim"]) -> Float[Array, "t dim"]:
        return self.attend(h, h[:-1])

    def qk(self) -> Float[Array, "heads dim dim"]:
        """W_KQ,h = W_Q,h W_K,hᵀ, so that score_ij = e_i W_KQ e_jᵀ."""
        return jnp.einsum("hak,hbk->hab", self.w_q, self.w_k)

    def pv(self) -> Float[Array, "heads dim dim"]:
        """W_PV,h = W_V,h W_P,h, so that head h writes Σ_j score_ij e_j W_PV,h."""
        return jnp.einsum("hak,hkb->hab", self.w_v, self.w_p)


class LayerNorm(eqx.Module):
    """LayerNorm over the token's features with learned gain and bias."""

    gain: Float[Array, " dim"]
    bias: Float[Array, " dim"]

    def __init__(self, dim: int):
        self.gain, self.bias = jnp.ones(dim), jnp.zeros(dim)

    def __call__(self, x: Float[Array, "t dim"]) -> Float[Array, "t dim"]:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * self.gain[None] + self.bias[None]


class LSABlock(eqx.Module):
    """Attention (+ optional pre-LayerNorm and GELU MLP), each added to the residual."""

    attn: LinearSelfAttention
    ln_attn: LayerNorm | None
    mlp: eqx.nn.MLP | None
    ln_mlp: LayerNorm | None

    def __init__(self, dim: int, heads: int, key_size: int, softmax: bool, mlp_width: int,
                 layer_norm: bool, init_scale: float, *, key: PRNGKeyArray):
        ka, km = jax.random.split(key)
        self.attn = LinearSelfAttention(dim, heads, key_size, softmax, init_scale, key=ka)
        self.ln_attn = LayerNorm(dim) if layer_norm else None
        self.ln_mlp = LayerNorm(dim) if (layer_norm and mlp_width) else None
        self.mlp = (eqx.nn.MLP(dim, dim, mlp_width, depth=1, activation=jax.nn.gelu, key=km)
                    if mlp_width else None)

    def __call__(self, h: Float[Array, "t dim"], query_only: bool = False
                 ) -> Float[Array, "t dim"]:
        """One block on all tokens, or (``query_only``) the updated query row alone."""
        normed = self.ln_attn(h) if self.ln_attn is not None else h
        if query_only:
            h = h[-1:] + self.attn.attend_factored(normed[-1:], normed[:-1])
        else:
            h = h + self.attn.attend(normed, normed[:-1])
        if self.mlp is not None:
            normed = self.ln_mlp(h) if self.ln_mlp is not None else h
            h = h + on_rows(self.mlp, normed)
        return h


@dataclass(frozen=True)
class LSATransformerConfig:
    """Shape of an LSA stack. Defaults: the 1-layer, 1-head model of von Oswald et al.

    Args:
        dim: token width D (d + 1 for concatenated regression tokens); 0 = set by
            the recipe from the task (``resolve``).
        layers: number of layers L.
        heads: attention heads per layer.
        key_size: width k of each head's queries, keys and values; 0 = D.
        softmax: softmax attention (scaled by 1/√k) instead of linear.
        mlp_width: hidden width of a GELU MLP after each attention (0 = none).
        layer_norm: pre-LayerNorm before attention and MLP.
        recurrent: share one block's weights across all L layers.
        init_scale: VarianceScaling scale (the reference uses 0.002 / L).
        first_layer_softmax: softmax attention in layer 1 only (the reference's
            ``first_layer_sm``; needs ``recurrent=False``).
        positions: width P of sinusoidal position encodings concatenated to every token
            (0 = none): the blocks act on D + P coordinates and ŷ is read from the last.
    """

    dim: int = 0
    layers: int = 1
    heads: int = 1
    key_size: int = 0
    softmax: bool = False
    mlp_width: int = 0
    layer_norm: bool = False
    recurrent: bool = True
    init_scale: float = 0.002
    first_layer_softmax: bool = False
    positions: int = 0

    def __post_init__(self):
        for name in ("layers", "heads"):
            check_positive_int(f"model.{name}", getattr(self, name))
        for name in ("dim", "key_size"):
            check_nonnegative(f"model.{name}", getattr(self, name))
        check_nonnegative("model.mlp_width", self.mlp_width)
        check_nonnegative("model.init_scale", self.init_scale)
        check_nonnegative("model.positions", self.positions)
        if self.positions % 2:
            raise ConfigError("model.positions", self.positions, "an even width (sin, cos pairs)")
        if self.first_layer_softmax and self.recurrent and self.layers > 1:
            raise ConfigError("model.first_layer_softmax", True,
                              "false with model.recurrent=true (one shared block)")


    def resolve(self, dim: int) -> "LSATransformerConfig":
        """This config with ``dim`` filled in (if 0) and key_size = D + P if 0."""
        dim = self.dim or dim
        return dataclasses.replace(self, dim=dim, key_size=self.key_size or dim + self.positions)


class LSATransformer(QueryReadoutModel):
    """A stack of L LSA blocks on one token sequence; ŷ = −H[−1, −1]."""

    blocks: tuple[LSABlock, ...]
    n_layers: int = eqx.field(static=True)
    positions: int = eqx.field(static=True)

    def __init__(self, config: LSATransformerConfig, *, key: PRNGKeyArray):
        if config.dim == 0:
            raise ValueError("LSATransformerConfig.dim is unset (0): call config.resolve(dim)")
        config = config.resolve(config.dim)
        n_distinct = 1 if config.recurrent else config.layers
        keys = jax.random.split(key, n_distinct)
        width = config.dim + config.positions
        self.blocks = tuple(
            LSABlock(width, config.heads, config.key_size,
                     config.softmax or (config.first_layer_softmax and i == 0),
                     config.mlp_width, config.layer_norm, config.init_scale, key=k)
            for i, k in enumerate(keys))
        self.n_layers = config.layers
        self.positions = config.positions

    def embed(self, tokens: Float[Array, "t dim"]) -> Float[Array, "t width"]:
        """The tokens with their position encodings concatenated (if any)."""
        if not self.positions:
            return tokens
        pe = sinusoidal_positions(tokens.shape[0], self.positions).astype(tokens.dtype)
        return jnp.concatenate([tokens, pe], axis=1)

    def block(self, layer: int) -> LSABlock:
        return self.blocks[layer if len(self.blocks) > 1 else 0]

    def residual_stream(self, tokens: Float[Array, "t dim"]) -> Float[Array, "layers+1 t dim"]:
        """H after each layer, H⁽⁰⁾ = the embedded tokens ... H⁽ᴸ⁾."""
        states = [self.embed(tokens)]
        for layer in range(self.n_layers):
            states.append(self.block(layer)(states[-1]))
        return jnp.stack(states)

    def __call__(self, tokens: Float[Array, "t dim"]) -> Float[Array, ""]:
        h = self.embed(tokens)
        for layer in range(self.n_layers - 1):
            h = self.block(layer)(h)
        # Only the query row of the last layer is read: update that row alone.
        query = self.block(self.n_layers - 1)(h, query_only=True)
        return -query[0, -1]


class StandardTokenLSA(QueryReadoutModel):
    """An ``LSATransformer`` on the *standard* token construction of a regression
    sequence (von Oswald et al. 2023, the reference's ``normal_token_construct``): it
    takes the regression tokens e_j = (x_j, y_j), e_q = (x_q, 0) like every regression
    model here and lays them out as

        x₁, (0, …, 0, y₁), x₂, …, x_N, (0, …, 0, y_N), x_q      (2N + 1 tokens of width d),

    the label in the last coordinate of its own token, before the stack (usually with
    ``positions`` > 0, ``first_layer_softmax`` and two non-recurrent layers: layer 1 must
    first bring each x_j and y_j together). ŷ = −H[−1, −1] as for the stack.

    Args:
        config: the stack; its ``dim`` is set to d.
        d: the input dimension.
    """

    stack: LSATransformer

    def __init__(self, config: LSATransformerConfig, d: int, *, key: PRNGKeyArray):
        self.stack = LSATransformer(dataclasses.replace(config, dim=d), key=key)

    @staticmethod
    def layout(tokens: Float[Array, "n+1 d+1"]) -> Float[Array, "2n+1 d"]:
        """Regression tokens (x_j, y_j) → the standard tokens x_j, (0, …, 0, y_j), x_q."""
        x, y = tokens[:-1, :-1], tokens[:-1, -1]
        n, d = x.shape
        labels = jnp.zeros((n, d), tokens.dtype).at[:, -1].set(y)
        pairs = jnp.stack([x, labels], axis=1).reshape(2 * n, d)
        return jnp.concatenate([pairs, tokens[-1:, :-1]], axis=0)

    def residual_stream(self, tokens: Float[Array, "n+1 d+1"]
                        ) -> Float[Array, "layers+1 2n+1 width"]:
        return self.stack.residual_stream(self.layout(tokens))

    def __call__(self, tokens: Float[Array, "n+1 d+1"]) -> Float[Array, ""]:
        return self.stack(self.layout(tokens))
