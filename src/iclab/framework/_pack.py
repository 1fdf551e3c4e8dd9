"""Packing: models of the same static shape train as one vmapped program.

*A recipe's jobs* (``pack_jobs``, ``iclab run --pack``): jobs with the same ``Job.pack``
label, the same optimiser and training config, no stopping rule and problems of one
``Packable`` family (the same task but for its array fields, e.g. one noise level each)
train as one job whose members are every job's seeds (``Trainer(data=...)``). The packed
job has its own checkpoint (``checkpoint-pack-LABEL``) and resumes from it; its members'
metric rows carry their own jobs' tags and seeds, and the measurement gets every job
back by its own tag, so the run folder reads as an unpacked one. Vmapped over data, a
member trains as its job alone does to float32 rounding, not necessarily bit for bit, so
``--pack`` is recorded in ``config.json`` and a resumed run packs as it started.

*A sweep's points* that differ only in learning rates train as one vmapped
program per job (``TrainConfig.lr_grid``: one compilation for all of them).

Points pack together when their resolved configs are equal but for keys named ``lr``
(``optim.lr``, ``mlp_optim.lr``, ...) and their jobs match tag by tag: the same training
config, the same optimiser but for its learning rate, and no early-stopping rule. The
packed program's member k is point ``k // seeds``'s seed ``k % seeds``, exactly as
``lr_grid`` defines it; each point's metrics, models and final evaluation are split out
and the point is measured as if it had trained alone. A packed member trains as a separate
run does to float32 rounding (``tests/test_engine.py``), not bit for bit, so a packed
point records ``packed_with`` in its ``status.json``.

A packed group trains in memory: interrupted, its points have written nothing and run
again from the start.
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from iclab.config import to_dict


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def pack_key(point) -> str:
    """Points with equal keys pack: the recipe, mode and config without its ``lr`` keys."""
    flat = {k: v for k, v in _flat(to_dict(point.config)).items()
            if k.rsplit(".", 1)[-1] != "lr"}
    return json.dumps([point.recipe.name, point.mode, flat], sort_keys=True, default=str)


def jobs_pack(job_lists: list[list]) -> bool:
    """Whether the points' jobs (one list per point) match tag by tag for packing."""
    first = job_lists[0]
    for jobs in job_lists[1:]:
        if [j.tag for j in jobs] != [j.tag for j in first]:
            return False
        for a, b in zip(first, jobs, strict=True):
            if a.train != b.train or a.stop is not None or b.stop is not None or \
                    a.train.lr_grid or dataclasses.replace(a.optim, lr=b.optim.lr) != b.optim:
                return False
    return bool(first)


def train_packed(points_runs_jobs: list[tuple], console=None) -> list[dict]:
    """Train each job of the points once, packed over their learning rates; write every
    point's metric rows into its run folder; return per point {tag: TrainedJob}."""
    from iclab.engine import Trainer
    from iclab.framework._recipe import TrainedJob
    from iclab.store import MetricRows

    n = len(points_runs_jobs)
    out = [{} for _ in range(n)]
    first_jobs = points_runs_jobs[0][2]
    for j, base in enumerate(first_jobs):
        lrs = tuple(float(jobs[j].optim.lr) for _, _, jobs in points_runs_jobs)
        train = dataclasses.replace(base.train, lr_grid=lrs)
        trainer = Trainer(base.problem, base.optim, train)
        if console is not None:
            console.print(f"packed: {base.tag or 'model'} × {n} learning rates "
                          f"({train.members} members, one program)", highlight=False)
        state = trainer.fit(base.eval_data)
        final = trainer.evaluate(state, base.eval_data)
        models = trainer.models(state)
        history = trainer.history
        s = train.seeds
        for p, (_, run, jobs) in enumerate(points_runs_jobs):
            members = range(p * s, (p + 1) * s)
            rows = history[history.seed.isin([train.seed + k for k in members])].copy()
            rows["seed"] = train.seed + (rows.seed - train.seed) % s
            metric_rows = MetricRows()
            for step, seed, metric, value in rows[["step", "seed", "metric", "value"]
                                                  ].itertuples(index=False):
                metric_rows.add(step, seed, f"{base.tag}/{metric}" if base.tag else metric,
                                value)
            run.write_metrics(f"{base.tag or 'train'}-packed", metric_rows)
            out[p][base.tag] = TrainedJob(
                job=jobs[j], models=models[p * s:(p + 1) * s],
                seeds=[train.seed + k for k in range(s)],
                final={k: np.asarray(v)[p * s:(p + 1) * s] for k, v in final.items()},
                step=int(state.step[0]), history=rows.reset_index(drop=True))
    return out


def _packs(job) -> bool:
    return bool(job.pack) and job.problem.packable is not None and job.stop is None \
        and not job.train.lr_grid and not job.train.probes.every and not job.packed


def pack_jobs(jobs: list) -> list:
    """The jobs with those of one pack label, optimiser, training config and ``Packable``
    family replaced by one packed job (at the place of the first; see the module
    docstring); every other job as it is."""
    from iclab.framework._recipe import Job

    groups: dict = {}
    for i, job in enumerate(jobs):
        if _packs(job):
            key = (job.pack, job.optim, job.train, job.problem.packable.family)
            groups.setdefault(key, []).append(i)
    labels: dict = {}
    replace: dict = {}
    for key, members in groups.items():
        if len(members) < 2:
            continue
        group = [jobs[i] for i in members]
        try:
            eval_data = jax.tree.map(lambda *a: jnp.stack(a), *[j.eval_data for j in group])
        except (ValueError, TypeError):  # evaluation data of different shapes: unpacked
            continue
        n = labels[key[0]] = labels.get(key[0], 0) + 1
        first = group[0]
        replace[members[0]] = Job(
            f"pack-{key[0]}" + (f"-{n}" if n > 1 else ""), first.problem, first.optim,
            first.train, eval_data=eval_data, label=f"{key[0]} × {len(group)} (packed)",
            cost=sum(j.cost for j in group), packed=tuple(group))
        replace.update(dict.fromkeys(members[1:]))
    return [replace[i] if i in replace else job for i, job in enumerate(jobs)
            if i not in replace or replace[i] is not None]
