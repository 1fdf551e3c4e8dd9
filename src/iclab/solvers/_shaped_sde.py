"""The shaped transformer's covariance at initialisation: the finite-width network's exact
law, layer by layer, and its infinite-depth-and-width limit, a stochastic differential
equation (Noci, Li, Li, He, Hofmann, Maddison, Roy 2023).

The network (attention only, no normalisation on the stream; m tokens X ∈ R^(m×n), one
head of width n_k, fresh Gaussian weights per layer, W ~ N(0, 1) entries):

    X' = λ X + γ A (X W_V / √n),    λ² + γ² = 1,
    Q = N(X) W_Q / √n,  K = N(X) W_K / √n,
    shaped:   A = I + softmax(Q Kᵀ / (τ₀ √(n n_k))) − 11ᵀ/m   (rows sum to 1),
    softmax:  A = softmax(Q Kᵀ / √n_k)                      (the unshaped attention),

where N(X) scales every token to norm √n (an RMS norm on the queries' and keys' input,
``logits="normalised"``) or is X itself (``logits="raw"``: the logits then grow with the
tokens' norms, and the norms blow up in finite time).

Its state is V = X Xᵀ / n (m × m); C = D^(−½) V D^(−½) (D = diag V) is the correlation.
Gaussian weights are rotation invariant, so the law of V' given X depends on V only; with
V = L Lᵀ the layer is, exactly in law,

    X Pᵀ / n = L Wᵀ_mm Lᵀ / √n,   P Pᵀ / n = L (W_mm Wᵀ_mm + R) Lᵀ / n,   Q Kᵀ = J S Z Jᵀ,

with P = X W_V/√n, J = D^(−½) L (or L for raw logits), W_mm an m × m Gaussian block,
R ~ Wishart(n − m, I_m), S Sᵀ ~ Wishart(n_k, I_m), Z an m × m Gaussian
(``layer_covariance``): the width-n network at any depth costs O(m³) per layer
(``network_covariances``). ``explicit_layer`` is the same layer with the n × n weights
drawn, for checking the reduced form.

The limit (our derivation; the paper's Theorem is not copied here). With ε = n^(−½), K the
logits' covariance (C, or V for raw logits), Ŷ = Q Kᵀ/(τ₀√n_k) (E[Ŷ_αβ Ŷ_γδ] =
K_αγ K_βδ/τ₀²) and its row-centred Ỹ = Ŷ(I − U), U = 11ᵀ/m, the shaped attention is
A = I + εỸ/m + ε² Z/(2m) + O(ε³) with Z_αβ = Ỹ²_αβ − (1/m)Σ_β' Ỹ²_αβ'. Collecting orders,
V' − V = εG + ε²H + …, and with depth d = T n (time t = layer/n):

    dV = b(V) dt + Σ(V)^(½) dB,
    b(V) = γ² (E[Z]V + V E[Z]ᵀ)/(2m) + γ² K ⟨V, K̄⟩ / (m² τ₀²),
        E[Z]_αβ = K_αα (K̄_ββ − tr K̄ / m) / τ₀²,   K̄ = (I − U) K (I − U),
    G = λγ (M + Mᵀ) + γ² E + (γ²/m)(Ỹ V + V Ỹᵀ)   (Σ = Cov G),
        M = L Ξ₁ Lᵀ,  E = L (Ξ₂ + Ξ₂ᵀ) Lᵀ / √2,  Ŷ = F Ξ₃ Fᵀ / τ₀, F Fᵀ = K  (Ξ_i iid N(0, 1)),

so Σ(V)_{αβ,γδ} = (2λ²γ² + γ⁴)(V_αγV_βδ + V_αδV_βγ) + (γ⁴/(m²τ₀²))(K_αγW_βδ + K_αδW_βγ +
K_βγW_αδ + K_βδW_αγ) with W = V K̄ V (``sde_diffusion``). The value weights give Li, Nica
and Roy's linear-network diffusion; the attention adds a drift ∝ γ²/τ₀² and a diffusion
∝ γ⁴/τ₀². ``moment_match`` estimates b and Σ from one finite layer by Monte Carlo, the
check of this derivation. ``sde_covariances`` integrates the SDE by Euler–Maruyama,
sampling G in its factored form (square roots of the m × m V and K, not of the m² × m² Σ).

References:
    Noci, Li, Li, He, Hofmann, Maddison, Roy. "The shaped transformer: attention models in
    the infinite depth-and-width limit", NeurIPS 2023.
    Li, Nica, Roy. "The neural covariance SDE: shaped infinite depth-and-width networks at
    initialization", NeurIPS 2022.
"""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import ConfigError, check_choice, check_positive

