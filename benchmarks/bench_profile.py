"""Where a recipe's training step spends its time: for the costliest job of each recipe's
quick mode (most steps × batch × parameters; one seed), the jitted pieces of a step timed
on their own — sampling the batch, the loss (forward), loss and gradient (forward +
backward) — against the whole step as the engine runs it (a compiled 10-step chunk:
sampling, forward, backward, optimiser, divergence check). "optim+" is the whole step
minus the gradient and the sampling; it is negative where XLA fuses the pieces inside the
step (sampling into the forward pass), so that they cost less together than apart. Each
piece is compiled before it is timed.

Usage: python benchmarks/bench_profile.py [RECIPE ...] [--repeats 20]
"""

import argparse
import time

import equinox as eqx
import jax

from _timing import costliest_job, machine_line, matmul_flops, one_seed_trainer, timed

DEFAULT = ("icl-gd", "icl-gd-deep", "mesa", "function-classes", "versatile-lt",
           "induction-heads", "bursty-icl")


def profile(job, repeats: int) -> dict[str, float]:
    """Seconds per call of each piece (one seed, the job's batch size)."""
    trainer = one_seed_trainer(job, eval_every=10)
    problem, batch_size = job.problem, trainer.train.batch_size
    state = trainer.init()
    params = jax.tree.map(lambda a: a[0], state.params)
    sample = jax.jit(lambda key: problem.sample_batch(key, batch_size))
    batch = sample(jax.random.key(0))
    loss = jax.jit(lambda p, b: problem.loss(trainer.model(p), b))
    grad = jax.jit(jax.value_and_grad(lambda p, b: problem.loss(trainer.model(p), b)))
    program = trainer._program(state, 10)

    def chunk(s):
        return program(s)[0]

    out = {"sample": timed(sample, jax.random.key(1), repeats=repeats),
           "forward": timed(loss, params, batch, repeats=repeats),
           "forward+backward": timed(grad, params, batch, repeats=repeats)}
    fresh = [trainer.init() for _ in range(repeats + 1)]  # the chunk donates its state
    jax.block_until_ready(chunk(fresh[0]).params)
    start = time.perf_counter()
    for s in fresh[1:]:
        jax.block_until_ready(chunk(s).params)
    out["step"] = (time.perf_counter() - start) / repeats / 10
    out["params"] = sum(x.size for x in jax.tree.leaves(eqx.filter(params, eqx.is_array)))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("recipes", nargs="*", default=list(DEFAULT))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(machine_line())
    print(f"float32 matmul peak (1024³): {matmul_flops() / 1e9:.1f} GFLOP/s")
    print(f"{'recipe / job':>34} {'batch':>6} {'params':>9} {'step ms':>8} {'sample':>7} "
          f"{'fwd':>7} {'bwd':>7} {'optim+':>7}")
    for name in args.recipes:
        job = costliest_job(name)
        if job is None:
            print(f"{name:>34}  (trains nothing)")
            continue
        t = profile(job, args.repeats)
        step = t["step"]
        backward = t["forward+backward"] - t["forward"]
        rest = step - t["forward+backward"] - t["sample"]
        share = lambda x, step=step: f"{100 * x / step:6.0f}%"  # noqa: E731
        print(f"{name + ' / ' + (job.tag or 'model'):>34} {job.train.batch_size:>6} "
              f"{t['params']:>9} {1e3 * step:8.2f} {share(t['sample'])} "
              f"{share(t['forward'])} {share(backward)} {share(rest)}")


if __name__ == "__main__":
    main()
