"""What a recipe is: configs, an experiment (the jobs to train), a measurement (the tables)
and a spec (claims, checks, figures, sections); and the registry, discovered from
``iclab.recipes``."""

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iclab._errors import ConfigError
from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer
from iclab.framework._spec import Claim, Figure, Section


@dataclass(frozen=True)
class Job:
    """One model family to train (``train.seeds`` seeds in one vmapped program).

    Args:
        tag: names its metrics (``"{tag}/{metric}"``) and checkpoint in the run folder;
            "" for a recipe that trains a single model (metrics without a prefix).
        problem: what to train (``iclab.engine.Problem``).
        optim: its optimiser.
        train: steps, batch, evaluation interval and seeds.
        eval_data: passed to ``problem.evaluate`` at every evaluation.
        label: progress-bar text (default: the tag).
        stop: optional early-stopping rule ``(step, metrics) -> bool``.
        cost: relative cost, for the start order of concurrent jobs.
        info: anything the measurement needs alongside the models (tuned baselines, ...).
        pack: jobs with the same non-empty label train the same model with the same
            evaluation on problems of one ``Packable`` family (e.g. one per noise level):
            with ``iclab run --pack`` they train as one program (``pack_jobs``).
        packed: set by ``pack_jobs``: the jobs this one trains together.
    """

    tag: str
    problem: Problem
    optim: OptimConfig
    train: TrainConfig
    eval_data: Any = None
    label: str = ""
    stop: Callable[[int, dict], bool] | None = None
    cost: float = 1.0
    info: dict = field(default_factory=dict)
    pack: str = ""
    packed: tuple = ()

    def trainer(self) -> Trainer:
        """Its trainer (of every job it packs, one group each)."""
        if not self.packed:
            return Trainer(self.problem, self.optim, self.train)
        return Trainer(self.problem, self.optim, self.train,
                       data=[j.problem.packable.values for j in self.packed],
                       group_tags=[j.tag for j in self.packed])


@dataclass(frozen=True)
class TrainedJob:
    """A job after training: its models (one per seed, in seed order), the seeds, the
    final evaluation (metric → per-seed array), the step it stopped at, its metric history
    (step, seed, metric, value; names without the tag; read from the run folder when there
    is one, so a resumed run sees the whole history), the job, and where its training time
    went in this process (``timing``: steps, and seconds compiling, stepping and the rest;
    shared by the jobs of one packed program)."""

    job: Job
    models: list
    seeds: list[int]
    final: dict[str, np.ndarray]
    step: int
    history: Any = None
    timing: dict | None = None

    def curves(self, metric: str):
        """One metric's history as a table: index step, one column per seed."""
        rows = self.history[self.history.metric == metric]
        return rows.pivot_table(index="step", columns="seed", values="value")

    @property
    def info(self) -> dict:
        return self.job.info

    @property
    def eval_data(self) -> Any:
        return self.job.eval_data


@dataclass(frozen=True)
class Recipe:
    """A paper claim-set.

    Args:
        name: the CLI name (``iclab run NAME``).
        title: the report's title (or config → title).
        description: one line for ``iclab list``.
        paper: the citation.
        config_type: the frozen config dataclass.
        full, quick: the two modes' configs.
        experiment: config → the jobs to train (the framework trains them: progress,
            checkpoints, resume, concurrency).
        measure: (config, {tag: TrainedJob}) → {table name: DataFrame}, written as
            ``tables/{name}.parquet``; nothing else.
        claims, checks: the spec's rows (checks hold by construction: they must pass
            and are not counted among the claims); a sequence, or config → sequence for
            rows that depend on the config (one per depth, per N, ...).
        figures, sections: the report's figures and tables, functions of the tables
            (a sequence, or config → sequence).
        resolve: optional (config, mode, set_keys) → config, filling in settings that
            depend on others after ``--set`` (keys the user set are left alone).
        workers: host threads for concurrent jobs (None: the default, 1: one at a time).

    A recipe whose ``experiment`` takes a ``model`` keyword accepts a user's model factory
    (``iclab.run(name, model=factory)``); its docstring names the keywords it calls it with.
    """

    name: str
    title: str | Callable[[Any], str]
    description: str
    paper: str
    config_type: type
    full: Callable[[], Any]
    quick: Callable[[], Any]
    experiment: Callable[..., Sequence[Job]]
    measure: Callable[[Any, dict[str, TrainedJob]], dict]
    claims: Sequence[Claim] | Callable[[Any], Sequence[Claim]] = ()
    checks: Sequence[Claim] | Callable[[Any], Sequence[Claim]] = ()
    figures: Sequence[Figure] | Callable[[Any], Sequence[Figure]] = ()
    sections: Sequence[Section] | Callable[[Any], Sequence[Section]] = ()
    resolve: Callable[[Any, str, frozenset[str]], Any] | None = None
    workers: int | None = None

    def spec(self, part: str, config: Any) -> list:
        """The rows of ``part`` ("claims", "checks", "figures", "sections") for ``config``."""
        rows = getattr(self, part)
        rows = list(rows(config) if callable(rows) else rows)
        if part in ("claims", "checks"):
            other = "checks" if part == "claims" else "claims"
            ids = [c.id for c in rows]
            more = getattr(self, other)
            ids_all = ids + [c.id for c in (more(config) if callable(more) else more)]
            if len(set(ids_all)) != len(ids_all):
                raise ValueError(f"recipe {self.name}: claim/check ids repeat: {ids_all}")
        return rows


