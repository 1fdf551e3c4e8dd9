"""versatile-lt's 4-layer FULL stack (D = 11, 21 tokens, batch 512): loss and gradient
as the library computes it (per-sequence matmuls, vmapped: XLA batches 512 tiny dots)
against two rewrites of the same arithmetic without batched dots — the Gram matrix and
h M as broadcast products summed (batch leading), and the whole stack with the batch as
the minor axis. The three agree to float32 rounding; the script prints each one's time
per call next to the machine's matmul peak and the XLA FLOPs of the library's version.

Usage: python benchmarks/bench_lsa_layout.py [--repeats 50]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from _timing import machine_line, matmul_flops, timed
from iclab.models import FullLSA

B, T, D, L = 512, 21, 11, 4


def library_loss(model, tokens, y):
    return jnp.mean((jax.vmap(model)(tokens) - y) ** 2)


def summed_loss(model, tokens, y):
    """Gram = Σ_t c_t c_tᵀ and h M as broadcast products summed, per sequence."""
    def one(h):
        for layer in range(L):
            c = h[:-1]
            gram = (c[:, :, None] * c[:, None, :]).sum(0)
            m = model.q[layer].T @ gram @ model.p[layer].T
            h = h + (h[:, :, None] * m[None]).sum(1)
        return -h[-1, -1]
    return jnp.mean((jax.vmap(one)(tokens) - y) ** 2)


def batch_minor_loss(model, tokens, y):
    """The stack on (T, D, B) arrays: every product vectorised over the batch."""
    h = jnp.transpose(tokens, (1, 2, 0))
    for layer in range(L):
        c = h[:-1]
        gram = (c[:, :, None, :] * c[:, None, :, :]).sum(0)
        m = jnp.einsum("ki,kjb,lj->ilb", model.q[layer], gram, model.p[layer])
        h = h + (h[:, :, None, :] * m[None]).sum(1)
    return jnp.mean((-h[-1, -1] - y) ** 2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    print(machine_line())
    peak = matmul_flops()
    print(f"float32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    model = FullLSA.random(D, L, 0.01, key=jax.random.key(0))
    tokens = jax.random.normal(jax.random.key(1), (B, T, D))
    y = jax.random.normal(jax.random.key(2), (B,))
    values = {}
    for name, loss in (("library (vmapped dots)", library_loss),
                       ("summed products", summed_loss),
                       ("batch-minor products", batch_minor_loss)):
        grad = jax.jit(jax.value_and_grad(loss))
        values[name] = grad(model, tokens, y)
        seconds = timed(grad, model, tokens, y, repeats=args.repeats)
        line = f"{name:24s} {seconds * 1e3:8.2f} ms per loss and gradient"
        if name.startswith("library"):
            analysis = grad.lower(model, tokens, y).compile().cost_analysis()
            analysis = analysis[0] if isinstance(analysis, list) else analysis
            flops = float(analysis.get("flops", float("nan")))
            line += (f"  ({flops / 1e6:.1f} MFLOP: {flops / seconds / 1e9:.2f} GFLOP/s, "
                     f"{100 * flops / seconds / peak:.1f} % of the peak)")
        print(line)
    reference = values["library (vmapped dots)"]
    for value, grads in values.values():
        np.testing.assert_allclose(value, reference[0], rtol=1e-4)
        for mine, ref in ((grads.p, reference[1].p), (grads.q, reference[1].q)):
            np.testing.assert_allclose(mine, ref, atol=1e-4 * float(jnp.abs(ref).max()))
    print("all three agree (loss to 1e-4, gradients to 1e-4 of their largest entry)")


if __name__ == "__main__":
    main()
