"""The ``slurm`` executor: a run's shards as one submitit job array.

Imported only for ``--executor slurm`` (the ``slurm`` extra installs submitit).
"""

import os

import submitit

from iclab.framework._executors import (
    Executor,
    _raise_failures,
    _worker_environment,
    executor_folder,
    train_shard,
    watch,
)


class ShardTask(submitit.helpers.Checkpointable):
    """One shard, requeued by submitit when SLURM preempts it or it reaches its time limit
    (``Checkpointable``: the requeued job calls it again with the same arguments, and
    every job resumes from its checkpoint in the run folder)."""

    def __call__(self, run_path: str, tags: list[str], env: dict[str, str]) -> dict[str, int]:
        import sys

        os.environ.update(env)
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p not in sys.path]
        sys.path[:0] = extra  # the driver's: a recipe of your own imports here too
        return train_shard(run_path, tags)


def _alive(cluster: str, folder, job_id: str):
    """A job of an earlier submission that is still pending or running, as an object with
    ``done()``; None when it ended (or cannot be found)."""
    if cluster == "local":  # submitit's local job id is its controller's pid
        try:
            os.kill(int(job_id), 0)
        except (OSError, ValueError):
            return None

        class _Pid:
            def done(self) -> bool:
                try:
                    os.kill(int(job_id), 0)
                    return False
                except OSError:
                    return True

        return _Pid()
    job = submitit.SlurmJob(folder=folder, job_id=job_id)
    return None if job.done(force_check=True) else job


def _earlier(executor: Executor, run, folder) -> list[tuple[dict, object]]:
    """The jobs of this run's earlier submission (``RUN/executor.json``) still pending or
    running."""
    import json

    path = run.path / "executor.json"
    if not path.exists():
        return []
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if before.get("cluster") != executor.cluster:
        return []
    alive = []
    for record in before.get("jobs", []):
        job = _alive(executor.cluster, before.get("folder", folder), record["job_id"])
        if job is not None:
            alive.append((record, job))
    return alive


def submit(executor: Executor, work, console):
    """Submit every run's shards as one job array, except the shards that an earlier
    submission of a run (``RUN/executor.json``) still has pending or running: those are
    waited for, not submitted twice. Wait for every job unless ``executor.wait`` is False.

    Returns {run path: its jobs' records ({tags, job_id})} when not waiting, else None.
    """
    from iclab.framework._executors import ShardFailed, unfinished

    plans = []
    for w in work:
        folder = executor_folder(executor, w.run)
        earlier = _earlier(executor, w.run, folder)
        running = {tag for record, _ in earlier for tag in record["tags"]}
        groups = [[t for t in tags if t not in running] for tags in w.groups]
        plans.append((w, folder, earlier, [tags for tags in groups if tags]))
    env = _worker_environment(executor)
    submitted = {}  # id(w) → [(tags, job)]
    by_folder: dict[str, list] = {}
    for w, folder, _, groups in plans:
        by_folder.setdefault(str(folder), []).append((w, groups))
    for folder, items in by_folder.items():  # one array per submitit folder
        if not any(groups for _, groups in items):
            continue
        ex = submitit.AutoExecutor(folder=folder, cluster=executor.cluster,
                                   slurm_max_num_timeout=executor.max_requeues)
        params = {"timeout_min": executor.time_limit_min,
                  "cpus_per_task": executor.cpus_per_job,
                  "gpus_per_node": executor.gpus_per_job,
                  "name": f"iclab-{items[0][0].run.run_id}",
                  "slurm_array_parallelism": executor.array_parallelism}
        if executor.partition is not None:
            params["slurm_partition"] = executor.partition
        if executor.mem_gb is not None:
            params["mem_gb"] = executor.mem_gb
        ex.update_parameters(**params)
        with ex.batch():  # one job array
            for w, groups in items:
                submitted[id(w)] = [(tags, ex.submit(ShardTask(), str(w.run.path), tags, env))
                                    for tags in groups]
    out, waiting, n_new, n_old = {}, [], 0, 0
    for w, folder, earlier, _ in plans:
        new = submitted.get(id(w), [])
        records = [record for record, _ in earlier] + [
            {"tags": tags, "job_id": str(job.job_id)} for tags, job in new]
        w.run.write_json("executor.json", {"kind": "slurm", "cluster": executor.cluster,
                                           "folder": str(folder), "jobs": records})
        out[str(w.run.path)] = records
        waiting += [job for _, job in earlier] + [job for _, job in new]
        n_new, n_old = n_new + len(new), n_old + len(earlier)
    if console is not None:
        console.print(f"submitted {n_new} job(s)"
                      f"{f'; {n_old} earlier one(s) still running' if n_old else ''}"
                      f"; logs in {plans[0][1]}{' …' if len(by_folder) > 1 else ''}",
                      highlight=False)
    if not executor.wait:
        return out
    watch(work, lambda: not all(job.done() for job in waiting), console)
    failures = []
    for w, _, _, _ in plans:
        for tags, job in submitted.get(id(w), []):
            try:
                job.result()
            except Exception as err:  # noqa: BLE001 - reported with its shard
                failures.append((w.run.run_id, tags, err))
    _raise_failures(failures)
    left = [(w.run.run_id, job.tag) for w in work for job in unfinished(w.run, w.jobs)]
    if left:
        raise ShardFailed(f"jobs {left} ended unfinished (an earlier submission's job "
                          f"stopped early?); see the logs in {plans[0][1]}")
    return None
