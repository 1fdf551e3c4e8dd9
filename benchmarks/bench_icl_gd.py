"""Speed and memory of the icl-gd training step, and of a vmapped 64-model sweep.

Prints:
  * the machine, and its measured float32 matmul FLOP/s (the roofline we compare with);
  * the icl-gd step (1-layer LSA, d = N = 10, batch 2048, data sampling inside the
    step): compile time, steps/s, XLA's FLOP count per step, achieved FLOP/s, and
    peak memory (RSS) of this process;
  * 64 models (batch 64 each) trained as one vmapped program, against 64 sequential
    runs: both steady state (one compiled program reused, the fairest case for the
    sequential sweep) and end to end (each sequential run compiled on its own, as 64
    separate training runs are);
  * wall time and peak RSS of ``iclab run icl-gd --quick`` in a subprocess.

Targets (2-core CPU, issue "Performance"): >= 1,600 steps/s for the icl-gd step, vmapped
sweep >= 20x faster than sequential, --quick peak RSS <= 1 GB. The reference code's speed
is not printed here: it was measured side by side on one machine (docs/results/benchmarks.md
gives it with that machine and date), and a figure from another host would mislead.

Usage: python benchmarks/bench_icl_gd.py [--steps 1000] [--sweep-steps 1000] [--no-quick]
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

from _timing import matmul_flops, rss_gb, step_flops
from iclab.engine import TrainConfig, Trainer
from iclab.recipes.icl_gd import experiment, full_config


def time_chunks(trainer: Trainer, state, length: int, repeats: int = 3):
    """Compile time of the chunk, then the best steady-state seconds per chunk."""
    start = time.perf_counter()
    state, losses = trainer.chunk(state, length)
    losses.block_until_ready()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, losses = trainer.chunk(state, length)
        losses.block_until_ready()
        times.append(time.perf_counter() - start)
    best = min(times)
    return first - best, best, state


def time_data_only(config, steps: int) -> float:
    """Seconds for ``steps`` batches of 2048 tasks → tokens, scanned inside jit."""
    from iclab.tasks import to_tokens

    def body(carry, i):
        batch = config.task.sample_batch(jax.random.fold_in(jax.random.key(0), i), 2048)
        return carry + jax.vmap(to_tokens)(batch).sum(), None

    run = jax.jit(lambda: jax.lax.scan(body, 0.0, jnp.arange(steps))[0])
    run().block_until_ready()
    start = time.perf_counter()
    run().block_until_ready()
    return time.perf_counter() - start


def bench_step(steps: int) -> None:
    config = full_config()
    trainer = Trainer(experiment(config)[0].problem, config.optim,
                      TrainConfig(steps=steps, batch_size=2048, seeds=1))
    state = trainer.init()
    flops = step_flops(trainer, state)
    compile_s, chunk_s, _ = time_chunks(trainer, state, steps)
    rate = steps / chunk_s
    peak = matmul_flops()
    data_s = time_data_only(config, steps)
    print("\n## icl-gd step (1 layer, batch 2048, data sampling included)")
    print(f"compile time            {compile_s:8.2f} s")
    print(f"steps/s                 {rate:8.1f}   (target >= 1600)")
    print(f"time per step           {1e3 / rate:8.3f} ms")
    print(f"XLA FLOPs per step      {flops / 1e6:8.1f} MFLOP")
    print(f"data sampling alone     {1e3 * data_s / steps:8.3f} ms/step "
          f"({data_s / chunk_s:.0%} of the step)")
    print(f"achieved                {flops * rate / 1e9:8.2f} GFLOP/s")
    print(f"matmul peak (1024^3)    {peak / 1e9:8.2f} GFLOP/s   -> {flops * rate / peak:.1%} of it")
    print(f"peak RSS (this process) {rss_gb():8.2f} GB")


def bench_sweep(steps: int, models: int = 64, batch: int = 64, e2e_sample: int = 8) -> None:
    config = full_config()
    problem = experiment(config)[0].problem
    print(f"\n## {models} models x batch {batch}, {steps} steps each")
    vmapped = Trainer(problem, config.optim, TrainConfig(steps=steps, batch_size=batch,
                                                         seeds=models))
    start = time.perf_counter()
    state = vmapped.init()
    compile_v, run_v, _ = time_chunks(vmapped, state, steps, repeats=1)
    total_v = time.perf_counter() - start - run_v  # init + compile + one run
    print(f"vmapped: compile {compile_v:.2f} s, {steps} steps {run_v:.2f} s "
          f"-> {models * steps / run_v:,.0f} model-steps/s; end to end {total_v:.2f} s")

    single = Trainer(problem, config.optim, TrainConfig(steps=steps, batch_size=batch, seeds=1))
    single.chunk(single.init(), steps)[1].block_until_ready()  # compile once
    start = time.perf_counter()
    for s in range(models):
        state, losses = single.chunk(single.init(first_seed=s), steps)
        losses.block_until_ready()
    seq_steady = time.perf_counter() - start
    print(f"sequential, one compiled program reused: {seq_steady:.2f} s "
          f"-> {models * steps / seq_steady:,.0f} model-steps/s; "
          f"vmapped is {seq_steady / run_v:.1f}x faster")

    start = time.perf_counter()
    for s in range(e2e_sample):
        trainer = Trainer(problem, config.optim,
                          TrainConfig(steps=steps, batch_size=batch, seeds=1, seed=s))
        state, losses = trainer.chunk(trainer.init(), steps)
        losses.block_until_ready()
    per_run = (time.perf_counter() - start) / e2e_sample
    seq_e2e = per_run * models
    print(f"sequential, separate runs (compile each): {per_run:.2f} s per run "
          f"(mean of {e2e_sample}) -> {seq_e2e:.1f} s for {models}; "
          f"vmapped end to end is {seq_e2e / total_v:.1f}x faster (target >= 20x)")


def bench_quick() -> None:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "iclab.cli", "run", "icl-gd", "--quick",
                                 "--out", out], capture_output=True, text=True,
                                env={**os.environ, "COLUMNS": "200"})
        wall = time.perf_counter() - start
    print("\n## iclab run icl-gd --quick (subprocess)")
    print(f"exit code {result.returncode}, wall time {wall:.1f} s, "
          f"peak RSS {rss_gb(resource.RUSAGE_CHILDREN):.2f} GB (target <= 1 GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--sweep-steps", type=int, default=1000)
    parser.add_argument("--no-quick", action="store_true")
    args = parser.parse_args()
    print("# iclab benchmark: icl-gd")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, {platform.processor() or '?'}; "
          f"python {platform.python_version()}; jax {jax.__version__} on "
          f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind})")
    bench_step(args.steps)
    bench_sweep(args.sweep_steps)
    if not args.no_quick:
        bench_quick()


if __name__ == "__main__":
    main()
