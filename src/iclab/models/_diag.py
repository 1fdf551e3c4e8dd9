"""The diagonal linear transformer (DIAG) and its GD++ restriction.

With P = diag(p_x I_d, p_y) and Q = diag(q_x I_d, q_y), one single-head LSA layer
on tokens e_i = (x_i, y_i), keys and values from the N context tokens only, is

    Δx_i = ω_xx Σ x_i + ω_xy α y_i,     Δy_i = ω_yx αᵀ x_i + ω_yy λ y_i,

with Σ = Σ_j x_j x_jᵀ, α = Σ_j y_j x_j, λ = Σ_j y_j² over the context and
ω_xx = p_x q_x, ω_xy = p_x q_y, ω_yx = p_y q_x, ω_yy = p_y q_y (Vladymyrov et al.
2024, §5). GD++ (von Oswald et al. 2023) keeps only ω_xx (input preconditioning
x ← (I + ω_xx Σ) x) and ω_yx (a GD step on the y-slot, ω_yx = −η/N); plain GD has
ω_xx = 0 as well. The read-out is ŷ = −y_query, as for ``LSATransformer``.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.models._interface import LinearAttentionStack

# Order of the four coefficients returned by ``DiagonalLSA.layer_omegas``.
OMEGA_NAMES = ("xx", "xy", "yx", "yy")


PARAMETRIZATIONS = ("omega", "pq", "gdpp")


class DiagonalLSA(LinearAttentionStack):
    """A stack of L DIAG layers.

    Args:
        coefficients: (L, 4) per-layer parameters, or (1, 4) shared by all L layers
            (recurrent). Their meaning depends on ``parametrization``:
            "omega": free (ω_xx, ω_xy, ω_yx, ω_yy), i.e. any sum of heads;
            "pq": (p_x, p_y, q_x, q_y) of one head, ω = (p_x q_x, p_x q_y, p_y q_x,
            p_y q_y), so ω_xx ω_yy = ω_xy ω_yx (the paper's single-head DIAG);
            "gdpp": (ω_xx, ·, ω_yx, ·) with ω_xy = ω_yy = 0 (GD++; the unused
            entries are masked, so training cannot move them).
        n_layers: L.
        parametrization: "omega", "pq" or "gdpp".
    """

    coefficients: Float[Array, "distinct 4"]
    n_layers: int = eqx.field(static=True)
    parametrization: str = eqx.field(static=True)

    def __init__(self, coefficients, n_layers: int, parametrization: str = "omega"):
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization {parametrization!r} not in {PARAMETRIZATIONS}")
        self.coefficients = jnp.asarray(coefficients, dtype=float)
        self.n_layers = n_layers
        self.parametrization = parametrization

    @classmethod
    def gd(cls, lr: float, n_context: int, steps: int) -> "DiagonalLSA":
        """Plain GD with step size η: ω_yx = −η/N, everything else 0 (shared by all layers)."""
        return cls(jnp.array([[0.0, 0.0, -lr / n_context, 0.0]]), steps, "gdpp")

    @classmethod
    def gdpp(cls, lr: float, gamma: float, n_context: int, steps: int) -> "DiagonalLSA":
        """GD++ as in the reference construction: ω_xx = −γ, ω_yx = −η/N (shared)."""
        return cls(jnp.array([[-gamma, 0.0, -lr / n_context, 0.0]]), steps, "gdpp")

    def layer_omegas(self, layer: int) -> Float[Array, " 4"]:
        """(ω_xx, ω_xy, ω_yx, ω_yy) of layer ``layer``."""
        c = self.coefficients[layer if self.coefficients.shape[0] > 1 else 0]
        if self.parametrization == "gdpp":
            return c * jnp.array([1.0, 0.0, 1.0, 0.0])
        if self.parametrization == "pq":
            p_x, p_y, q_x, q_y = c
            return jnp.stack([p_x * q_x, p_x * q_y, p_y * q_x, p_y * q_y])
        return c

    def layer_map(self, layer: int, h: Float[Array, "t dim"]) -> Float[Array, "dim dim"]:
        """M with Δh = h M for layer ``layer`` on tokens h: the context Gram matrix
        G = CᵀC = [[Σ, α], [αᵀ, λ]] scaled block-wise, M = G ⊙ [[ω_xx, ω_yx], [ω_xy, ω_yy]],
        gives both updates at once."""
        dim = h.shape[1]
        is_x = jnp.arange(dim) < dim - 1
        w_xx, w_xy, w_yx, w_yy = self.layer_omegas(layer)
        gram = h[:-1].T @ h[:-1]
        scale = jnp.where(is_x[:, None],
                          jnp.where(is_x[None, :], w_xx, w_yx),
                          jnp.where(is_x[None, :], w_xy, w_yy))
        return gram * scale



class FullLSA(LinearAttentionStack):
    """A stack of L single-head FULL layers in the (P, Q) parametrisation.

    Layer l maps every token e_i (keys and values from the N context tokens only) to

        e_i ← e_i + P_l (Σ_j e_j e_jᵀ) Q_l e_i,

    with dense P_l = W_P W_V and Q_l = W_Kᵀ W_Q ∈ R^{D×D} as free parameters (Vladymyrov
    et al. 2024, §2.1: "FULL"). Restricting P and Q to diag(p_x I, p_y), diag(q_x I, q_y)
    gives ``DiagonalLSA`` with ``parametrization="pq"``. Unlike ``LSATransformer`` (four
    factors W_Q, W_K, W_V, W_P per head), the output is bilinear in (P_l, Q_l).

    Args:
        p, q: (L, D, D) per-layer matrices.
    """

    p: Float[Array, "layers dim dim"]
    q: Float[Array, "layers dim dim"]

    def __init__(self, p, q):
        self.p, self.q = jnp.asarray(p, dtype=float), jnp.asarray(q, dtype=float)
        if self.p.ndim != 3 or self.p.shape != self.q.shape or self.p.shape[1] != self.p.shape[2]:
            raise ValueError(f"p and q must both have shape (L, D, D), got {self.p.shape} "
                             f"and {self.q.shape}")

    @classmethod
    def random(cls, dim: int, n_layers: int, init_std: float, *, key) -> "FullLSA":
        """Every entry of every P_l, Q_l drawn i.i.d. from N(0, init_std²)."""
        import jax

        kp, kq = jax.random.split(key)
        shape = (n_layers, dim, dim)
        return cls(init_std * jax.random.normal(kp, shape), init_std * jax.random.normal(kq, shape))

    @property
    def n_layers(self) -> int:
        return self.p.shape[0]

    def layer_map(self, layer: int, h: Float[Array, "t dim"]) -> Float[Array, "dim dim"]:
        """M with Δh = h M: the row form of e_i ← e_i + P G Q e_i is h ← h + h Qᵀ G Pᵀ
        (G = Σ_j e_j e_jᵀ over the context is symmetric)."""
        gram = h[:-1].T @ h[:-1]
        return self.q[layer].T @ gram @ self.p[layer].T
