"""Compile time of one training chunk (10 steps, 2 seeds vmapped, data sampled inside) of
a deep GPT on function-class regression (d = 20, 40 points), against its depth, and its
steps per second once compiled. Deep models' compile time is what a sweep over depths
pays per point.

Usage: python benchmarks/bench_compile.py [--layers 4 8 16] [--width 64]
"""

import argparse
import time

import jax

from _timing import machine_line
from iclab.engine import OptimConfig, TrainConfig, Trainer, prompt_problem
from iclab.models import GPT, GPTConfig
from iclab.tasks import FunctionClassTask


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, nargs="*", default=[4, 8, 16])
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    print(machine_line())
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
        print(f"GPT {layers:>3} blocks × width {args.width}: compile {compile_s:6.1f} s, "
              f"{rate:7.1f} steps/s (2 seeds, batch 8)")


if __name__ == "__main__":
    main()
