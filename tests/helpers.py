"""Shared test helpers: a small regression problem for the engine."""

import jax

from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer
from iclab.instruments import query_loss
from iclab.models import LSATransformer, LSATransformerConfig
from iclab.tasks import LinearRegressionTask, to_tokens

TASK = LinearRegressionTask(d=3, n_context=6)


def loss(model, batch):
    return query_loss(jax.vmap(model)(jax.vmap(to_tokens)(batch)), batch.y_query)


def small_problem() -> Problem:
    config = LSATransformerConfig(dim=4, init_scale=0.1)
    return Problem(init_model=lambda key: LSATransformer(config, key=key),
                   sample_batch=TASK.sample_batch, loss=loss,
                   evaluate=lambda model, batch: {"test_loss": loss(model, batch)})


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
