"""A two-job recipe of the tests' own, importable by other processes (the executors'
workers rebuild it from ``config.json``'s ``recipe_ref``: ``executor_recipe:RECIPE``)."""

from dataclasses import dataclass, field

import jax
import pandas as pd

from iclab.engine import OptimConfig, TrainConfig, regression_problem
from iclab.framework import Claim, Job, Recipe
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
    if config.fail:
        raise RuntimeError("this point fails on purpose")
    return {"final": pd.DataFrame([{"job": tag, "seed": s, "loss": float(loss)}
                                   for tag, job in trained.items()
                                   for s, loss in zip(job.seeds, job.final["test_loss"],
                                                      strict=True)])}


RECIPE = Recipe(name="pair", title="pair", description="two jobs, for the executors' tests",
                paper="-", config_type=PairConfig, full=PairConfig, quick=PairConfig,
                experiment=_experiment, measure=_measure,
                claims=[Claim("finite", "the loss is small", lambda r: r["final"].loss, "<=",
                              10.0)])
