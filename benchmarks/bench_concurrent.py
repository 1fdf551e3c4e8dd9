"""Wall time of training several small models one after the other vs side by side
(``engine.fit_concurrently``, one host thread per model).

The models are ``versatile-lt``'s: FULL and DIAG linear transformers with L layers on
σ_max = 5 regression, 2 seeds at batch 512. Each trainer is compiled once before timing,
and the same trained parameters come out either way (checked here too).

Usage: python benchmarks/bench_concurrent.py [--layers 4] [--steps 1000] [--workers 2]
"""

import argparse
import time

import jax
import numpy as np

from _timing import machine_line
from iclab.engine import FitJob, Trainer, fit_concurrently, regression_problem
from iclab.recipes.versatile_lt import make_model, quick_config


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(machine_line())
    config = quick_config()
    task = config.task_for(5.0)
    train = config.train.__class__(**{**config.train.__dict__, "steps": args.steps,
                                      "eval_every": args.steps // 2})
    eval_batch = task.sample_batch(jax.random.key(5), 2000)
    trainers = [Trainer(regression_problem(
        task, lambda key, v=v: make_model(v, args.layers, task.d + 1, key)), config.optim, train)
        for v in ("full", "diag")]
    jobs = [FitJob(t, eval_batch, tag=f"m{i}") for i, t in enumerate(trainers)]
    for trainer in trainers:  # compile outside the timing
        jax.block_until_ready(trainer.chunk(trainer.init(), train.eval_every)[0].params)
        trainer.evaluate(trainer.init(), eval_batch)
    timings, params = {}, {}
    for workers in (1, args.workers):
        start = time.perf_counter()
        states = fit_concurrently(jobs, workers=workers)
        jax.block_until_ready([s.params for s in states])
        timings[workers] = time.perf_counter() - start
        params[workers] = [jax.tree.leaves(s.params) for s in states]
        print(f"{len(jobs)} models × {args.steps} steps (L = {args.layers}), workers = "
              f"{workers}: {timings[workers]:.1f} s")
    same = all(np.array_equal(a, b) for pa, pb in zip(params[1], params[args.workers],
                                                      strict=True)
               for a, b in zip(pa, pb, strict=True))
    print(f"speed-up {timings[1] / timings[args.workers]:.2f}×; identical parameters: {same}")


if __name__ == "__main__":
    main()
