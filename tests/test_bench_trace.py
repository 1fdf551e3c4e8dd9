"""The kernel-level profile of `benchmarks/bench_trace.py`: its HLO reading against FLOPs
counted by hand, its self times against nested events built by hand, and one traced
training chunk."""

import pathlib
import sys

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))
import bench_trace  # noqa: E402
from _timing import costliest_job  # noqa: E402


def _module(fn, *args):
    return bench_trace.parse_hlo(jax.jit(fn).lower(*args).compile().as_text())


@pytest.mark.parametrize("batched", [False, True])
def test_dot_flops_and_phases_match_the_hand_count(batched):
    """loss(W) = Σ tanh(x W) over a sampled x (B × n, W n × m): the forward product costs
    2Bnm FLOPs and the pullback's xᵀ ḡ another 2Bnm; the sampling costs none."""
    b, n, m = 64, 24, 40

    def loss(w, key):
        x = jax.random.normal(key, (b, n))
        if batched:  # one matrix-vector product per example, batched by vmap
            return jnp.tanh(jax.vmap(lambda v: v @ w)(x)).sum()
        return jnp.tanh(x @ w).sum()

    instructions, computations = _module(jax.value_and_grad(loss), jnp.ones((n, m)),
                                         jax.random.key(0))
    phase = bench_trace.phases(instructions, computations)
    entry = next(iter(computations.values()))  # the ENTRY computation's instructions
    by_phase = {}
    for name in entry:
        f = bench_trace.flops(name, instructions, computations)
        if f:
            assert bench_trace.kind(instructions[name], instructions, computations) == "dot"
            by_phase[phase[name]] = by_phase.get(phase[name], 0) + f
    assert by_phase == {"forward": 2 * b * n * m, "backward": 2 * b * n * m}
    assert "sample" in {phase[name] for name in entry}


def test_self_times_subtract_nested_events_per_thread():
    ev = lambda tid, ts, dur, op: {"tid": tid, "ts": ts, "dur": dur,  # noqa: E731
                                   "args": {"hlo_op": op}}
    events = [ev(1, 0, 100, "while"), ev(1, 10, 20, "a"), ev(1, 40, 30, "b"),
              ev(1, 45, 5, "c"), ev(1, 120, 7, "a"), ev(2, 12, 50, "b")]
    times, counts = bench_trace.self_times(events)
    assert times == {"while": 50, "a": 27, "b": 75, "c": 5}
    assert counts == {"while": 1, "a": 2, "b": 2, "c": 1}


def test_a_traced_training_chunk_has_every_phase():
    """The profiler's events name the compiled chunk's instructions, and the step's
    kernels come from sampling, forward, backward and the optimiser."""
    step, times, counts, instructions, computations = bench_trace.trace_job(
        costliest_job("icl-gd"), chunks=1)
    assert step > 0 and times and set(times) <= set(instructions)
    phase = bench_trace.phases(instructions, computations)
    seen = {phase[op] for op in times}
    assert {"sample", "forward", "backward", "optimiser"} <= seen
    assert "?" not in seen  # every kernel, the sampler loop's unlabelled copies included
    # a kernel's self time per step is at most the step's wall time times the threads
    assert sum(times.values()) < 1e6 * step * 4


def test_step_flops_covers_the_dots_of_one_step():
    """XLA's cost analysis of a one-step chunk (the loop body runs once) counts at least
    the FLOPs of the dots this module's HLO reading finds in it."""
    from _timing import one_seed_trainer, step_flops

    trainer = one_seed_trainer(costliest_job("icl-gd"), batch_size=64)
    state = trainer.init()
    with trainer.precision():
        compiled = trainer._chunk.lower(state, 1, trainer.member_data()).compile()
    instructions, computations = bench_trace.parse_hlo(compiled.as_text())
    dots = sum(bench_trace.flops(n, instructions, computations) for n in instructions
               if instructions[n].opcode in ("dot", "fusion")
               and not any(n in computations[c] for c in computations if c.startswith("fused")))
    assert 0 < dots <= step_flops(trainer, state)
