"""Packing a recipe's jobs over their data (``iclab run --pack``) on this machine:
``versatile-lt``'s full-mode noise settings (σ_max = 0..7, eight jobs per variant and
depth that differ only in σ_max), trained for a few steps two ways —

- unpacked: one program per job, the jobs side by side on the default host threads (what
  ``iclab run`` does);
- packed: one program per (variant, depth), its members every σ_max's seeds.

Both ways train the same models (to float32 rounding); the wall time includes compiling,
which packing does once per (variant, depth) instead of once per job. The full mode's 210
jobs become 63 programs (the categorical settings have a different noise distribution
and stay apart).

Usage: python benchmarks/bench_pack.py [--steps 500] [--batch 128] [--layers 1,4]
(the paper's batch, 2048, takes about 10 minutes on 2 cores)
"""

import argparse
import time

import jax

from _timing import machine_line
from iclab.framework import make_config, train_jobs
from iclab.framework._run import build_jobs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--layers", default="1,4")
    parser.add_argument("--variants", default="diag,full")
    args = parser.parse_args()
    jax.config.update("jax_default_matmul_precision", "highest")
    print(machine_line())
    recipe, config, _ = make_config("versatile-lt", seeds=2, overrides=(
        "categorical=", f"layers={args.layers}", f"variants={args.variants}",
        f"train.steps={args.steps}", f"train.eval_every={args.steps}",
        f"train.batch_size={args.batch}", "eval.tasks=2000"))
    print(f"versatile-lt: σ_max = {', '.join(f'{s:g}' for s in config.sigma_max)}; "
          f"variants {args.variants}, L = {args.layers}; {args.steps} steps × 2 seeds, "
          f"batch {args.batch}")
    results = {}
    for name, pack in (("unpacked", False), ("packed", True)):
        jobs = build_jobs(recipe, config, pack=pack)
        start = time.perf_counter()
        trained = train_jobs(jobs)
        seconds = time.perf_counter() - start
        results[name] = trained
        models = sum(len(job.models) for job in trained.values())
        print(f"{name:>9}: {len(jobs):3d} programs, {seconds:6.1f} s wall "
              f"({models * args.steps / seconds:8.0f} model-steps/s, compile included)")
    worst = max(abs(float(a) / float(b) - 1)
                for tag, job in results["packed"].items()
                for a, b in zip(job.final["test_loss"],
                                results["unpacked"][tag].final["test_loss"], strict=True))
    print(f"largest relative difference of a final test loss, packed vs unpacked: {worst:.1e}")


if __name__ == "__main__":
    main()
