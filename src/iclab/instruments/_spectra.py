"""Spectra of weight matrices and of factor products: ranks, norms, balancedness.

For attention, the products that matter per head are W_Kᵀ W_Q (the logits' bilinear
form) and W_O W_V (value → output); both have rank ≤ d_head. Weight decay on the factors
of M = A Bᵀ acts on M as a nuclear-norm penalty once the factors are balanced
(AᵀA = BᵀB): ‖M‖_* = min_{ABᵀ=M} ½(‖A‖_F² + ‖B‖_F²).

References:
    Kobayashi, Akram, von Oswald. "Weight decay induces low-rank attention layers",
    NeurIPS 2024.
    Roy, Vetterli. "The effective rank: a measure of effective dimensionality", EUSIPCO
    2007.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def singular_value_metrics(m: Float[Array, "a b"], thresholds: tuple[float, ...] = (1e-2, 1e-3),
                           energy: float = 0.99) -> dict[str, Array]:
    """Rank and norm summaries of one matrix from its singular values s₁ ≥ s₂ ≥ …:

    - ``rank@τ`` (one per threshold τ): #{i : s_i > τ s₁}, the numerical rank;
    - ``energy_rank``: the smallest k with Σ_{i≤k} s_i² ≥ ``energy`` Σ s_i²;
    - ``stable_rank``: ‖M‖_F² / ‖M‖₂² = Σ s_i² / s₁²;
    - ``effective_rank``: exp(−Σ p_i log p_i), p_i = s_i / Σ s_j (Roy & Vetterli);
    - ``spectral``, ``frobenius``, ``nuclear``: ‖M‖₂, ‖M‖_F, ‖M‖_*.

    A zero matrix has every rank 0.

    Examples:
        >>> import jax.numpy as jnp
        >>> m = singular_value_metrics(jnp.diag(jnp.array([3.0, 1.0, 0.0])))
        >>> float(m["rank@0.01"]), float(m["stable_rank"]), float(m["nuclear"])
        (2.0, 1.1111111640930176, 4.0)
    """
    s = jnp.linalg.svd(m, compute_uv=False)
    top = s[0]
    total = jnp.sum(s)
    squares = jnp.sum(s**2)
    p = jnp.where(total > 0, s / jnp.where(total > 0, total, 1.0), 0.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    cumulative = jnp.cumsum(s**2)
    out = {f"rank@{t:g}": jnp.sum(s > t * top).astype(float) for t in thresholds}
    out["energy_rank"] = jnp.where(squares > 0, jnp.sum(cumulative < energy * squares) + 1.0,
                                   0.0)
    out["stable_rank"] = jnp.where(top > 0, squares / jnp.where(top > 0, top, 1.0) ** 2, 0.0)
    out["effective_rank"] = jnp.where(total > 0, jnp.exp(entropy), 0.0)
    out["spectral"], out["frobenius"], out["nuclear"] = top, jnp.sqrt(squares), total
    return out


def factor_metrics(a: Float[Array, "d r"], b: Float[Array, "e r"]) -> dict[str, Array]:
    """Weight-decay diagnostics of a factorised matrix M = A Bᵀ:

    - ``nuclear_over_l2``: ‖A Bᵀ‖_* / (½(‖A‖_F² + ‖B‖_F²)) ≤ 1, with equality iff the
      factors are balanced; weight decay drives it to 1;
    - ``imbalance``: ‖AᵀA − BᵀB‖_F, and ``imbalance_rel`` the same over
      ½(‖AᵀA‖_F + ‖BᵀB‖_F). Under gradient flow on L(ABᵀ) + (λ/2)(‖A‖² + ‖B‖²) the
      imbalance decays as e^{−2λt} (L(ABᵀ) alone conserves it).

    For one attention head with row-major projections (k = W_K x, W_K ∈ R^{d_h×d}):
    W_Kᵀ W_Q is A = W_Kᵀ, B = W_Qᵀ; W_O W_V is A = W_O, B = W_Vᵀ.

    Examples:
        >>> import jax.numpy as jnp
        >>> a = jnp.diag(jnp.array([2.0, 1.0]))
        >>> m = factor_metrics(a, a)  # balanced: A = B
        >>> float(m["nuclear_over_l2"]), float(m["imbalance"])
        (1.0, 0.0)
    """
    l2 = 0.5 * (jnp.sum(a**2) + jnp.sum(b**2))
    nuclear = jnp.sum(jnp.linalg.svd(a @ b.T, compute_uv=False))
    gram_a, gram_b = a.T @ a, b.T @ b
    imbalance = jnp.linalg.norm(gram_a - gram_b)
    scale = 0.5 * (jnp.linalg.norm(gram_a) + jnp.linalg.norm(gram_b))
    return {"nuclear_over_l2": jnp.where(l2 > 0, nuclear / jnp.where(l2 > 0, l2, 1.0), 1.0),
            "imbalance": imbalance,
            "imbalance_rel": jnp.where(scale > 0, imbalance / jnp.where(scale > 0, scale, 1.0),
                                       0.0)}


def spectral_norm(m: Float[Array, "a b"], u: Float[Array, " b"] | None = None,
                  iters: int = 20) -> tuple[Array, Array]:
    """‖M‖₂ by power iteration on MᵀM, warm-started from ``u`` (default: all ones).

        v ← M u / ‖M u‖,  u ← Mᵀ v / ‖Mᵀ v‖,  σ = vᵀ M u.

    Returns ``(σ, u)``: pass ``u`` back in at the next call (σReparam keeps it between
    training steps, one iteration per step).

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(spectral_norm(jnp.array([[3.0, 0.0], [4.0, 5.0]]))[0]), 4)
        6.7082
    """
    u = jnp.ones(m.shape[1], m.dtype) if u is None else u
    u = u / jnp.linalg.norm(u)

    def step(u, _):
        v = m @ u
        v = v / jnp.linalg.norm(v)
        w = m.T @ v
        return w / jnp.linalg.norm(w), None

    u, _ = jax.lax.scan(step, u, None, length=iters)
    v = m @ u
    v = v / jnp.linalg.norm(v)
    return v @ m @ u, u


def head_products(model) -> list[dict[str, Array]]:
    """Per layer, the per-head products of a ``HeadWeightsModel``:

        "qk": W_Kᵀ W_Q (H, D_qk, D_qk), the logits' bilinear form: a_ij = s x_iᵀ (W_Kᵀ W_Q)ᵀ x_j
              with s the layer's logit scale;
        "ov": W_O W_V (H, D, D), value → output.

    Both have rank ≤ the head size.
    """
    from iclab.models import HeadWeightsModel, require

    require(model, HeadWeightsModel, "head_products")
    return [{"qk": jnp.einsum("hkd,hke->hde", w["k"], w["q"]),
             "ov": jnp.einsum("hdk,hke->hde", w["o"], w["v"]),
             "logit_scale": w["logit_scale"]} for w in model.head_weights()]


def head_spectra(model, initial=None, thresholds: tuple[float, ...] = (1e-2, 1e-3)
                 ) -> dict[str, Array]:
    """Spectral metrics of every head's W_Kᵀ W_Q and W_O W_V (``head_products``), each an
    array (layers, heads):

    - ``qk/{m}``, ``ov/{m}`` for every ``singular_value_metrics`` key m;
    - ``qk/sigma``: the logits' spectral norm σ_QK = s ‖W_Kᵀ W_Q‖₂ (with the logit scale s)
      — the quantity the attention-entropy bound decays in;
    - ``qk/nuclear_over_l2``, ``qk/imbalance_rel`` (factors A = W_Kᵀ, B = W_Qᵀ) and the
      same for ``ov`` (A = W_O, B = W_Vᵀ): ``factor_metrics``;
    - with ``initial`` (the model at initialisation): ``dqk/{m}``, ``dov/{m}`` of the
      change M − M₀ since then.

    References:
        Kobayashi, Akram, von Oswald, NeurIPS 2024 (ranks of W_Kᵀ W_Q and W_O W_V under
        weight decay); Zhai et al., ICML 2023 (σ_QK and entropy collapse).
    """
    from iclab.models import HeadWeightsModel, require

    require(model, HeadWeightsModel, "head_spectra")
    layers = head_products(model)
    weights = model.head_weights()
    start = head_products(initial) if initial is not None else None
    rows: dict[str, list] = {}

    def add(name, values):
        rows.setdefault(name, []).append(values)

    for i, (layer, w) in enumerate(zip(layers, weights, strict=True)):
        for product in ("qk", "ov"):
            metrics = jax.vmap(lambda m: singular_value_metrics(m, thresholds))(layer[product])
            for key, values in metrics.items():
                add(f"{product}/{key}", values)
            a, b = ((jnp.swapaxes(w["k"], 1, 2), jnp.swapaxes(w["q"], 1, 2)) if product == "qk"
                    else (w["o"], jnp.swapaxes(w["v"], 1, 2)))
            for key, values in jax.vmap(factor_metrics)(a, b).items():
                if key != "imbalance":
                    add(f"{product}/{key}", values)
            if start is not None:
                delta = layer[product] - start[i][product]
                for key, values in jax.vmap(lambda m: singular_value_metrics(m, thresholds)
                                            )(delta).items():
                    add(f"d{product}/{key}", values)
        add("qk/sigma", layer["logit_scale"] * rows["qk/spectral"][-1])
    return {name: jnp.stack(values) for name, values in rows.items()}