ATTENTIONS = ("shaped", "softmax")
LOGITS = ("normalised", "raw")


@dataclass(frozen=True)
class ShapedBlock:
    """One residual attention block X' = λX + γ A X W_V/√n (see the module docstring).

    Args:
        gamma: the branch coefficient γ ∈ (0, 1]; λ = √(1 − γ²).
        tau0: the shaped logits' temperature τ₀ (τ = τ₀√(n n_k)).
        attention: "shaped" or "softmax" (standard, unshaped).
        key_width: the head width n_k; 0: n_k = n (one head as wide as the stream).
        logits: "normalised" (queries and keys from the tokens scaled to norm √n) or
            "raw" (from the tokens as they are).
    """

    gamma: float = 1 / math.sqrt(2)
    tau0: float = 1.0
    attention: str = "shaped"
    key_width: int = 0
    logits: str = "normalised"

    def __post_init__(self):
        if not 0 < self.gamma <= 1:
            raise ConfigError("block.gamma", self.gamma, "a number in (0, 1]")
        check_positive("block.tau0", self.tau0)
        check_choice("block.attention", self.attention, ATTENTIONS)
        check_choice("block.logits", self.logits, LOGITS)
        if isinstance(self.key_width, bool) or not isinstance(self.key_width, int) or \
                self.key_width < 0:
            raise ConfigError("block.key_width", self.key_width, "0 (= n) or a positive "
                              "integer")

    @property
    def lam(self) -> float:
        return math.sqrt(1 - self.gamma ** 2)

    def head(self, n: int) -> int:
        return self.key_width or n


def _attention(block: ShapedBlock, qk: Array, n: int, m: int) -> Array:
    """A from the raw scores QKᵀ (m × m)."""
    nk = block.head(n)
    if block.attention == "softmax":
        return jax.nn.softmax(qk / math.sqrt(nk), axis=-1)
    return jnp.eye(m) + jax.nn.softmax(qk / (block.tau0 * math.sqrt(n * nk)), axis=-1) - 1 / m


def _wishart(key: PRNGKeyArray, dof: int, m: int) -> Array:
    """A lower-triangular T with T Tᵀ ~ Wishart(dof, I_m) (Bartlett; dof ≥ m)."""
    kc, kn = jax.random.split(key)
    dofs = dof - jnp.arange(m)
    diag = jnp.sqrt(2 * jax.random.gamma(kc, dofs / 2))
    below = jnp.tril(jax.random.normal(kn, (m, m)), -1)
    return below + jnp.diag(diag)


def _factor(v: Array) -> Array:
    """F with F Fᵀ = V (the symmetric square root: any factor gives the same law, and this
    one survives a V that has collapsed to rank one)."""
    w, u = jnp.linalg.eigh(v)
    return u * jnp.sqrt(jnp.maximum(w, 0))[None]


def _logit_factor(v: Array, factor: Array, block: ShapedBlock) -> Array:
    """J with J Jᵀ = K, the logits' input covariance (C or V), from a factor of V."""
    if block.logits == "raw":
        return factor
    return factor / jnp.sqrt(jnp.diag(v))[:, None]


def _logit_covariance(v: Array, block: ShapedBlock) -> Array:
    if block.logits == "raw":
        return v
    d = jnp.sqrt(jnp.diag(v))
    return v / (d[:, None] * d[None, :])


