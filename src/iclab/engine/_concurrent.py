"""Train several independent models at once, one host thread each.

A recipe often trains many small models (a grid of variants × depths). Each is one
jitted, vmapped-over-seeds XLA program, but programs this small leave most of a
multi-core CPU idle: XLA parallelises inside large operations only. JAX releases the
GIL while a program runs, so running the models' programs from a few host threads uses
the idle cores. On 2 cores, two 4-layer LSA trainings (compiled beforehand) run 2.0×
faster side by side than one after the other (``benchmarks/bench_concurrent.py``); whole
recipes gain 1.1–1.7×, less where the models are large enough for XLA to use every core.

Each model keeps its own key, data stream and checkpoint, so the numbers do not depend
on the number of workers, and an interrupted run resumes each model where it stopped.

Warning:
    Concurrent XLA:CPU programs share one intra-op thread pool. jaxlib 0.10's batched
    LAPACK kernels on CPU (QR, Cholesky, eigendecompositions, …) split their batch over
    that pool and block one of its threads until the pieces finish; two programs that
    reach such a kernel at once can leave every thread waiting (the ``mesa`` recipe's
    training hung so, in its samplers' QR, until ``iclab.tasks.haar_orthogonal`` replaced
    it). Keep batched ``jnp.linalg`` factorisations out of training steps that may run
    side by side. ``ICLAB_WORKERS=1`` trains one model at a time.
"""

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from iclab._errors import ConfigError
from iclab.engine._train import Trainer, TrainState


@dataclass(frozen=True)
class FitJob:
    """One model to train with ``Trainer.fit``.

    Args:
        trainer: the model's trainer.
        eval_data: passed to ``problem.evaluate`` at every evaluation.
        tag: names its metrics and checkpoint in the run folder (unique per run).
        label: its progress-bar text (default: the tag).
        stop: optional early-stopping rule (see ``Trainer.fit``).
        cost: relative cost (e.g. steps × batch × layers). Jobs start in decreasing cost,
            so that the longest do not run alone at the end.
    """

    trainer: Trainer
    eval_data: Any
    tag: str
    label: str = ""
    stop: Callable[[int, dict], bool] | None = None
    cost: float = 1.0


def default_workers() -> int:
    """Host threads for concurrent training: ``$ICLAB_WORKERS`` if set, else the CPU cores
    this process may use."""
    value = os.environ.get("ICLAB_WORKERS")
    if value is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise ConfigError("ICLAB_WORKERS", value, "a positive integer (host threads)")
    return int(value)


def map_concurrently(fn: Callable[[Any], Any], items: Sequence, workers: int | None = None
                     ) -> list:
    """``[fn(item) for item in items]``, ``workers`` host threads at a time: for independent
    JAX computations outside training (a recipe's baseline fits), which release the GIL
    while their programs run. Results come in the order of ``items``; the first exception
    is raised. The numbers are those of the serial loop.

    Args:
        fn: applied to each item.
        items: the inputs.
        workers: host threads (default ``default_workers()``; 1: the serial loop).

    Example:
        >>> import jax.numpy as jnp
        >>> from iclab.engine import map_concurrently
        >>> map_concurrently(lambda n: float(jnp.arange(n).sum()), [3, 4, 5])
        [3.0, 6.0, 10.0]
    """
    items = list(items)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError("workers", workers, "a positive integer")
    if workers == 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def fit_concurrently(jobs: Sequence[FitJob], run=None, console=None,
                     workers: int | None = None) -> list[TrainState]:
    """Run ``Trainer.fit`` for every job, ``workers`` at a time; return the final states
    in the order of ``jobs``.

    With ``run`` (a ``RunDir``) each job writes its metrics and checkpoint under its tag
    and resumes from its checkpoint if one exists. With ``console`` one live display shows
    a progress bar per job. If a job fails (or the run is interrupted), the others stop
    at their next evaluation, just after checkpointing, jobs not yet started are dropped,
    and the exception is raised.
    """
    tags = [job.tag for job in jobs]
    if len(set(tags)) != len(tags):
        raise ValueError(f"FitJob tags must be unique, got {tags}")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError("workers", workers, "a positive integer")

    cancelled = threading.Event()

    def log(message: str) -> None:
        if console is not None:
            from rich.markup import escape

            console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)

    def fit(job: FitJob, add_bar) -> TrainState:
        progress = None
        if add_bar is not None:
            ckpt = f"checkpoint-{job.tag}" if job.tag else "checkpoint"
            start = run.checkpoint_step(ckpt) if run is not None else None
            progress = add_bar(job.label or job.tag, job.trainer.train.steps, start or 0)

        def stop(step: int, metrics: dict) -> bool:
            # An interrupt or a failed job stops the others at their next evaluation
            # (each has just checkpointed there), so a resumed run continues from it.
            return cancelled.is_set() or (job.stop is not None and job.stop(step, metrics))

        state = job.trainer.fit(job.eval_data, run=run, progress=progress, tag=job.tag,
                                stop=stop, log=log)
        step = int(state.step[0])
        if run is not None and job.stop is not None and not cancelled.is_set() \
                and step < job.trainer.train.steps:
            # its own rule stopped it: the checkpoint is final (no executor resends it)
            run.mark_stopped(step, f"checkpoint-{job.tag}" if job.tag else "checkpoint")
        return state

    def fit_all(add_bar) -> list[TrainState]:
        if workers == 1 or len(jobs) <= 1:  # (a recipe that trains nothing: no jobs)
            return [fit(job, add_bar) for job in jobs]
        pool = ThreadPoolExecutor(min(workers, len(jobs)))
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i].cost)  # stable: ties keep order
        futures = [None] * len(jobs)
        for i in order:
            futures[i] = pool.submit(fit, jobs[i], add_bar)
        for future in futures:  # a failed job stops the others at once
            future.add_done_callback(lambda f: f.cancelled() or f.exception() is None
                                     or cancelled.set())
        try:
            return [future.result() for future in futures]
        except BaseException:
            cancelled.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    if console is None:
        return fit_all(None)
    from iclab._console import training_progress_group

    with training_progress_group(console) as add_bar:
        return fit_all(add_bar)
