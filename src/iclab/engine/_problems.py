"""Ready-made ``Problem``s for common task families."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array

from iclab.engine._train import Problem
from iclab.instruments import query_loss
from iclab.models import DisentangledCoordinates
from iclab.tasks import (
    DynamicsTask,
    LinearRegressionTask,
    OrthonormalPairsTask,
    RegressionExample,
    Trajectory,
    constructed_tokens,
    to_tokens,
)


def regression_loss(model, batch: RegressionExample):
    """½ MSE of ``model`` (tokens → ŷ) on the query of each task in ``batch``."""
    return query_loss(jax.vmap(model)(jax.vmap(to_tokens)(batch)), batch.y_query)


def regression_problem(task: LinearRegressionTask, init_model: Callable,
                       evaluate: Callable | None = None) -> Problem:
    """Train any tokens → ŷ model on fresh tasks; by default evaluate the test loss
    on a held-out ``RegressionExample`` batch."""
    if evaluate is None:
        evaluate = lambda model, batch: {"test_loss": regression_loss(model, batch)}
    return Problem(init_model=init_model, sample_batch=task.sample_batch, loss=regression_loss,
                   evaluate=evaluate)


def sequence_loss_per_step(model, batch: Trajectory,
                           tokens: Callable = constructed_tokens) -> Array:
    """½ E‖ŝ_{t+1} − s_{t+1}‖² at every position t, (T,): ``model`` maps ``tokens(inputs)``
    to next-state predictions; the squared error is summed over state dimensions and
    averaged over the batch (von Oswald et al. 2023)."""
    preds = jax.vmap(lambda s: model(tokens(s)))(batch.inputs)
    return 0.5 * jnp.sum((preds - batch.targets) ** 2, axis=-1).mean(0)


def dynamics_problem(task: DynamicsTask, init_model: Callable,
                     tokens: Callable = constructed_tokens,
                     evaluate: Callable | None = None) -> Problem:
    """Train a sequence model (or a learner with parameters, ``tokens`` = identity) on
    fresh sequences with the mean over t of ``sequence_loss_per_step``; by default
    evaluate the mean and per-step test loss on a held-out ``Trajectory`` batch."""
    loss = lambda model, batch: sequence_loss_per_step(model, batch, tokens).mean()
    if evaluate is None:
        def evaluate(model, batch):
            per_step = sequence_loss_per_step(model, batch, tokens)
            return {"test_loss": per_step.mean(), "test_loss_last": per_step[-1]}
    return Problem(init_model=init_model, sample_batch=task.sample_batch, loss=loss,
                   evaluate=evaluate)


def pairs_population_loss(model, task: OrthonormalPairsTask) -> Array:
    """½ E‖ŷ − y‖² of a disentangled model on the orthonormal item–label task, as the
    mean over the query pair k* of the canonical sequences' losses: the exact population
    loss for a model in the invariant subspace (see ``OrthonormalPairsTask``)."""
    context, queries, targets = task.canonical_batch()
    return 0.5 * jnp.sum((model.query_outputs(context, queries) - targets) ** 2, -1).mean()


def pairs_population_problem(task: OrthonormalPairsTask, evaluate: Callable | None = None
                             ) -> Problem:
    """Full-batch gradient descent on the population loss of ``DisentangledCoordinates``
    from zero (the batch is unused); evaluates the loss and the 19 coordinates."""
    if evaluate is None:
        def evaluate(model, batch):
            out = {"loss": pairs_population_loss(model, task)}
            for name in ("alpha", "beta", "gamma"):
                values = getattr(model, name)
                out.update({f"{name}{i + 1}": values[i] for i in range(values.shape[0])})
            return out
    return Problem(init_model=lambda key: DisentangledCoordinates(task.width),
                   sample_batch=lambda key, batch_size: jnp.zeros(()),
                   loss=lambda model, batch: pairs_population_loss(model, task),
                   evaluate=evaluate)