def layer_covariance(v: Float[Array, "m m"], key: PRNGKeyArray, n: int,
                     block: ShapedBlock) -> Float[Array, "m m"]:
    """V' after one block of the width-n network, drawn from its exact law given V
    (n ≥ 2m and n_k ≥ m; see the module docstring).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> v = 0.5 * jnp.eye(4) + 0.5
        >>> layer_covariance(v, jax.random.key(0), 64, ShapedBlock()).shape
        (4, 4)
    """
    m = v.shape[0]
    nk = block.head(n)
    if n < 2 * m or nk < m:
        raise ValueError(f"layer_covariance needs n ≥ 2m and n_k ≥ m (n={n}, n_k={nk}, "
                         f"m={m})")
    kw, kr, ks, kz = jax.random.split(key, 4)
    chol = _factor(v)
    w_mm = jax.random.normal(kw, (m, m))
    rest = _wishart(kr, n - m, m)
    s = _wishart(ks, nk, m)
    j = _logit_factor(v, chol, block)
    qk = j @ s @ jax.random.normal(kz, (m, m)) @ j.T
    a = _attention(block, qk, n, m)
    xp = chol @ w_mm.T @ chol.T / math.sqrt(n)                 # X Pᵀ / n
    pp = chol @ (w_mm @ w_mm.T + rest @ rest.T) @ chol.T / n   # P Pᵀ / n
    lam, gamma = block.lam, block.gamma
    new = lam ** 2 * v + lam * gamma * (xp @ a.T + a @ xp.T) + gamma ** 2 * a @ pp @ a.T
    return (new + new.T) / 2


def explicit_layer(x: Float[Array, "m n"], key: PRNGKeyArray, block: ShapedBlock
                   ) -> Float[Array, "m n"]:
    """One block of the width-n network with its weights drawn (n × n_k queries and keys,
    n × n values): the reference for ``layer_covariance``."""
    m, n = x.shape
    kq, kk, kv = jax.random.split(key, 3)
    nk = block.head(n)
    xn = x if block.logits == "raw" else x * math.sqrt(n) / jnp.linalg.norm(
        x, axis=1, keepdims=True)
    q = xn @ jax.random.normal(kq, (n, nk)) / math.sqrt(n)
    k = xn @ jax.random.normal(kk, (n, nk)) / math.sqrt(n)
    a = _attention(block, q @ k.T, n, m)
    return block.lam * x + block.gamma * a @ (x @ jax.random.normal(kv, (n, n)) / math.sqrt(n))


def network_covariances(v0: Float[Array, "m m"], key: PRNGKeyArray, n: int, depth: int,
                        block: ShapedBlock, every: int = 1) -> Float[Array, "s m m"]:
    """V after every ``every``-th of ``depth`` blocks of the width-n network (exact law),
    starting from V₀ (the first row is V₀): one ``lax.scan``."""
    def step(v, k):
        v = layer_covariance(v, k, n, block)
        return v, v

    _, vs = jax.lax.scan(step, v0, jax.random.split(key, depth))
    return jnp.concatenate([v0[None], vs[every - 1::every]])


def _centred(v: Array) -> Array:
    m = v.shape[0]
    c = jnp.eye(m) - 1 / m
    return c @ v @ c


def sde_drift(v: Float[Array, "m m"], block: ShapedBlock) -> Float[Array, "m m"]:
    """b(V) of the shaped block's covariance SDE (module docstring); 0 for "softmax" is not
    defined (the unshaped attention has no such limit) and raises."""
    if block.attention != "shaped":
        raise ValueError("the covariance SDE is the limit of the shaped attention only")
    m = v.shape[0]
    t2 = block.tau0 ** 2
    k = _logit_covariance(v, block)
    kbar = _centred(k)
    c = jnp.diag(kbar) - jnp.trace(kbar) / m
    ez = jnp.diag(k)[:, None] * c[None, :] / t2
    return block.gamma ** 2 * ((ez @ v + v @ ez.T) / (2 * m)
                               + k * jnp.sum(v * kbar) / (m ** 2 * t2))


def sde_noise(v: Float[Array, "m m"], key: PRNGKeyArray, block: ShapedBlock
          ) -> Float[Array, "m m"]:
    """One draw of G (module docstring): Cov(G) = Σ(V), the SDE's diffusion."""
    m = v.shape[0]
    chol = _factor(v)
    x1, x2, x3 = jax.random.normal(key, (3, m, m))
    lam, gamma = block.lam, block.gamma
    mm = chol @ x1 @ chol.T
    e = chol @ (x2 + x2.T) @ chol.T / math.sqrt(2)
    j = _logit_factor(v, chol, block)
    y = j @ x3 @ j.T / block.tau0 @ (jnp.eye(m) - 1 / m)
    g = lam * gamma * (mm + mm.T) + gamma ** 2 * e + gamma ** 2 / m * (y @ v + v @ y.T)
    return (g + g.T) / 2


