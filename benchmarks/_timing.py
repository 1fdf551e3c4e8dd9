"""Shared timing helper of the benchmark scripts (run as ``python benchmarks/<script>.py``,
so this directory is on ``sys.path``)."""

import dataclasses
import functools
import os
import platform
import resource
import time

import equinox as eqx
import jax
import jax.numpy as jnp


def machine_line() -> str:
    """``machine: CPU, N cores, jax X (backend)`` for a benchmark's first line."""
    return (f"machine: {platform.processor() or platform.machine()}, "
            f"{len(os.sched_getaffinity(0))} cores, jax {jax.__version__} "
            f"({jax.default_backend()})")


def timed(fn, *args, repeats: int) -> float:
    """Mean seconds per call of ``fn(*args)`` over ``repeats`` calls, after one warm-up
    call (compilation) — every call waits for the result."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats


def rss_gb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def matmul_flops(n: int = 1024, repeats: int = 20) -> float:
    """Best float32 FLOP/s of an n×n×n matmul (2n³ FLOPs)."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    b = jax.random.normal(jax.random.key(1), (n, n))
    f = jax.jit(jnp.matmul)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def step_flops(trainer, state) -> float:
    """XLA's FLOP estimate of one training step (a chunk of length 1) of an
    ``iclab.engine.Trainer`` (all its vmapped seeds)."""
    with trainer.precision():
        compiled = jax.jit(trainer._run_chunk, static_argnums=1).lower(
            state, 1, trainer.member_data()).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis.get("flops", float("nan")))


def _param_count(job) -> int:
    model = eqx.filter_eval_shape(job.problem.init_model, jax.random.key(0))
    return sum(x.size for x in jax.tree.leaves(model) if isinstance(x, jax.ShapeDtypeStruct))


@functools.cache
def recipe_jobs(recipe: str, mode: str = "quick") -> tuple:
    """The jobs ``recipe`` trains in ``mode`` (``quick`` or ``full``)."""
    from iclab.framework import recipes
    from iclab.framework._run import build_jobs

    spec = recipes()[recipe]
    return tuple(build_jobs(spec, spec.quick() if mode == "quick" else spec.full()))


def costliest_job(recipe: str, mode: str = "quick", tag: str | None = None):
    """The job of ``recipe``'s ``mode`` with the most steps × batch × parameters (the
    one that dominates its time), or the job named ``tag``; None if it trains nothing.

    Raises:
        SystemExit: no job is named ``tag`` (the message lists the tags)."""
    jobs = recipe_jobs(recipe, mode)
    if tag is not None:
        named = [j for j in jobs if j.tag == tag]
        if not named:
            raise SystemExit(f"{recipe} ({mode}) has no job {tag!r}; its jobs: "
                             + ", ".join(j.tag for j in jobs))
        return named[0]
    if not jobs:
        return None
    return max(jobs, key=lambda j: j.train.steps * j.train.batch_size * _param_count(j))


def one_seed_trainer(job, **train):
    """An ``iclab.engine.Trainer`` of ``job`` with one seed, no learning-rate grid and no
    probes (``train`` overrides further fields of its ``TrainConfig``)."""
    from iclab.engine import Trainer

    config = dataclasses.replace(job.train, seeds=1, lr_grid=(),
                                 probes=dataclasses.replace(job.train.probes, every=0),
                                 **train)
    return Trainer(job.problem, job.optim, config)
