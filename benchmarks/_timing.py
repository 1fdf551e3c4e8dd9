"""Shared timing helper of the benchmark scripts (run as ``python benchmarks/<script>.py``,
so this directory is on ``sys.path``)."""

import os
import platform
import time

import jax


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
