"""Check a recipe's claims on your own model: a linear-attention layer written here.

    python examples/bring_your_own_model.py [OUT]

``icl-gd`` calls the factory as ``model(key, d=d, n_context=N)``. The model below is a
one-layer linear attention with merged key-query and value-projection matrices
(e_i ← e_i + W_PV (Σ_j e_j e_jᵀ) W_KQ e_i; the library's ``FullLSA`` is the same model with
L layers), written against the public interface
``iclab.models.LinearAttentionStack``: it supplies ``n_layers`` and ``layer_map``, and gets
the residual stream, per-layer read-outs and the forward pass from the interface, so the
recipe's instruments read it like the built-in models. The weight-matching claim applies to
models with ``LinearSelfAttention`` weights only and is left out.
"""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp

import iclab
from iclab.models import LinearAttentionStack


class MergedLSA(LinearAttentionStack):
    """One layer with dense W_KQ and W_PV."""

    w_kq: jax.Array
    w_pv: jax.Array
    n_layers: int = eqx.field(static=True)

    def __init__(self, dim: int, *, key, scale: float = 0.01):
        k1, k2 = jax.random.split(key)
        self.w_kq = scale * jax.random.normal(k1, (dim, dim))
        self.w_pv = scale * jax.random.normal(k2, (dim, dim))
        self.n_layers = 1

    def layer_map(self, layer: int, h):
        """Δh = h W_KQᵀ G W_PVᵀ, with G = Σ_j e_j e_jᵀ over the context (not the query)."""
        gram = h[:-1].T @ h[:-1]
        return self.w_kq.T @ gram @ self.w_pv.T


def factory(key, d: int, n_context: int) -> MergedLSA:
    return MergedLSA(d + 1, key=key)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "runs"
    tokens = jnp.ones((11, 11))
    assert factory(jax.random.key(0), 10, 10)(tokens).shape == ()
    run = iclab.run("icl-gd", quick=True, model=factory, out=out,
                    set=["eval.tasks=2000", "eval.ood_tasks=200", "train.seeds=1",
                         "train.batch_size=512"])
    print(run.claims[["id", "measured", "criterion", "passed"]].to_string(index=False))
    print("checks:", run.checks[["id", "passed"]].to_dict("records"))
