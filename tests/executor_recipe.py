"""A two-job recipe of the tests' own, importable by other processes (the executors'
workers rebuild it from ``config.json``'s ``recipe_ref``: ``executor_recipe:RECIPE``)."""

from dataclasses import dataclass, field, replace

import jax
import pandas as pd

from iclab.engine import OptimConfig, TrainConfig, regression_problem
from iclab.framework import Claim, Figure, Job, Recipe
from iclab.models import LSATransformer, LSATransformerConfig
from iclab.tasks import LinearRegressionTask


@dataclass(frozen=True)
class PairConfig:
    """Args:
        task: the regression task.
        train: the training length (both jobs).
        lrs: one job per learning rate.
        fail: the measurement raises (a point that crashes).
    """

    task: LinearRegressionTask = field(default_factory=lambda: LinearRegressionTask(
        d=3, n_context=8))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=60, batch_size=64, eval_every=20, seeds=2))
    lrs: tuple[float, ...] = (0.01, 0.003)
    fail: bool = False


def _experiment(config):
    model = LSATransformerConfig(dim=config.task.d + 1, init_scale=0.1)
    problem = regression_problem(config.task, lambda k: LSATransformer(model, key=k))
    data = config.task.sample_batch(jax.random.key(3), 128)
    return [Job(f"lr{lr:g}", problem, OptimConfig(lr=lr), config.train, eval_data=data)
            for lr in config.lrs]


def _measure(config, trained):
    if getattr(config, "fail", False):
        raise RuntimeError("this point fails on purpose")
    return {"final": pd.DataFrame([{"job": tag, "seed": s, "loss": float(loss)}
                                   for tag, job in trained.items()
                                   for s, loss in zip(job.seeds, job.final["test_loss"],
                                                      strict=True)])}


def _curves(results):
    from iclab.report import figure, plot_metric_by_seed, style

    fig, axes = figure(2)
    for i, lr in enumerate(results.config.lrs):
        plot_metric_by_seed(axes[0], results.metrics, f"lr{lr:g}/test_loss", f"lr {lr:g}",
                            color=f"C{i}")
    style(axes[0], "step", "test loss (log scale)", yscale="log", legend=7)
    final = results["final"]
    axes[1].bar(final.job + "/" + final.seed.astype(str), final.loss)
    style(axes[1], "job/seed", "final test loss")
    return fig


RECIPE = Recipe(name="pair", title="pair", description="two jobs, for the executors' tests",
                paper="-", config_type=PairConfig, full=PairConfig, quick=PairConfig,
                experiment=_experiment, measure=_measure,
                figures=[Figure("curves", "Test loss per job (log) and final loss.", _curves),
                         Figure("again", "The same figure again (a second inline SVG).",
                                _curves)],
                claims=[Claim("finite", "the loss is small", lambda r: r["final"].loss, "<=",
                              10.0)])


@dataclass(frozen=True)
class SoloConfig:
    """Args:
        task: the regression task.
        optim: the optimiser (its ``optim.lr`` is what a packed sweep varies).
        train: the training length.
    """

    task: LinearRegressionTask = field(default_factory=lambda: LinearRegressionTask(
        d=3, n_context=8))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.01))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=40, batch_size=64, eval_every=20, seeds=2))


def _solo(config):
    (job,) = _experiment(replace(PairConfig(task=config.task, train=config.train),
                                 lrs=(config.optim.lr,)))
    return [replace(job, tag="", optim=config.optim)]


SOLO = Recipe(name="solo", title="solo", description="one job, for packed sweeps' tests",
              paper="-", config_type=SoloConfig, full=SoloConfig, quick=SoloConfig,
              experiment=_solo, measure=_measure,
              claims=[Claim("finite", "the loss is small", lambda r: r["final"].loss, "<=",
                            10.0)])


@dataclass(frozen=True)
class NoisyConfig:
    """Args:
        task: the regression task (its σ_max is set per job).
        noise: one job per σ_max, all of the pack group "lsa".
        other_lr: one more job of that group, with this learning rate (it does not pack).
        train: the training length (every job).
    """

    task: LinearRegressionTask = field(default_factory=lambda: LinearRegressionTask(
        d=3, n_context=8, noise_dist="uniform"))
    noise: tuple[float, ...] = (0.25, 1.0, 2.0)
    other_lr: float = 0.003
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=60, batch_size=64, eval_every=20, seeds=2))


def _noisy(config):
    model = LSATransformerConfig(dim=config.task.d + 1, init_scale=0.1)
    init = lambda k: LSATransformer(model, key=k)  # noqa: E731
    jobs = []
    for i, sigma in enumerate((*config.noise, config.noise[0])):
        task = replace(config.task, noise_std=sigma)
        lr = 0.01 if i < len(config.noise) else config.other_lr
        jobs.append(Job(f"s{i}", regression_problem(task, init), OptimConfig(lr=lr),
                        config.train, eval_data=task.sample_batch(jax.random.key(3), 128),
                        pack="lsa"))
    return jobs


NOISY = Recipe(name="noisy", title="noisy", description="one pack group over noise levels",
               paper="-", config_type=NoisyConfig, full=NoisyConfig, quick=NoisyConfig,
               experiment=_noisy, measure=_measure,
               claims=[Claim("finite", "the loss is small", lambda r: r["final"].loss, "<=",
                             10.0)])
