"""Ready-made ``Problem``s for common task families."""

from collections.abc import Callable

import jax

from iclab.engine._train import Problem
from iclab.instruments import query_loss
from iclab.tasks import LinearRegressionTask, RegressionExample, to_tokens


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
