"""Where a recipe's jobs train: this process's threads, a pool of processes, a SLURM
cluster (through submitit) or a Ray cluster.

``local`` (the default) trains the jobs in this process, a few host threads at a time
(``iclab.engine.fit_concurrently``). Every other executor trains *shards* of the run's
jobs in other processes, possibly on other machines sharing the run folder's file system.
A shard is a few job tags. The process that trains it

1. rebuilds the run's recipe and config from the folder's ``config.json`` (as
   ``iclab run --resume`` does) and builds the jobs;
2. trains each of its jobs holding that job's lock (``lock-job-{tag}``), writing only that
   job's files: its metric parts ``{tag}-*.parquet`` and its checkpoint
   ``checkpoint-{tag}``; a job that has a checkpoint resumes from it.

The driver (``iclab run``) waits for the shards, then measures as a local run does: every
job restores its final checkpoint and trains no further, so a run's numbers do not depend
on where its jobs trained. A driver that exits early (``--no-wait``, a lost login node)
loses nothing: ``iclab run --resume RUN`` trains what is unfinished and measures.

SLURM jobs are submitted as one job array (``slurm_array_parallelism`` of them at a time);
a job preempted or stopped at its time limit is requeued by submitit and resumes from its
checkpoints (at most one evaluation interval is redone).
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from iclab._errors import ConfigError, check_positive_int

KINDS = ("local", "process", "slurm", "ray")
CLUSTERS = ("slurm", "local")


@dataclass(frozen=True)
class Executor:
    """Where and how a run's jobs train.

    Args:
        kind: ``local`` (this process's threads), ``process`` (a pool of processes on this
            machine), ``slurm`` (a submitit job array) or ``ray`` (Ray core tasks).
        workers: at most this many shards at a time (process: the pool's size, default the
            CPU cores; ray: default all; slurm: see ``array_parallelism``).
        jobs_per_shard: jobs trained one after another by one process (1: one process per
            job); fewer, longer shards pay the start-up (imports, evaluation data) less often.
        cluster: submitit's cluster for ``slurm``: ``slurm``, or ``local`` (subprocesses on
            this machine, for tests and debugging without a cluster).
        partition: SLURM partition (default: the cluster's).
        time_limit_min: SLURM time limit per job, minutes; a job that reaches it is requeued.
        gpus_per_job: GPUs per SLURM job or Ray task.
        cpus_per_job: CPU cores per SLURM job or Ray task.
        mem_gb: memory per SLURM job (default: the cluster's).
        array_parallelism: SLURM jobs of the array running at once.
        max_requeues: how often a SLURM job may be requeued after preemption or a time
            limit; Ray retries of a task whose worker died.
        ray_address: the Ray cluster to join (default: start a local instance).
        gpu_memory_fraction: ``XLA_PYTHON_CLIENT_MEM_FRACTION`` in each worker process, so
            that several share one GPU (default: JAX's).
        submitit_folder: where submitit keeps its job files and logs (default:
            ``RUN/executor``).
        wait: the driver waits for the jobs and measures; with False it submits and exits
            (``iclab run --resume RUN`` measures once they finished).
    """

    kind: Annotated[str, tyro.conf.arg(name="executor")] = "local"
    workers: int | None = None
    jobs_per_shard: int = 1
    cluster: str = "slurm"
    partition: str | None = None
    time_limit_min: int = 240
    gpus_per_job: int = 0
    cpus_per_job: int = 2
    mem_gb: int | None = None
    array_parallelism: int = 256
    max_requeues: int = 3
    ray_address: str | None = None
    gpu_memory_fraction: float | None = None
    submitit_folder: str | None = None
    wait: bool = True

    def check(self) -> None:
        """A ``ConfigError`` naming the first bad option, or the extra to install when the
        executor's package is missing."""
        if self.kind not in KINDS:
            raise ConfigError("--executor", self.kind, ", ".join(KINDS))
        if self.cluster not in CLUSTERS:
            raise ConfigError("--cluster", self.cluster, ", ".join(CLUSTERS))
        for key in ("jobs_per_shard", "time_limit_min", "cpus_per_job", "array_parallelism"):
            check_positive_int(f"--{key.replace('_', '-')}", getattr(self, key))
        for key in ("workers", "mem_gb"):
            if getattr(self, key) is not None:
                check_positive_int(f"--{key.replace('_', '-')}", getattr(self, key))
        for key in ("gpus_per_job", "max_requeues"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"--{key.replace('_', '-')}", value, "an integer >= 0")
        fraction = self.gpu_memory_fraction
        if fraction is not None and not (isinstance(fraction, int | float)
                                         and 0 < fraction <= 1):
            raise ConfigError("--gpu-memory-fraction", fraction, "a number in (0, 1]")
        if not self.wait and self.kind in ("local", "process"):
            raise ConfigError("--no-wait", self.kind, "--executor slurm or ray (the jobs "
                              "of local and process executors end with the driver)")
        import importlib.util

        module = {"slurm": "submitit", "ray": "ray"}.get(self.kind)
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError("--executor", self.kind, "", message=(
                f"--executor {self.kind} needs {module}: pip install 'iclab[{self.kind}]'"))


def shards(jobs: Sequence, jobs_per_shard: int) -> list[list[str]]:
    """The jobs' tags grouped into shards of ``jobs_per_shard``, the costliest first (so
    that the longest shards start first)."""
    order = sorted(jobs, key=lambda job: -job.cost)  # stable: ties keep the recipe's order
    tags = [job.tag for job in order]
    return [tags[i:i + jobs_per_shard] for i in range(0, len(tags), jobs_per_shard)]


def _checkpoint(job) -> str:
    return f"checkpoint-{job.tag}" if job.tag else "checkpoint"


def unfinished(run, jobs: Sequence) -> list:
    """The jobs whose checkpoint in ``run`` is missing or short of their last step (and
    not stopped early by the job's rule)."""
    done = run.finished_checkpoints({_checkpoint(job): job.train.steps for job in jobs})
    return [job for job in jobs if _checkpoint(job) not in done]


class ShardFailed(RuntimeError):
    """One or more shards failed; the message names them and their errors, ``by_run``
    maps each failed run's id to its shards' errors."""

    def __init__(self, message: str, by_run: dict[str, str] | None = None):
        super().__init__(message)
        self.by_run = by_run or {}


def train_shard(run_path: str, tags: Sequence[str]) -> dict[str, int]:
    """Train the jobs ``tags`` of the run folder ``run_path`` (each resumes from its
    checkpoint, holding its own lock); return each job's final step.

    This is what every executor but ``local`` runs in its worker processes. It needs
    nothing but the run folder: the recipe and config are rebuilt from ``config.json``.
    """
    from iclab.framework._run import configure_jax

    configure_jax()  # as ``iclab run``
    from iclab.config import from_dict, validate
    from iclab.engine import FitJob, fit_concurrently
    from iclab.framework._recipe import saved_recipe
    from iclab.framework._run import build_jobs
    from iclab.store import RunDir

    run = RunDir(run_path)
    saved = run.config()
    recipe = saved_recipe(saved)
    config = validate(from_dict(recipe.config_type, saved["config"]))
    by_tag = {job.tag: job for job in build_jobs(recipe, config, pack=bool(saved.get("pack")))}
    missing = [tag for tag in tags if tag not in by_tag]
    if missing:
        raise ValueError(f"run {run.run_id} has no jobs {missing} (its jobs: {list(by_tag)})")
    done = {}
    for tag in tags:
        job = by_tag[tag]
        with run.hold(f"lock-job-{tag}" if tag else "lock-job"):
            fit_job = FitJob(job.trainer(), job.eval_data, tag=tag, stop=job.stop,
                             cost=job.cost)
            state = fit_concurrently([fit_job], run=run, workers=1)[0]
        done[tag] = int(state.step[0])
    return done


def _worker_environment(executor: Executor) -> dict[str, str]:
    """The variables a worker process gets beyond the driver's: the driver's ``sys.path``
    (so that a recipe of your own that the driver imports, imports there too) and the GPU
    memory fraction."""
    import sys

    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    if executor.gpu_memory_fraction is not None:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{executor.gpu_memory_fraction:g}"
    return env


def dispatch(executor: Executor, run, jobs: Sequence, console=None) -> list[dict] | None:
    """Train the unfinished ``jobs`` of ``run`` on ``executor`` (not ``local``).

    Returns:
        One record per submitted shard ({tags, job_id}) when ``executor.wait`` is False
        (the jobs go on after the driver exits), else None once every shard finished.

    Raises:
        ShardFailed: a shard failed (the others ran to their end); its error is in the
            message, the full tracebacks in the executor's logs.
    """
    records = dispatch_many(executor, [(run, jobs)], console)
    return None if records is None else records.get(str(run.path), [])


def dispatch_many(executor: Executor, runs: Sequence[tuple], console=None
                  ) -> dict[str, list[dict]] | None:
    """``dispatch`` for several runs at once (a sweep's points): the unfinished jobs of
    every ``(run, jobs)`` pair go to one pool, one job array or one set of Ray tasks.

    Returns:
        {run path: its submitted shards' records} when ``executor.wait`` is False, else
        None once every shard finished.
    """
    work = [Work(run, list(jobs), shards(unfinished(run, jobs), executor.jobs_per_shard))
            for run, jobs in runs]
    work = [w for w in work if w.groups]
    if not work:
        return None
    if console is not None:
        n_jobs = sum(len(tags) for w in work for tags in w.groups)
        n_shards = sum(len(w.groups) for w in work)
        where = f" of {len(work)} runs" if len(work) > 1 else ""
        console.print(f"{n_jobs} job(s){where} in {n_shards} shard(s) on the "
                      f"{executor.kind} executor", highlight=False)
    if executor.kind == "process":
        return _process(executor, work, console)
    if executor.kind == "slurm":
        from iclab.framework._slurm import submit

        return submit(executor, work, console)
    if executor.kind == "ray":
        return _ray(executor, work, console)
    raise ValueError(f"dispatch is for executors other than local, got {executor.kind}")


@dataclass
class Work:
    """One run's part of a dispatch: the run, all its jobs, and its shards to train."""

    run: object
    jobs: list
    groups: list[list[str]]


def watch(work: Sequence[Work], pending, console=None, every: float = 1.0) -> None:
    """Show the jobs' progress (their checkpoints' steps) until ``pending()`` is False."""
    import time

    total = sum(job.train.steps for w in work for job in w.jobs)

    def done() -> int:
        count = 0
        for w in work:
            steps = w.run.checkpoint_steps()
            count += sum(min(steps.get(_checkpoint(job), 0), job.train.steps)
                         for job in w.jobs)
        return count

    if console is None:
        while pending():
            time.sleep(every)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} steps"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("jobs", total=total, completed=done())
        while pending():
            progress.update(task, completed=done())
            time.sleep(every)
        progress.update(task, completed=done())


def _raise_failures(failures: list[tuple[str, list[str], BaseException]]) -> None:
    if failures:
        from iclab.framework._run import one_line

        by_run: dict[str, str] = {}
        for run, tags, err in failures:
            text = f"shard {tags}: {one_line(err)}"
            by_run[run] = f"{by_run[run]}; {text}" if run in by_run else text
        lines = "; ".join(f"{run}: {text}" for run, text in by_run.items())
        raise ShardFailed(f"{len(failures)} shard(s) failed: {lines}", by_run)


def _process(executor: Executor, work: Sequence[Work], console):
    """Each shard as ``python -m iclab.framework._shard RUN TAG ...``, ``workers`` at a
    time; a shard's output goes to ``RUN/executor/shard-{i}.log``."""
    import subprocess
    import sys

    from iclab.engine import default_workers

    env = {**os.environ, **_worker_environment(executor)}
    waiting = [(w, i, tags) for w in work for i, tags in enumerate(w.groups)]
    workers = min(executor.workers or default_workers(), len(waiting))
    running: dict[int, tuple] = {}
    ended: list[tuple] = []

    def pending() -> bool:
        for key, (proc, log, item) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                ended.append((item, proc.returncode))
                del running[key]
        while waiting and len(running) < workers:
            item = waiting.pop(0)
            w, i, tags = item
            logs = w.run.path / "executor"  # each run its own logs (not --submitit-folder)
            logs.mkdir(parents=True, exist_ok=True)
            log = open(logs / f"shard-{i}.log", "w")  # noqa: SIM115 - closed when it ends
            command = [sys.executable, "-m", "iclab.framework._shard", str(w.run.path),
                       *[tag or "-" for tag in tags]]
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
            running[id(proc)] = (proc, log, item)
        return bool(running or waiting)

    try:
        watch(work, pending, console, every=0.2)
    except BaseException:
        for proc, log, _ in running.values():  # Ctrl-C: the shards stop at once (each
            proc.terminate()                   # has checkpointed at its last evaluation)
            proc.wait()
            log.close()
        raise
    failures = []
    for (w, i, tags), code in ended:
        if code != 0:
            path = w.run.path / "executor" / f"shard-{i}.log"
            text = path.read_text(errors="replace").strip().splitlines()
            last = text[-1] if text else f"exit code {code}"
            failures.append((w.run.run_id, tags, RuntimeError(f"{last} (log: {path})")))
    _raise_failures(failures)
    return None


def _ray(executor: Executor, work: Sequence[Work], console):
    import ray

    if not ray.is_initialized():
        ray.init(address=executor.ray_address, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    task = ray.remote(train_shard).options(
        num_cpus=executor.cpus_per_job, num_gpus=executor.gpus_per_job,
        max_retries=executor.max_requeues,
        runtime_env={"env_vars": _worker_environment(executor)})
    items = [(w, tags) for w in work for tags in w.groups]
    limit = len(items) if not executor.wait else (executor.workers or len(items))
    refs: dict[int, tuple] = {}
    started = 0

    def submit_more() -> None:
        nonlocal started
        while started < len(items) and sum(1 for r in refs.values() if r[1] is None) < limit:
            w, tags = items[started]
            refs[started] = (task.remote(str(w.run.path), tags), None)
            started += 1

    submit_more()
    if not executor.wait:
        out: dict[str, list[dict]] = {}
        for i, (ref, _) in refs.items():
            w, tags = items[i]
            out.setdefault(str(w.run.path), []).append({"tags": tags, "job_id": ref.hex()})
        return out

    def pending() -> bool:
        running = {ref: i for i, (ref, result) in refs.items() if result is None}
        if running:
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
            for ref in ready:
                try:
                    ray.get(ref)
                    refs[running[ref]] = (ref, "ok")
                except Exception as err:  # noqa: BLE001 - reported with its shard
                    refs[running[ref]] = (ref, err)
        submit_more()
        return any(result is None for _, result in refs.values())

    watch(work, pending, console)
    _raise_failures([(items[i][0].run.run_id, items[i][1], result)
                     for i, (_, result) in sorted(refs.items())
                     if isinstance(result, BaseException)])
    return None


def executor_folder(executor: Executor, run) -> Path:
    return Path(executor.submitit_folder) if executor.submitit_folder else run.path / "executor"
