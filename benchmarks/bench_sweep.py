"""Sweep throughput (points per minute) on this machine: the same sweep of ``icl-gd``'s
quick mode over learning rates, run three ways into fresh store roots —

- one by one: each point's job trains in this process, one point after the other;
- packed (``--pack``): the points differ only in ``optim.lr``, so each job trains once as
  one vmapped program over every learning rate, and each point is measured alone;
- process pool (``--executor process``): every point's job in a pool of worker processes
  (each imports iclab and compiles its own program), then each point measured here.

Every way runs the whole pipeline (preflight, training, measurement, report); the wall
time includes compilation, which dominates small points.

Usage: python benchmarks/bench_sweep.py [--points 8] [--steps 300] [--workers 2]
"""

import argparse
import tempfile
import time
from pathlib import Path

from _timing import machine_line
from iclab.framework import Executor
from iclab.framework._sweep import Sweep, run_sweep


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(machine_line())
    lrs = ",".join(f"{1e-3 * 1.5 ** k:.6g}" for k in range(args.points))
    sweep = Sweep("icl-gd", quick=True, seeds=2, grid=(f"optim.lr={lrs}",),
                  base=(f"train.steps={args.steps}", "train.eval_every=100",
                        "eval.tasks=1000", "eval.ood_tasks=100"))
    print(f"sweep: icl-gd --quick, {args.points} learning rates, {args.steps} steps × 2 "
          f"seeds, batch 2048")
    ways = {"one by one": {}, "packed": {"pack": True},
            f"process pool ({args.workers})": {"executor": Executor("process",
                                                                    workers=args.workers)}}
    for name, options in ways.items():
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            _, states = run_sweep(sweep, Path(root), **options)
            seconds = time.perf_counter() - start
        assert states == ["complete"] * args.points, states
        print(f"{name:>20}: {seconds:7.1f} s, {60 * args.points / seconds:6.1f} points/min")


if __name__ == "__main__":
    main()
