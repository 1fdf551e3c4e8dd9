"""Causal sequence models: linear, softmax and mesa self-attention in one stack
(von Oswald et al. 2023, "Uncovering mesa-optimization algorithms in Transformers").

Every layer maps the residual stream e_1..e_T ∈ R^D with a causal mask that includes
the diagonal (token t sees t' ≤ t), and adds its output: e_t ← e_t + Δe_t. Per head h,
with q = W_Q e, k = W_K e, v = W_V e and the output projection P_h:

- linear:  Δe_t = Σ_h P_h Σ_{t'≤t} v_{t'} (k_{t'}ᵀ q_t)          (no softmax, no scale)
- softmax: Δe_t = Σ_h P_h Σ_{t'≤t} v_{t'} softmax_{t'≤t}(k_{t'}ᵀ q_t / √d_k)
- mesa:    Δe_t = Σ_h P_h Φ̂_{h,t} q_t,  Φ̂_{h,t} = argmin_Φ ½ Σ_{t'≤t} ‖v_{t'} − Φ k_{t'}‖²
           + ‖Φ‖²_F / (2λ_h) = (Σ v kᵀ)(Σ k kᵀ + I/λ_h)⁻¹, with a learnable λ_h (init 1).

A model is a tuple of layer kinds: ("linear",) * k is the paper's Linear-SA-k on
constructed tokens, ("softmax",) * 7 with MLPs and LayerNorm its full softmax
Transformer, ("softmax", "mesa") the hybrid-mesa model.
"""

import dataclasses
import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import ConfigError, check_choice, check_nonnegative, check_positive_int
from iclab.models._interface import (
    AttentionPatternModel,
    HeadAblationModel,
    HeadWeightsModel,
    ParameterRolesModel,
    ResidualStreamModel,
    StatefulModel,
    roles_by_path,
)
from iclab.models._rows import on_rows
from iclab.models._sigma_reparam import (
    GAMMA_INITS,
    SpectralScale,
    heads_in_matrix,
    heads_out_array,
    heads_out_matrix,
    reparametrised,
)

LAYER_KINDS = ("linear", "softmax", "mesa")
READOUTS = ("slot", "linear")


def causal_mask(t: int) -> Array:
    """The (t, t) boolean mask of t' ≤ t (diagonal included)."""
    return jnp.tril(jnp.ones((t, t), bool))


def causal_softmax_pattern(q: Float[Array, "t k"], k: Float[Array, "t k"]) -> Float[Array, "t t"]:
    """A[t, t'] = softmax_{t' ≤ t}(q_t · k_{t'} / √d_k): rows sum to 1 over the past."""
    scores = q @ k.T / math.sqrt(q.shape[-1])
    return jax.nn.softmax(jnp.where(causal_mask(q.shape[0]), scores, -jnp.inf), axis=-1)


def causal_linear_attention(q: Float[Array, "t k"], k: Float[Array, "t k"],
                            v: Float[Array, "t v"]) -> Float[Array, "t v"]:
    """out_t = Σ_{t'≤t} v_{t'} (k_{t'} · q_t): raw, masked, unnormalised scores."""
    return jnp.where(causal_mask(q.shape[0]), q @ k.T, 0.0) @ v


def _ridge_inverse_apply(k: Float[Array, "t k"], x: Float[Array, "t k"], lam) -> Array:
    """R_t x_t for every t, with R_t = (Σ_{t'≤t} k kᵀ + I/λ)⁻¹ built by Sherman–Morrison
    in a forward ``lax.scan``: R_t = R_{t−1} − R_{t−1} k_t k_tᵀ R_{t−1} / (1 + k_tᵀ R_{t−1} k_t),
    R_0 = λ I. Only the (T, d_k) result is kept, never the R_t."""

    def step(r, inputs):
        k_t, x_t = inputs
        rk = r @ k_t
        r = r - jnp.outer(rk, rk) / (1.0 + k_t @ rk)
        return r, r @ x_t

    _, out = jax.lax.scan(step, lam * jnp.eye(k.shape[-1], dtype=k.dtype), (k, x))
    return out


