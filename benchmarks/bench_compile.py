"""Compile time of one training chunk (10 steps, 2 seeds vmapped, data sampled inside) of
a deep GPT on function-class regression (d = 20, 40 points), against its depth; then its
steps per second, XLA's FLOPs per step, the achieved FLOP/s as a fraction of this
machine's float32 matmul peak (measured in the same run), and the peak RSS. Deep models'
compile time is what a sweep over depths pays per point.

XLA's cost analysis counts the body of a loop once: the GPT's blocks run as one
``lax.scan``, so its FLOPs per step, and the fraction of the peak, are lower bounds that
hardly grow with depth (a profile, not this count, is the issue "Performance"'s measure).

Usage: python benchmarks/bench_compile.py [--layers 4 8 16] [--width 64]
"""

import argparse
import time

import jax

from _timing import machine_line, matmul_flops, rss_gb, step_flops
from iclab.engine import OptimConfig, TrainConfig, Trainer, prompt_problem
from iclab.models import GPT, GPTConfig
from iclab.tasks import FunctionClassTask


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, nargs="*", default=[4, 8, 16])
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    print(machine_line())
    peak = matmul_flops()
    print(f"float32 matmul peak (1024³): {peak / 1e9:.1f} GFLOP/s")
    task = FunctionClassTask()
    for layers in args.layers:
        config = GPTConfig(width=args.width, layers=layers, heads=2).resolve(task.d)
        trainer = Trainer(prompt_problem(task, lambda k, c=config: GPT(c, key=k)),
                          OptimConfig(lr=1e-3),
                          TrainConfig(steps=10, batch_size=8, eval_every=10, seeds=2))
        state = trainer.init()  # (its own compilation, not timed)
        start = time.perf_counter()
        program = trainer._program(state, 10)
        compile_s = time.perf_counter() - start
        state = trainer.init()
        jax.block_until_ready(program(state)[0].params)  # warm
        state = trainer.init()
        start = time.perf_counter()
        for _ in range(5):
            state, _ = program(state)
        jax.block_until_ready(state.params)
        rate = 50 / (time.perf_counter() - start)
        flops = step_flops(trainer, trainer.init())
        print(f"GPT {layers:>3} blocks × width {args.width}: compile {compile_s:6.1f} s, "
              f"{rate:7.1f} steps/s (2 seeds, batch 8), ≥ {flops / 1e6:6.1f} MFLOP/step, "
              f"≥ {flops * rate / 1e9:5.2f} GFLOP/s = ≥ {flops * rate / peak:5.1%} of the "
              f"peak (scan bodies counted once), peak RSS {rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
