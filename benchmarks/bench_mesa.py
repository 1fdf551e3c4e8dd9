"""Speed of the mesa layer's custom backward against plain autodiff through the scan, and
of one training step of each model of the ``mesa`` recipe.

Prints, for B sequences × H heads × T steps × key size d (default 256 × 2 × 50 × 20):
forward + backward time of ``mesa_attention`` (custom VJP: two forward Sherman–Morrison
scans, O(T·d) residuals) and of ``mesa_attention_forgetting`` with γ = 1 (autodiff through
the scan, which stores every R_t, O(T·d²)); then the value-and-grad time per step of the
recipe's models (constructed tokens, n_s = 10, T = 50) at the quick batch size.

Usage: python benchmarks/bench_mesa.py [--batch 256] [--repeats 10]
"""

import argparse
import functools
import platform

import jax
import jax.numpy as jnp

from _timing import timed
from iclab.engine import sequence_loss_per_step
from iclab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    mesa_attention,
    mesa_attention_forgetting,
)
from iclab.tasks import DynamicsTask, constructed_tokens


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--key-size", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    jax.config.update("jax_default_matmul_precision", "highest")
    print(f"machine: {platform.processor() or platform.machine()}, jax {jax.__version__}, "
          f"devices {jax.devices()}")
    n = args.batch * args.heads
    keys = jax.random.split(jax.random.key(0), 3)
    q, k, v = (0.3 * jax.random.normal(key, (n, args.length, args.key_size)) for key in keys)
    for name, layer in [("custom VJP", mesa_attention),
                        ("autodiff through the scan",
                         lambda q, k, v, lam: mesa_attention_forgetting(q, k, v, lam, 1.0))]:
        grad = jax.jit(jax.value_and_grad(
            lambda q, k, v, layer=layer: jax.vmap(layer, in_axes=(0, 0, 0, None))(
                q, k, v, jnp.asarray(1.0)).sum(), argnums=(0, 1, 2)))
        seconds = timed(grad, q, k, v, repeats=args.repeats)
        print(f"mesa layer fwd+bwd, {name}: {1e3 * seconds:.1f} ms "
              f"({args.batch} seq × {args.heads} heads × T {args.length} × d {args.key_size})")

    task = DynamicsTask()
    batch = task.sample_batch(jax.random.key(1), args.batch)
    masked = functools.partial(constructed_tokens, mask_query=True)
    for name, layers, heads, tokens in [("LSA-1", 1, 2, masked), ("mesa-1", 1, 2, masked),
                                        ("LSA-2", 2, 4, constructed_tokens),
                                        ("LSA-3", 3, 4, constructed_tokens)]:
        kind = "mesa" if name.startswith("mesa") else "linear"
        config = CausalTransformerConfig(layers=(kind,) * layers, heads=heads,
                                         clip=4.0).resolve(40, 10)
        model = CausalTransformer(config, key=jax.random.key(0))
        step = jax.jit(jax.value_and_grad(
            lambda m, tokens=tokens: sequence_loss_per_step(m, batch, tokens).mean()))
        seconds = timed(step, model, repeats=args.repeats)
        print(f"{name} value-and-grad, batch {args.batch}: {1e3 * seconds:.1f} ms")


if __name__ == "__main__":
    main()
