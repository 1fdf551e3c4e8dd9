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


def submit(executor: Executor, run, groups: list[list[str]], jobs, console):
    """Submit ``groups`` as one job array; wait for it unless ``executor.wait`` is False.

    Returns the submitted jobs' records ({tags, job_id}) when not waiting, else None.
    """
    folder = executor_folder(executor, run)
    ex = submitit.AutoExecutor(folder=folder, cluster=executor.cluster,
                               slurm_max_num_timeout=executor.max_requeues)
    params = {"timeout_min": executor.time_limit_min, "cpus_per_task": executor.cpus_per_job,
              "gpus_per_node": executor.gpus_per_job, "name": f"iclab-{run.run_id}",
              "slurm_array_parallelism": executor.array_parallelism}
    if executor.partition is not None:
        params["slurm_partition"] = executor.partition
    if executor.mem_gb is not None:
        params["mem_gb"] = executor.mem_gb
    ex.update_parameters(**params)
    env = _worker_environment(executor)
    with ex.batch():  # one job array
        submitted = [ex.submit(ShardTask(), str(run.path), tags, env) for tags in groups]
    records = [{"tags": tags, "job_id": str(job.job_id)}
               for tags, job in zip(groups, submitted, strict=True)]
    run.write_json("executor.json", {"kind": "slurm", "cluster": executor.cluster,
                                     "folder": str(folder), "jobs": records})
    if console is not None:
        ids = ", ".join(r["job_id"] for r in records[:4]) + (" …" if len(records) > 4 else "")
        console.print(f"submitted {len(records)} job(s): {ids}; logs in {folder}",
                      highlight=False)
    if not executor.wait:
        return records
    watch(run, jobs, lambda: not all(job.done() for job in submitted), console)
    failures = []
    for tags, job in zip(groups, submitted, strict=True):
        try:
            job.result()
        except Exception as err:  # noqa: BLE001 - reported with its shard
            failures.append((tags, err))
    _raise_failures(failures)
    return None
