"""Cost of the disentangled-transformer experiments of ``induction-heads``.

Prints (1) the time of one population gradient step on the 19 coordinates for each N —
the emergence-law runs take t_ICL ≈ 1.7 N^1.7 such steps at lr 1, so this sets how far
N can go on a machine — and (2) one full-model (W¹, W², W³) float64 gradient step on the
symmetry-closed population of the subspace check (N = 3, D = 8, 12,288 sequences).

Usage: python benchmarks/bench_disentangled.py [--n 8,16,32,64,128] [--repeats 5]
"""

import argparse
import platform

import jax
import jax.numpy as jnp

from _timing import timed
from iclab.models import DisentangledCoordinates, DisentangledTransformer, pairs_population_loss
from iclab.tasks import OrthonormalPairsTask, finite_symmetry_orbit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", default="8,16,32,64,128")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    jax.config.update("jax_default_matmul_precision", "highest")
    print(f"machine: {platform.processor() or platform.machine()}, jax {jax.__version__}, "
          f"devices {jax.devices()}")
    for n in (int(v) for v in args.n.split(",")):
        task = OrthonormalPairsTask(n_pairs=n)
        grad = jax.jit(jax.grad(lambda c, task=task: pairs_population_loss(c, task)))
        seconds = timed(grad, DisentangledCoordinates(task.width), repeats=args.repeats)
        print(f"N = {n:4d} (D = {task.width}): population gradient on the 19 coordinates "
              f"{1e3 * seconds:.2f} ms")
    with jax.enable_x64(True):
        task = OrthonormalPairsTask(n_pairs=3)
        orbits = [finite_symmetry_orbit(task, task.canonical(k)) for k in range(3)]
        tokens = jnp.concatenate([o.tokens for o in orbits])
        targets = jnp.concatenate([o.target for o in orbits])
        loss = lambda m: 0.5 * jnp.sum((jax.vmap(m)(tokens) - targets) ** 2, -1).mean()
        seconds = timed(jax.jit(jax.grad(loss)), DisentangledTransformer(task.width),
                        repeats=args.repeats)
        print(f"full model, float64, {tokens.shape[0]} sequences: {1e3 * seconds:.1f} ms "
              "per gradient")


if __name__ == "__main__":
    main()
