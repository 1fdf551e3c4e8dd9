"""Shared test helpers: a small regression problem for the engine."""

import jax

from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer, regression_problem
from iclab.models import LSATransformer, LSATransformerConfig
from iclab.tasks import LinearRegressionTask

TASK = LinearRegressionTask(d=3, n_context=6)


def small_problem() -> Problem:
    config = LSATransformerConfig(dim=4, init_scale=0.1)
    return regression_problem(TASK, lambda key: LSATransformer(config, key=key))


def small_trainer(steps=60, eval_every=20, seeds=1, seed=0, lr=1e-2) -> Trainer:
    return Trainer(small_problem(), OptimConfig(lr=lr),
                   TrainConfig(steps=steps, batch_size=64, eval_every=eval_every, seeds=seeds,
                               seed=seed))


def eval_batch():
    return TASK.sample_batch(jax.random.key(77), 512)


def tree_allclose(a, b, rtol=1e-6, atol=1e-6) -> bool:
    import numpy as np

    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
        for x, y in zip(leaves_a, leaves_b, strict=True))
