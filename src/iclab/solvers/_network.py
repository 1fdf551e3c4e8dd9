"""A 2-layer ReLU network trained by Adam on the pairs seen so far — Garg et al.'s (2022)
"2-layer NN, GD" baseline for in-context regression of ReLU networks.

For prefix i the network f(x) = aᵀ ReLU(W x + b) + c (``hidden`` = 100 units) starts from
PyTorch's default initialisation (every entry ~ U(−1/√fan_in, 1/√fan_in)) and takes
``steps`` = 100 full-batch Adam steps (lr 5e-3, β = (0.9, 0.999), ε = 1e-8) on the mean
squared error of the first i − 1 pairs; ŷ_i = f(x_i) and ŷ_1 = 0. Garg et al. use batch
size 100, which is the full batch for prompts of ≤ 100 points.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def init_network(key: PRNGKeyArray, d: int, hidden: int = 100) -> dict[str, Array]:
    """PyTorch's ``nn.Linear`` default initialisation for d → hidden → 1."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    u = lambda k, shape, fan_in: jax.random.uniform(k, shape, minval=-1.0,
                                                    maxval=1.0) / math.sqrt(fan_in)
    return {"w": u(k1, (hidden, d), d), "b": u(k2, (hidden,), d),
            "a": u(k3, (hidden,), hidden), "c": u(k4, (), hidden)}


def network_forward(params: dict[str, Array], x: Float[Array, "n d"]) -> Float[Array, " n"]:
    return jax.nn.relu(x @ params["w"].T + params["b"][None, :]) @ params["a"] + params["c"]


def train_network(params: dict[str, Array], x: Float[Array, "n d"], y: Float[Array, " n"],
                  mask: Float[Array, " n"], steps: int = 100, lr: float = 5e-3
                  ) -> dict[str, Array]:
    """``steps`` Adam steps on Σ_j m_j (f(x_j) − y_j)² / Σ_j m_j (the pairs with m_j = 1)."""

    def loss(p):
        return jnp.sum(mask * (network_forward(p, x) - y) ** 2) / jnp.maximum(mask.sum(), 1.0)

    def adam(state, t):
        p, m, v = state
        g = jax.grad(loss)(p)
        m = jax.tree.map(lambda m_, g_: 0.9 * m_ + 0.1 * g_, m, g)
        v = jax.tree.map(lambda v_, g_: 0.999 * v_ + 0.001 * g_ * g_, v, g)
        step = lambda p_, m_, v_: p_ - lr * (m_ / (1 - 0.9 ** t)) / (
            jnp.sqrt(v_ / (1 - 0.999 ** t)) + 1e-8)
        return (jax.tree.map(step, p, m, v), m, v), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    (params, _, _), _ = jax.lax.scan(adam, (params, zeros, zeros),
                                     jnp.arange(1, steps + 1).astype(x.dtype))
    return params


def network_prefix_predictions(key: PRNGKeyArray, x: Float[Array, "k d"], y: Float[Array, " k"],
                               hidden: int = 100, steps: int = 100, lr: float = 5e-3
                               ) -> Float[Array, " k"]:
    """ŷ_i of a fresh network (key ``fold_in(key, i)``) trained on the first i − 1 pairs."""
    k = x.shape[0]
    masks = (jnp.arange(k)[None, :] < jnp.arange(k)[:, None]).astype(x.dtype)

    def one(i, mask):
        params = train_network(init_network(jax.random.fold_in(key, i), x.shape[1], hidden),
                               x, y, mask, steps, lr)
        return jnp.where(i == 0, 0.0, network_forward(params, x[i][None])[0])

    return jax.vmap(one)(jnp.arange(k), masks)
