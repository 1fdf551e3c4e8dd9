"""σReparam: every linear map's weight reparametrised by its spectral norm.

    Ŵ = (γ / σ(W)) W,    σ(W) = vᵀ W u,  v = normalise(W u),

with a learnable scalar γ and a persistent estimate u of W's top right singular vector,
held constant in the gradient (so ∂σ/∂W = v uᵀ and the backward pass has the −γ W v uᵀ/σ²
term) and moved one power-iteration step, u ← normalise(Wᵀ normalise(W u)), after every
training step (``refresh``; the engine calls ``StatefulModel.refreshed``). u starts at the
exact top right singular vector of W₀. γ starts at 1 (Apple's Flax speech code: Ŵ₀ has
spectral norm 1) or at σ(W₀) (their PyTorch vision code: Ŵ₀ = W₀).

References:
    Zhai, Likhomanenko, Littwin, Busbridge, Ramapuram, Zhang, Gu, Susskind. "Stabilizing
    Transformer training by preventing attention entropy collapse", ICML 2023
    (apple/ml-sigma-reparam: ``SNLinear``, ``SNDense``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

GAMMA_INITS = ("one", "sigma0")


def _normalise(x: Array) -> Array:
    return x / (jnp.linalg.norm(x) + 1e-12)


class SpectralScale(eqx.Module):
    """σReparam's parameters for one matrix M (out, in): the learnable γ and the
    persistent vector u ∈ R^in (parameter role "state": never a gradient, only
    ``refresh``)."""

    gamma: Float[Array, ""]
    u: Float[Array, " n"]

    @classmethod
    def initialise(cls, matrix: Array, gamma_init: str = "sigma0") -> "SpectralScale":
        """u₀ = the top right singular vector of M (exact SVD); γ₀ = 1 or σ_max(M)."""
        _, s, vh = jnp.linalg.svd(matrix, full_matrices=False)
        gamma = s[0] if gamma_init == "sigma0" else jnp.ones((), matrix.dtype)
        return cls(jnp.asarray(gamma, matrix.dtype), vh[0])

    def sigma(self, matrix: Array) -> Array:
        """σ = vᵀ M u with u and v = normalise(M u) held constant in the gradient."""
        u = jax.lax.stop_gradient(self.u)
        v = jax.lax.stop_gradient(_normalise(matrix @ u))
        return v @ matrix @ u

    def apply(self, matrix: Array) -> Array:
        """Ŵ = γ M / σ(M)."""
        return self.gamma * matrix / self.sigma(matrix)

    def refresh(self, matrix: Array) -> "SpectralScale":
        """One power-iteration step on u (outside any gradient)."""
        matrix = jax.lax.stop_gradient(matrix)
        return SpectralScale(self.gamma, _normalise(matrix.T @ _normalise(matrix @ self.u)))


def reparametrised(linear: eqx.nn.Linear, scale: SpectralScale | None) -> eqx.nn.Linear:
    """An ``eqx.nn.Linear`` with its σReparam weight γ W / σ(W) (itself for ``scale`` None)."""
    if linear is None or scale is None:
        return linear
    return eqx.tree_at(lambda layer: layer.weight, linear, scale.apply(linear.weight))


def heads_in_matrix(w: Float[Array, "h k d"]) -> Float[Array, "hk d"]:
    """W_Q, W_K or W_V of all heads as one map R^D → R^{H·k}."""
    return w.reshape(-1, w.shape[-1])


def heads_out_matrix(w: Float[Array, "h d k"]) -> Float[Array, "d hk"]:
    """The output projection of all heads as one map R^{H·k} → R^D (Σ_h P_h o_h)."""
    return jnp.transpose(w, (1, 0, 2)).reshape(w.shape[1], -1)


def heads_out_array(matrix: Float[Array, "d hk"], heads: int) -> Float[Array, "h d k"]:
    """The inverse of ``heads_out_matrix``."""
    d = matrix.shape[0]
    return jnp.transpose(matrix.reshape(d, heads, -1), (1, 0, 2))
