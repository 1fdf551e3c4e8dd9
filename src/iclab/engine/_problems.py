"""Ready-made ``Problem``s for common task families."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from iclab.engine._train import Problem
from iclab.instruments import query_loss
from iclab.tasks import (
    DynamicsTask,
    LinearRegressionTask,
    RegressionExample,
    TokenSequence,
    Trajectory,
    all_points,
    constructed_tokens,
    one_hot_tokens,
    to_interleaved_tokens,
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
                   inputs=jax.vmap(to_tokens),
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


class MaskedPrompts(eqx.Module):
    """A batch of function-class prompts of which only the first ``points`` points count
    in the loss (a curriculum's active prompt length)."""

    example: RegressionExample
    points: Array


def prompt_predictions(model, batch: RegressionExample) -> Array:
    """A causal model's prediction of y_i at every x_i position of interleaved prompts
    x_1, y_1, …, x_K, y_K: shape (B, K)."""
    return jax.vmap(model)(jax.vmap(to_interleaved_tokens)(batch))[:, ::2]


def prompt_loss(model, batch: "RegressionExample | MaskedPrompts") -> Array:
    """Mean squared error over all prompts and all prefixes (Garg et al. 2022's objective);
    for ``MaskedPrompts`` only the first ``points`` predictions of each prompt count (with
    a causal model the same as truncating the prompt)."""
    points = None
    if isinstance(batch, MaskedPrompts):
        batch, points = batch.example, batch.points
    _, y = jax.vmap(all_points)(batch)
    errors = (prompt_predictions(model, batch) - y) ** 2
    if points is None:
        return jnp.mean(errors)
    mask = (jnp.arange(y.shape[1])[None, :] < points[:, None]).astype(errors.dtype)
    return jnp.sum(errors * mask) / jnp.sum(mask)


def prompt_problem(task, init_model: Callable, curriculum=None) -> Problem:
    """Train a causal model on interleaved prompts of a ``FunctionClassTask`` with
    ``prompt_loss`` (every prefix; Garg et al. 2022), evaluating the same loss on a held-out
    batch. With a ``CurriculumConfig``, training batches follow it: the active input
    dimensions and prompt points at each (traced) step, the remaining points left out of
    the loss (``MaskedPrompts``)."""
    sample_scheduled = None
    if curriculum is not None:
        points = task.n_context + 1

        def sample_scheduled(key, batch_size, step):
            dims, active = curriculum.at(step, task.d, points)
            return MaskedPrompts(task.sample_batch(key, batch_size, active_dims=dims),
                                 jnp.full((batch_size,), active))

    return Problem(init_model=init_model, sample_batch=task.sample_batch, loss=prompt_loss,
                   evaluate=lambda model, batch: {"test_loss": prompt_loss(model, batch)},
                   sample_scheduled=sample_scheduled, inputs=jax.vmap(to_interleaved_tokens))


def query_token_logits(model, tokens: Array, vocab: int) -> Array:
    """A sequence model's logits at the last position of each one-hot encoded token
    sequence: (B, vocab) for ``tokens`` (B, T)."""
    return jax.vmap(lambda t: model(one_hot_tokens(t, vocab))[-1])(tokens)


def query_token_problem(task, init_model: Callable) -> Problem:
    """Train a sequence model (one-hot tokens → logits) to predict ``target`` from the
    last position of a task's ``TokenSequence`` (in-context recall: ``ItemLabelTask``)
    with cross-entropy; evaluate the loss and the accuracy on a held-out batch. The task
    says its ``vocab_size``."""
    vocab = task.vocab_size

    def loss(model, batch: TokenSequence):
        return optax.softmax_cross_entropy_with_integer_labels(
            query_token_logits(model, batch.tokens, vocab), batch.target).mean()

    def evaluate(model, batch: TokenSequence):
        logits = query_token_logits(model, batch.tokens, vocab)
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(
                    logits, batch.target).mean(),
                "accuracy": (logits.argmax(-1) == batch.target).mean()}

    return Problem(init_model=init_model, sample_batch=task.sample_batch, loss=loss,
                   evaluate=evaluate,
                   inputs=lambda b: jax.vmap(lambda t: one_hot_tokens(t, vocab))(b.tokens))