@jax.custom_vjp
def mesa_attention(q: Float[Array, "t k"], k: Float[Array, "t k"], v: Float[Array, "t v"],
                   lam: Float[Array, ""]) -> Float[Array, "t v"]:
    """The mesa layer of one head: out_t = Φ̂_t q_t, Φ̂_t = (Σ_{t'≤t} v kᵀ)(Σ_{t'≤t} k kᵀ + I/λ)⁻¹
    — the ridge solution on the pairs (k_{t'}, v_{t'}), t' ≤ t — computed as
    q̃_t = R_t q_t by recursive least squares (``_ridge_inverse_apply``) followed by
    causal linear attention with the queries q̃: out_t = Σ_{t'≤t} v_{t'} (k_{t'}ᵀ q̃_t).

    Memory-efficient custom backward (von Oswald et al. 2023, SI C.1, here with the
    R_t recomputed by a second forward scan instead of the fragile reverse
    Sherman–Morrison): with g_t = ∂L/∂out_t, w_t = Σ_{t'≤t} k_{t'} (v_{t'}ᵀ g_t) = ∂L/∂q̃_t
    and u_t = R_t w_t,
        ∂L/∂q_t = u_t,   ∂L/∂v_{t'} = Σ_{t≥t'} g_t (k_{t'}ᵀ q̃_t),
        ∂L/∂k_{t'} = Σ_{t≥t'} [q̃_t (g_tᵀ v_{t'}) − u_t (q̃_tᵀ k_{t'}) − q̃_t (u_tᵀ k_{t'})],
        ∂L/∂λ = Σ_t u_tᵀ q̃_t / λ²,
    from dH_t = −u_t q̃_tᵀ for H_t = R_t⁻¹. Residuals are O(T·d), not O(T·d²).
    """
    return _mesa_forward(q, k, v, lam)[0]


def _mesa_forward(q, k, v, lam):
    x = _ridge_inverse_apply(k, q, lam)
    scores = jnp.where(causal_mask(q.shape[0]), x @ k.T, 0.0)  # [t, t'] = q̃_t · k_{t'}
    return scores @ v, (q, k, v, lam, x, scores)


def _mesa_backward(residuals, g):
    q, k, v, lam, x, scores = residuals
    mask = causal_mask(q.shape[0])
    d_scores = jnp.where(mask, g @ v.T, 0.0)  # [t, t'] = g_t · v_{t'}
    w = d_scores @ k  # ∂L/∂q̃
    u = _ridge_inverse_apply(k, w, lam)
    u_scores = jnp.where(mask, u @ k.T, 0.0)  # [t, t'] = u_t · k_{t'}
    dk = d_scores.T @ x - scores.T @ u - u_scores.T @ x
    dv = scores.T @ g
    dlam = jnp.sum(u * x) / lam ** 2
    return u, dk, dv, dlam.astype(jnp.result_type(lam))


mesa_attention.defvjp(_mesa_forward, _mesa_backward)


def mesa_attention_forgetting(q: Float[Array, "t k"], k: Float[Array, "t k"],
                              v: Float[Array, "t v"], lam: Float[Array, ""],
                              gamma: Float[Array, ""]) -> Float[Array, "t v"]:
    """The mesa layer with a forget factor γ ∈ (0, 1] (von Oswald et al. 2023, SI B):
    Φ̂_t = G_t R_t with R_t = (γ R_{t−1}⁻¹ + k_t k_tᵀ)⁻¹ and G_t = γ G_{t−1} + v_t k_tᵀ, i.e. the
    ridge solution with the pair t' weighted by γ^{t−t'} (the prior I/λ too).
    Sherman–Morrison on R' = R_{t−1}/γ: R_t = R' − R' k_t k_tᵀ R' / (1 + k_tᵀ R' k_t).
    Plain autodiff through the scan (stores every R_t); γ = 1 equals ``mesa_attention``.
    """
    d_k, d_v = k.shape[-1], v.shape[-1]

    def step(carry, inputs):
        r, g = carry
        q_t, k_t, v_t = inputs
        r = r / gamma
        rk = r @ k_t
        r = r - jnp.outer(rk, rk) / (1.0 + k_t @ rk)
        g = gamma * g + jnp.outer(v_t, k_t)
        return (r, g), g @ (r @ q_t)

    init = (lam * jnp.eye(d_k, dtype=q.dtype), jnp.zeros((d_v, d_k), q.dtype))
    _, out = jax.lax.scan(step, init, (q, k, v))
    return out