def sde_diffusion(v: Float[Array, "m m"], block: ShapedBlock) -> Float[Array, "m m m m"]:
    """Σ(V) as the tensor Σ[α, β, γ, δ] = Cov(dV_αβ, dV_γδ) / dt (module docstring)."""
    m = v.shape[0]
    lam, gamma = block.lam, block.gamma
    k = _logit_covariance(v, block)
    w = v @ _centred(k) @ v
    lin = jnp.einsum("ac,bd->abcd", v, v) + jnp.einsum("ad,bc->abcd", v, v)
    att = (jnp.einsum("ac,bd->abcd", k, w) + jnp.einsum("ad,bc->abcd", k, w)
           + jnp.einsum("bc,ad->abcd", k, w) + jnp.einsum("bd,ac->abcd", k, w))
    return (2 * lam ** 2 * gamma ** 2 + gamma ** 4) * lin + gamma ** 4 / (
        m ** 2 * block.tau0 ** 2) * att


def sde_covariances(v0: Float[Array, "m m"], key: PRNGKeyArray, time: float, steps: int,
                    block: ShapedBlock, every: int = 1) -> Float[Array, "s m m"]:
    """Euler–Maruyama for dV = b dt + Σ^(½) dB from V₀ to t = ``time`` in ``steps`` steps
    (dt = time/steps): V after every ``every``-th step (the first row is V₀)."""
    dt = time / steps

    def step(v, k):
        v = v + sde_drift(v, block) * dt + math.sqrt(dt) * sde_noise(v, k, block)
        return v, v

    _, vs = jax.lax.scan(step, v0, jax.random.split(key, steps))
    return jnp.concatenate([v0[None], vs[every - 1::every]])


def moment_match(v: Float[Array, "m m"], key: PRNGKeyArray, n: int, block: ShapedBlock,
                 draws: int) -> tuple[Array, Array]:
    """Monte-Carlo drift and diffusion of one width-n block at V: b̂ = n E[V' − V] and
    Σ̂ = n Cov(V' − V) (the tensor of ``sde_diffusion``), from ``draws`` layers
    (``layer_covariance``).

    The estimate of b̂ subtracts the control variate γ²(P Pᵀ/n − V), whose mean is 0 exactly
    (a Wishart's mean; not part of the derivation), and averages each draw with its
    sign-flipped values and queries (W_V → −W_V, W_Q → −W_Q, exact symmetries of the law)
    — without them the noise of b̂ grows like √n.
    """
    m = v.shape[0]
    chol = _factor(v)
    nk = block.head(n)
    lam, gamma = block.lam, block.gamma

    def one(k):
        kw, kr, ks, kz = jax.random.split(k, 4)
        w_mm = jax.random.normal(kw, (m, m))
        rest = _wishart(kr, n - m, m)
        j = _logit_factor(v, chol, block)
        qk = j @ _wishart(ks, nk, m) @ jax.random.normal(kz, (m, m)) @ j.T
        pp = chol @ (w_mm @ w_mm.T + rest @ rest.T) @ chol.T / n
        outs = []
        for sv in (1.0, -1.0):
            for sq in (1.0, -1.0):
                a = _attention(block, sq * qk, n, m)
                xp = sv * chol @ w_mm.T @ chol.T / math.sqrt(n)
                new = lam ** 2 * v + lam * gamma * (xp @ a.T + a @ xp.T) + \
                    gamma ** 2 * a @ pp @ a.T
                outs.append(new - v)
        delta = outs[0]
        controlled = sum(outs) / 4 - gamma ** 2 * (pp - v)
        return delta, controlled

    deltas, controlled = jax.jit(jax.vmap(one))(jax.random.split(key, draws))
    b = n * controlled.mean(0)
    centred = deltas - deltas.mean(0, keepdims=True)
    sigma = n * jnp.einsum("sab,scd->abcd", centred, centred) / (draws - 1)
    return b, sigma


def pair_correlation(v: Float[Array, "... m m"], a: int = 0, b: int = 1) -> Array:
    """ρ_ab = V_ab / √(V_aa V_bb)."""
    return v[..., a, b] / jnp.sqrt(v[..., a, a] * v[..., b, b])