def recipes() -> dict[str, Recipe]:
    """Every recipe: the ``RECIPE`` of each public module of ``iclab.recipes``, by name."""
    import iclab.recipes as package

    found = {}
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_"):
            continue
        recipe = getattr(importlib.import_module(f"{package.__name__}.{module.name}"),
                         "RECIPE", None)
        if isinstance(recipe, Recipe):
            found[recipe.name] = recipe
    return dict(sorted(found.items()))


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or for ``"package.module:ATTR"`` the ``Recipe`` that
    module defines as ``ATTR`` (a recipe of your own); a ``ConfigError`` listing the valid
    names otherwise."""
    if isinstance(name, str) and ":" in name:
        import os
        import sys

        module_name, _, attr = name.partition(":")
        if os.getcwd() not in sys.path:  # as ``python -m`` would: a module beside you
            sys.path.insert(0, os.getcwd())
        try:
            found = getattr(importlib.import_module(module_name), attr, None)
        except ImportError as err:
            raise ConfigError("recipe", name, "", message=(
                f"invalid value for 'recipe': {name!r} (module {module_name} cannot be "
                f"imported: {err})")) from None
        if not isinstance(found, Recipe):
            raise ConfigError("recipe", name, f"MODULE:ATTR naming a Recipe; {module_name} "
                              f"has no Recipe {attr!r}")
        return found
    available = recipes()
    if name not in available:
        raise ConfigError("recipe", name, ", ".join(available) + ", or MODULE:ATTR")
    return available[name]


def recipe_reference(recipe: Recipe) -> str:
    """What rebuilds ``recipe`` in another process: its registry name, or
    ``"module:ATTR"`` for a recipe of your own defined at a module's top level; a
    ``ConfigError`` for one that no other process can import (defined in ``__main__``, or
    inside a function)."""
    if recipes().get(recipe.name) is recipe:
        return recipe.name
    import sys

    module = sys.modules.get(getattr(recipe.experiment, "__module__", ""), None)
    if module is not None and module.__name__ != "__main__":
        for attr, value in vars(module).items():
            if value is recipe:
                return f"{module.__name__}:{attr}"
    raise ConfigError("recipe", recipe.name, "", message=(
        f"recipe {recipe.name!r} cannot be rebuilt by another process: define it at the top "
        "level of an importable module (not __main__), or use --executor local"))


def saved_recipe(saved: dict) -> Recipe:
    """The recipe of a run folder's ``config.json`` (``recipe_ref`` when it names one of
    your own, else the registry's ``recipe``)."""
    return get_recipe(saved.get("recipe_ref") or saved.get("recipe"))


def train_jobs(jobs: Sequence[Job], run=None, console=None, workers: int | None = None
               ) -> dict[str, TrainedJob]:
    """Train every job through one path (``fit_concurrently``) and return them by tag."""
    from iclab.engine import FitJob, fit_concurrently

    trainers = [job.trainer() for job in jobs]
    fit_jobs = [FitJob(trainer, job.eval_data, tag=job.tag, label=job.label or job.tag
                       or "training", stop=job.stop, cost=job.cost)
                for trainer, job in zip(trainers, jobs, strict=True)]
    states = fit_concurrently(fit_jobs, run=run, console=console, workers=workers)
    everything = run.metrics() if run is not None else None
    out = {}
    for job, trainer, state in zip(jobs, trainers, states, strict=True):
        history = trainer.history if everything is None else everything
        models, final = trainer.models(state), trainer.evaluate(state, job.eval_data)
        s = job.train.members
        for g, member in enumerate(job.packed or (job,)):  # a packed job: one per group
            part = slice(g * s, (g + 1) * s)
            out[member.tag] = TrainedJob(
                job=member, models=models[part],
                seeds=[job.train.seed + k for k in range(s)],
                final={k: np.asarray(v)[part] for k, v in final.items()},
                step=int(state.step[0]), history=_tagged(history, member.tag,
                                                         everything is not None),
                timing=_timing(trainer, len(job.packed or (job,))))
    return out


def _timing(trainer, packed: int) -> dict:
    """Where a trainer's time went in this process (``TrainedJob.timing``)."""
    steps, stepping = trainer.steps_trained, trainer.train_seconds
    return {"steps": steps, "members": trainer.members, "packed": packed,
            "fit_s": round(trainer.fit_seconds, 3),
            "compile_s": round(trainer.compile_seconds, 3),
            "steps_s": round(stepping, 3),
            "other_s": round(max(trainer.fit_seconds - trainer.compile_seconds - stepping,
                                 0.0), 3),
            "steps_per_s": round(steps / stepping, 2) if stepping > 0 else None}


def _tagged(history, tag: str, shared: bool):
    """The rows of the job ``tag`` (names without the tag) of a metric history; a shared
    one (the run's) holds other jobs' rows too."""
    if tag:
        prefix = f"{tag}/"
        history = history[history.metric.str.startswith(prefix)].copy()
        history["metric"] = history.metric.str.slice(len(prefix))
    elif shared:
        history = history[~history.metric.str.contains("/", regex=False)]
    return history.reset_index(drop=True)