def sinusoidal_positions(length: int, dim: int) -> Float[Array, "t p"]:
    """Transformer sinusoidal encodings p_t[2i] = sin(t/10000^{2i/P}), p_t[2i+1] = cos(·)."""
    position = jnp.arange(length)[:, None]
    freq = jnp.exp(-math.log(10000.0) * jnp.arange(0, dim, 2) / dim)
    enc = jnp.zeros((length, dim))
    enc = enc.at[:, 0::2].set(jnp.sin(position * freq[None, :]))
    return enc.at[:, 1::2].set(jnp.cos(position * freq[None, :])[:, : dim // 2])


@dataclass(frozen=True)
class CausalTransformerConfig:
    """A causal stack of linear / softmax / mesa attention layers.

    Args:
        layers: the kind of each layer, e.g. ("linear",) * 6 or ("softmax", "mesa").
        heads: heads per layer.
        key_size: per-head key, query and value size.
        dim_in: token width (0 = set by ``resolve``).
        dim: residual width D; 0 = the tokens are the residual stream (no embedding,
            the constructed-token setting).
        dim_out: size of the prediction (n_s); 0 = set by ``resolve``.
        readout: "slot" (the prediction is the first ``dim_out`` entries of the final
            residual stream, constructed tokens) or "linear" (a learned read-out).
        mlp: add a GELU MLP (width 4D) after each attention layer.
        layer_norm: LayerNorms around attention and MLP (``norm_position``); False: none
            (the "no-LN" variant).
        norm_position: "pre" (x + f(LN(x)), and a final LayerNorm before the read-out) or
            "post" (LN(x + f(x)), the original Transformer's; no final LayerNorm).
        clip: clip the residual stream to [−clip, clip] after every layer (0 = off;
            paper 4, reference code 1.5).
        init_std: standard deviation of the attention weights (paper: 0.0002 on
            constructed tokens, 0.05 otherwise).
        positions: width of sinusoidal positional encodings concatenated to the
            inputs of the first layer's queries and keys only (0 = none; paper 40).
        mesa_lambda: initial λ_h of mesa layers.
        forget: mesa layers learn a forget factor γ_h = sigmoid(g_h) (init ≈ 0.98).
        max_len: > 0 adds learned positional embeddings (init N(0, 0.02²)) for sequences
            up to this length to the embedded stream (needs ``dim`` > 0).
        sigma_reparam: "off", or σReparam (Zhai et al. 2023) on every linear map — W_Q, W_K,
            W_V and the output projection of each layer (all heads as one map), the MLPs,
            the embedding and the read-out: Ŵ = γ W / σ(W) with a persistent power
            iteration (``iclab.models.SpectralScale``). "one": γ₀ = 1 (Ŵ₀ has spectral
            norm 1); "sigma0": γ₀ = σ(W₀) (Ŵ₀ = W₀).
    """

    layers: tuple[str, ...] = ("linear",)
    heads: int = 2
    key_size: int = 20
    dim_in: int = 0
    dim: int = 0
    dim_out: int = 0
    readout: str = "slot"
    mlp: bool = False
    layer_norm: bool = False
    norm_position: str = "pre"
    clip: float = 0.0
    init_std: float = 0.0002
    positions: int = 0
    mesa_lambda: float = 1.0
    forget: bool = False
    max_len: int = 0
    sigma_reparam: str = "off"

    def __post_init__(self):
        if not self.layers:
            raise ConfigError("model.layers", self.layers,
                              "a comma-separated list of " + ", ".join(LAYER_KINDS))
        for kind in self.layers:
            check_choice("model.layers", kind, LAYER_KINDS)
        check_positive_int("model.heads", self.heads)
        check_positive_int("model.key_size", self.key_size)
        check_choice("model.readout", self.readout, READOUTS)
        check_choice("model.norm_position", self.norm_position, ("pre", "post"))
        check_choice("model.sigma_reparam", self.sigma_reparam, ("off",) + GAMMA_INITS)
        for key in ("dim_in", "dim", "dim_out", "clip", "positions", "init_std", "max_len"):
            check_nonnegative(f"model.{key}", getattr(self, key))
        if self.max_len and not self.dim:
            raise ConfigError("model.max_len", self.max_len,
                              "0 unless model.dim > 0 (learned positions need an embedding)")
        if self.positions % 2:
            raise ConfigError("model.positions", self.positions, "an even integer >= 0")

    @classmethod
    def attention_only(cls, layers: int = 2, heads: int = 1, key_size: int = 32, dim: int = 64,
                       init_std: float = 0.05) -> "CausalTransformerConfig":
        """The attention-only softmax transformer of the induction-head and bursty-data
        studies (Olsson et al. 2022; Reddy 2024): no MLP, a linear read-out."""
        return cls(layers=("softmax",) * layers, heads=heads, key_size=key_size, dim=dim,
                   readout="linear", init_std=init_std)

    def resolve(self, dim_in: int, dim_out: int) -> "CausalTransformerConfig":
        return dataclasses.replace(self, dim_in=self.dim_in or dim_in,
                                   dim_out=self.dim_out or dim_out)

    @property
    def width(self) -> int:
        return self.dim or self.dim_in


class CausalAttention(eqx.Module):
    """One multi-head causal attention layer of kind "linear", "softmax" or "mesa"."""

    w_q: Float[Array, "h k d"]
    w_k: Float[Array, "h k d"]
    w_v: Float[Array, "h k d"]
    w_p: Float[Array, "h dout k"]
    lam: Float[Array, " h"] | None
    forget_logit: Float[Array, " h"] | None
    spectral: tuple[SpectralScale, ...] | None
    kind: str = eqx.field(static=True)

    def __init__(self, kind: str, dim: int, heads: int, key_size: int, init_std: float, *,
                 qk_dim: int | None = None, mesa_lambda: float = 1.0, forget: bool = False,
                 sigma_reparam: str = "off", key: PRNGKeyArray):
        kq, kk, kv, kp = jax.random.split(key, 4)
        qk_dim = qk_dim or dim
        self.w_q = init_std * jax.random.normal(kq, (heads, key_size, qk_dim))
        self.w_k = init_std * jax.random.normal(kk, (heads, key_size, qk_dim))
        self.w_v = init_std * jax.random.normal(kv, (heads, key_size, dim))
        self.w_p = init_std * jax.random.normal(kp, (heads, dim, key_size))
        self.kind = kind
        self.lam = jnp.full((heads,), mesa_lambda) if kind == "mesa" else None
        self.forget_logit = jnp.full((heads,), 4.0) if (kind == "mesa" and forget) else None
        self.spectral = None if sigma_reparam == "off" else tuple(
            SpectralScale.initialise(m, sigma_reparam) for m in self._matrices())

    def _matrices(self) -> tuple[Array, ...]:
        """W_Q, W_K, W_V (R^D → R^{H·k}) and the output projection (R^{H·k} → R^D)."""
        return (heads_in_matrix(self.w_q), heads_in_matrix(self.w_k),
                heads_in_matrix(self.w_v), heads_out_matrix(self.w_p))

    def weights(self) -> tuple[Array, Array, Array, Array]:
        """The effective (w_q, w_k, w_v, w_p): the raw arrays, or under σReparam
        γ W / σ(W) of each map."""
        if self.spectral is None:
            return self.w_q, self.w_k, self.w_v, self.w_p
        q, k, v, p = (scale.apply(m) for scale, m in zip(self.spectral, self._matrices(),
                                                          strict=True))
        return (q.reshape(self.w_q.shape), k.reshape(self.w_k.shape),
                v.reshape(self.w_v.shape), heads_out_array(p, self.w_p.shape[0]))

    def refreshed(self) -> "CausalAttention":
        """One power-iteration step on every σReparam vector (no-op without σReparam)."""
        if self.spectral is None:
            return self
        new = tuple(scale.refresh(m) for scale, m in zip(self.spectral, self._matrices(),
                                                         strict=True))
        return eqx.tree_at(lambda layer: layer.spectral, self, new)

    def heads_out(self, h: Float[Array, "t d"], qk_input: Float[Array, "t e"] | None = None
                  ) -> Float[Array, "h t k"]:
        """Per-head outputs before the output projection."""
        qk_input = h if qk_input is None else qk_input
        w_q, w_k, w_v, _ = self.weights()
        q = jnp.einsum("hkd,td->htk", w_q, qk_input)
        k = jnp.einsum("hkd,td->htk", w_k, qk_input)
        v = jnp.einsum("hkd,td->htk", w_v, h)
        if self.kind == "linear":
            return jax.vmap(causal_linear_attention)(q, k, v)
        if self.kind == "softmax":
            return jnp.einsum("hts,hsk->htk", jax.vmap(causal_softmax_pattern)(q, k), v)
        lam = jnp.abs(self.lam)
        if self.forget_logit is None:
            return jax.vmap(mesa_attention)(q, k, v, lam)
        gamma = jax.nn.sigmoid(self.forget_logit)
        return jax.vmap(mesa_attention_forgetting)(q, k, v, lam, gamma)

    def __call__(self, h: Float[Array, "t d"], qk_input: Float[Array, "t e"] | None = None
                 ) -> Float[Array, "t d"]:
        """Δe: the layer's update to the residual stream."""
        return jnp.einsum("hdk,htk->td", self.weights()[3], self.heads_out(h, qk_input))

    def pattern(self, h: Float[Array, "t d"], qk_input: Float[Array, "t e"] | None = None
                ) -> Float[Array, "h t t"]:
        """Attention weights A[h, t, t'] (softmax: probabilities; linear: masked raw scores)."""
        qk_input = h if qk_input is None else qk_input
        w_q, w_k, _, _ = self.weights()
        q = jnp.einsum("hkd,td->htk", w_q, qk_input)
        k = jnp.einsum("hkd,td->htk", w_k, qk_input)
        if self.kind == "softmax":
            return jax.vmap(causal_softmax_pattern)(q, k)
        return jnp.where(causal_mask(h.shape[0]), jnp.einsum("htk,hsk->hts", q, k), 0.0)


def _causal_role(name: str) -> str:
    if name.startswith("spectral") or ".spectral." in name:
        return "state" if name.endswith(".u") else "norm"  # σReparam's u and γ
    if name.startswith("layers."):
        return "attention"  # w_q, w_k, w_v, w_p (and a mesa layer's λ, forget gate)
    if name.startswith("norms."):
        return "norm"
    if name.endswith(".bias"):
        return "bias"
    head = name.split(".")[0]
    return {"embed": "embedding", "position_embedding": "embedding", "mlps": "mlp",
            "read_out": "readout"}.get(head, "other")


class CausalTransformer(ResidualStreamModel, AttentionPatternModel, ParameterRolesModel,
                        HeadWeightsModel, HeadAblationModel, StatefulModel):
    """Causal stack of attention layers on one sequence of tokens (T, dim_in) → (T, dim_out).

    ``residual_stream`` returns the activations after the embedding and after every
    layer, (L + 1, T, D), for probes.
    """

    embed: eqx.nn.Linear | None
    position_embedding: Float[Array, "m w"] | None
    layers: tuple[CausalAttention, ...]
    mlps: tuple[eqx.nn.MLP, ...]
    norms: tuple[eqx.nn.LayerNorm, ...]
    read_out: eqx.nn.Linear | None
    spectral: tuple | None
    config: CausalTransformerConfig = eqx.field(static=True)

    def __init__(self, config: CausalTransformerConfig, *, key: PRNGKeyArray):
        if not config.dim_in or not config.dim_out:
            raise ValueError("CausalTransformerConfig.dim_in/dim_out unset: call "
                             "config.resolve(dim_in, dim_out)")
        self.config = config
        width = config.width
        keys = jax.random.split(key, 2 * len(config.layers) + 2)
        self.embed = (eqx.nn.Linear(config.dim_in, width, key=keys[-1])
                      if config.dim else None)
        self.position_embedding = (
            0.02 * jax.random.normal(jax.random.fold_in(keys[-1], 1), (config.max_len, width))
            if config.max_len else None)
        self.layers = tuple(
            CausalAttention(kind, width, config.heads, config.key_size, config.init_std,
                            qk_dim=width + (config.positions if i == 0 else 0),
                            mesa_lambda=config.mesa_lambda, forget=config.forget,
                            sigma_reparam=config.sigma_reparam, key=keys[i])
            for i, kind in enumerate(config.layers))
        n = len(config.layers)
        self.mlps = tuple(eqx.nn.MLP(width, width, 4 * width, depth=1, activation=jax.nn.gelu,
                                     key=keys[n + i]) for i in range(n)) if config.mlp else ()
        count = 2 * n + (1 if config.norm_position == "pre" else 0)
        self.norms = (tuple(eqx.nn.LayerNorm(width) for _ in range(count))
                      if config.layer_norm else ())
        self.read_out = (eqx.nn.Linear(width, config.dim_out, key=keys[-2])
                         if config.readout == "linear" else None)
        self.spectral = None
        if config.sigma_reparam != "off":
            scale = lambda linear: (None if linear is None else SpectralScale.initialise(
                linear.weight, config.sigma_reparam))
            self.spectral = (scale(self.embed),
                             tuple((scale(m.layers[0]), scale(m.layers[1])) for m in self.mlps),
                             scale(self.read_out))

    def _mlp(self, i: int) -> eqx.nn.MLP:
        mlp = self.mlps[i]
        if self.spectral is None:
            return mlp
        first, second = self.spectral[1][i]
        return eqx.tree_at(lambda m: (m.layers[0], m.layers[1]), mlp,
                           (reparametrised(mlp.layers[0], first),
                            reparametrised(mlp.layers[1], second)))

    def refreshed(self) -> "CausalTransformer":
        """One power-iteration step on every σReparam vector (no-op without σReparam)."""
        if self.spectral is None:
            return self
        embed, mlps, read_out = self.spectral
        refresh = lambda scale, linear: None if scale is None else scale.refresh(linear.weight)
        spectral = (refresh(embed, self.embed),
                    tuple((refresh(a, m.layers[0]), refresh(b, m.layers[1]))
                          for (a, b), m in zip(mlps, self.mlps, strict=True)),
                    refresh(read_out, self.read_out))
        return eqx.tree_at(lambda m: (m.layers, m.spectral), self,
                           (tuple(layer.refreshed() for layer in self.layers), spectral),
                           is_leaf=lambda x: x is None)

    def _norm(self, i: int, h):
        return jax.vmap(self.norms[i])(h) if self.norms else h

    def residual_stream(self, tokens: Float[Array, "t d"]) -> Float[Array, "l1 t w"]:
        c = self.config
        embed = reparametrised(self.embed, self.spectral[0] if self.spectral else None)
        h = jax.vmap(embed)(tokens) if embed is not None else tokens
        if self.position_embedding is not None:
            h = h + self.position_embedding[: tokens.shape[0]]
        positions = sinusoidal_positions(tokens.shape[0], c.positions) if c.positions else None
        stream = [h]
        post = c.norm_position == "post"
        for i, layer in enumerate(self.layers):
            x = h if post else self._norm(2 * i, h)
            qk = jnp.concatenate([x, positions], -1) if (i == 0 and positions is not None) \
                else None
            h = self._norm(2 * i, h + layer(x, qk)) if post else h + layer(x, qk)
            if self.mlps and post:
                h = self._norm(2 * i + 1, h + on_rows(self._mlp(i), h))
            elif self.mlps:
                h = h + on_rows(self._mlp(i), self._norm(2 * i + 1, h))
            if c.clip:
                h = jnp.clip(h, -c.clip, c.clip)
            stream.append(h)
        return jnp.stack(stream)

    def predict_from(self, h: Float[Array, "t w"]) -> Float[Array, "t n"]:
        """The prediction read from a residual stream (any layer's, for read-out probes)."""
        if self.read_out is None:
            return h[:, : self.config.dim_out]
        final = self.norms and self.config.norm_position == "pre"
        read_out = reparametrised(self.read_out, self.spectral[2] if self.spectral else None)
        return jax.vmap(read_out)(self._norm(len(self.norms) - 1, h) if final else h)

    def __call__(self, tokens: Float[Array, "t d"]) -> Float[Array, "t n"]:
        return self.predict_from(self.residual_stream(tokens)[-1])

    def without_heads(self, layer: int, heads) -> "CausalTransformer":
        """The model with the output projections of heads ``heads`` of layer ``layer`` set
        to zero (their outputs removed); not defined under σReparam (γ W / σ(W) of a zero
        map), which raises ValueError."""
        if not 0 <= layer < len(self.layers):
            raise ValueError(f"layer {layer}: the model has layers 0..{len(self.layers) - 1}")
        if self.layers[layer].spectral is not None:
            raise ValueError("zero ablation of a σReparam layer is not defined")
        heads = jnp.asarray(list(heads), jnp.int32)
        return eqx.tree_at(lambda m: m.layers[layer].w_p, self,
                           self.layers[layer].w_p.at[heads].set(0.0))

    def with_head_products(self, products) -> "CausalTransformer":
        """The same model with every linear layer's per-head products replaced:
        ``products[l]["ov"]`` (H, D, D) for W_O W_V and ``["qk"]`` (H, D, D) for W_Kᵀ W_Q.

        A linear layer is a function of these products only, so they are realised
        exactly with key size D (W_K = W_V = I, W_Q = qk, W_O = ov): a head of key size
        k < D cannot hold a product of rank > k, such as CompressedAlg's block-identity
        ones (the paper's interpolation runs use key size 40 for this). Everything else —
        embedding, MLPs, norms, clip, read-out — is kept. Only for linear layers without
        positions or σReparam (ValueError otherwise).
        """
        c = self.config
        if any(kind != "linear" for kind in c.layers) or c.positions or c.sigma_reparam != "off":
            raise ValueError("with_head_products: only for linear layers without positions "
                             "or σReparam")
        if len(products) != len(self.layers):
            raise ValueError(f"{len(products)} layers of products for {len(self.layers)} layers")
        width = c.width
        eye = jnp.broadcast_to(jnp.eye(width), (c.heads, width, width))
        config = dataclasses.replace(c, key_size=width)
        model = CausalTransformer(config, key=jax.random.key(0))
        layers = tuple(
            eqx.tree_at(lambda a: (a.w_q, a.w_k, a.w_v, a.w_p), layer,
                        (jnp.asarray(p["qk"]), eye, eye, jnp.asarray(p["ov"])))
            for layer, p in zip(model.layers, products, strict=True))
        absent = lambda v: v is None or (isinstance(v, tuple) and not v)  # no leaves to move
        kept = [name for name in ("embed", "position_embedding", "mlps", "norms", "read_out")
                if not absent(getattr(self, name))]
        where = lambda m: (m.layers, *(getattr(m, name) for name in kept))
        return eqx.tree_at(where, model, (layers, *(getattr(self, name) for name in kept)))

    def head_weights(self) -> list[dict]:
        """Each layer's w_q, w_k, w_v (H, k, D) and w_p (H, D, k); logit scale 1/√k for
        softmax layers, 1 for linear and mesa layers."""
        out = []
        for layer in self.layers:
            w_q, w_k, w_v, w_p = layer.weights()
            out.append({"q": w_q, "k": w_k, "v": w_v, "o": w_p,
                        "logit_scale": 1 / math.sqrt(w_q.shape[1]) if layer.kind == "softmax"
                        else 1.0})
        return out

    def parameter_roles(self):
        """embed / position_embedding: embedding; attention layers: attention; MLP
        weights: mlp; LayerNorms (gain and bias): norm; read_out: readout; other
        biases: bias."""
        return roles_by_path(self, _causal_role)

    def attention_patterns(self, tokens: Float[Array, "t d"]) -> Float[Array, "l h t t"]:
        """Each layer's attention weights (mesa layers: the linear scores k_{t'}ᵀ q_t)."""
        c = self.config
        stream = self.residual_stream(tokens)
        positions = sinusoidal_positions(tokens.shape[0], c.positions) if c.positions else None
        out = []
        for i, layer in enumerate(self.layers):
            x = stream[i] if c.norm_position == "post" else self._norm(2 * i, stream[i])
            qk = jnp.concatenate([x, positions], -1) if (i == 0 and positions is not None) \
                else None
            out.append(layer.pattern(x, qk))
        return jnp.stack(out)
