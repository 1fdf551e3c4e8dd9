"""Shared timing helper of the benchmark scripts (run as ``python benchmarks/<script>.py``,
so this directory is on ``sys.path``)."""

import time

import jax


def timed(fn, *args, repeats: int) -> float:
    """Mean seconds per call of ``fn(*args)`` over ``repeats`` calls, after one warm-up
    call (compilation) — every call waits for the result."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats
