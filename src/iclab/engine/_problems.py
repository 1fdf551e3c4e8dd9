"""Ready-made ``Problem``s for common task families."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from iclab.engine._train import Packable, Problem
from iclab.instruments import query_loss
from iclab.tasks import (
    DynamicsTask,
    FewShotPairs,
    FewShotRegressionTask,
    LinearRegressionTask,
    RegressionExample,
    TokenSequence,
    Trajectory,
    all_points,
    constructed_tokens,
    few_shot_tokens,
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
    on a held-out ``RegressionExample`` batch.

    The problem is ``Packable`` over the task's ``ARRAY_FIELDS`` (noise level, scales):
    its family is the task without them (the model and evaluation are the packer's to
    match)."""
    if evaluate is None:
        evaluate = lambda model, batch: {"test_loss": regression_loss(model, batch)}
    fields = task.array_fields()
    packable = Packable(
        values=fields, rebuild=lambda values: regression_problem(
            task.with_arrays(**values), init_model, evaluate),
        family=("regression", task.with_arrays(**dict.fromkeys(fields, 0.0))))
    return Problem(init_model=init_model, sample_batch=task.sample_batch, loss=regression_loss,
                   inputs=jax.vmap(to_tokens), evaluate=evaluate, packable=packable)


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


class SoftPrompt(eqx.Module):
    """Tokens tuned for a frozen sequence model on few-shot regression (von Oswald et al.
    2023, Fig. 8, SI F.1.4): an EOS token after every pair, and ``prefix_tokens`` soft
    tokens before the sequence; each entry N(0, 1) at initialisation.

    The sequence is [prefix…, x_1, y_1, EOS, x_2, …] (``few_shot_tokens``); the model's
    output at x_i predicts y_i.
    """

    eos: Array | None
    prefix: Array | None

    def __init__(self, dim: int, eos: bool = True, prefix_tokens: int = 0, *, key):
        k_eos, k_prefix = jax.random.split(key)
        self.eos = jax.random.normal(k_eos, (dim,)) if eos else None
        self.prefix = (jax.random.normal(k_prefix, (prefix_tokens, dim)) if prefix_tokens
                       else None)


def few_shot_loss_per_pair(model, batch: FewShotPairs, prompt: SoftPrompt | None = None
                           ) -> Array:
    """½ E‖ŷ_i − y_i‖² for every pair i, (N,): ``model`` (a next-token sequence model,
    tokens (T, n) → (T, n)) read at the x_i tokens, with the tokens of ``prompt`` if any."""
    eos, prefix = (None, None) if prompt is None else (prompt.eos, prompt.prefix)

    def one(x, y):
        tokens, at = few_shot_tokens(x, y, eos, prefix)
        return model(tokens)[at]

    preds = jax.vmap(one)(batch.x, batch.y)
    return 0.5 * jnp.sum((preds - batch.y) ** 2, axis=-1).mean(0)


def few_shot_problem(model, task: FewShotRegressionTask, eos: bool = True,
                     prefix_tokens: int = 0) -> Problem:
    """Tune a ``SoftPrompt`` for the frozen ``model`` (a constant of the loss: only the
    prompt is trained) on the mean over pairs of ``few_shot_loss_per_pair``."""
    loss = lambda prompt, batch: few_shot_loss_per_pair(model, batch, prompt).mean()
    return Problem(init_model=lambda key: SoftPrompt(task.state_dim, eos, prefix_tokens,
                                                     key=key),
                   sample_batch=task.sample_batch, loss=loss,
                   evaluate=lambda prompt, batch: {"test_loss": loss(prompt, batch)})


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


def finite_problem(train: Any, init_model: Callable, loss: Callable, metrics: Callable,
                   batch_size: int, mode: str = "epochs", seed: int = 0,
                   extra: Callable | None = None) -> Problem:
    """Train on a fixed training set and measure both splits.

    Training batches come from ``finite_sampler(train, batch_size, mode, seed)`` inside the
    compiled step. The evaluation data must be the pair ``(train, test)`` (pass it as the
    job's ``eval_data``): ``metrics(model, data) -> {name: scalar}`` is computed on the whole
    training set as ``train_set_{name}`` and on the held-out set as ``test_{name}``, with
    ``extra(model) -> {name: scalar}`` (e.g. weight norms) added as they are.

    Args:
        train: the training set (a pytree with a leading example axis).
        init_model: key → model.
        loss: (model, batch) → scalar training loss.
        metrics: (model, data) → dict of scalars, for either split.
        batch_size, mode, seed: ``finite_sampler``'s.
        extra: optional model → dict of scalars.
    """
    from iclab.engine._data import finite_sampler

    def evaluate(model, splits):
        train_split, test_split = splits
        out = {f"train_set_{k}": v for k, v in metrics(model, train_split).items()}
        out.update({f"test_{k}": v for k, v in metrics(model, test_split).items()})
        return {**out, **(extra(model) if extra is not None else {})}

    return Problem(init_model=init_model, sample_batch=lambda key, size: train, loss=loss,
                   evaluate=evaluate,
                   sample_scheduled=finite_sampler(train, batch_size, mode, seed))


def next_token_losses(model, tokens: Array, vocab: int) -> Array:
    """Next-token cross-entropy (B, T) of a causal sequence model at every position of
    ``tokens`` (B, T + 1): the model reads one-hot ``tokens[:, :-1]`` (``vocab`` wide)
    and predicts ``tokens[:, 1:]``; entry t is −ln p(tokens[t + 1] | tokens[: t + 1])."""
    logits = jax.vmap(lambda t: model(one_hot_tokens(t[:-1], vocab)))(tokens)
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:])


def next_token_loss(model, tokens: Array, vocab: int) -> Array:
    """Mean of ``next_token_losses`` over sequences and positions."""
    return next_token_losses(model, tokens, vocab).mean()


def language_problem(task, init_model: Callable, floor: float | None = None) -> Problem:
    """Train a causal sequence model (one-hot tokens → next-token logits) on fresh
    sequences of a task's ``TokenSequence`` (a synthetic language such as
    ``MarkovLanguageTask``) with ``next_token_loss``; evaluate it on a held-out batch as
    ``loss``, and with ``floor`` (the least possible loss, e.g. the chain's entropy rate)
    also ``excess_loss`` = loss − floor. The task says its ``vocab``."""
    vocab = task.vocab

    def evaluate(model, batch):
        loss = next_token_loss(model, batch.tokens, vocab)
        return {"loss": loss} if floor is None else {"loss": loss,
                                                     "excess_loss": loss - floor}

    return Problem(init_model=init_model, sample_batch=task.sample_batch,
                   loss=lambda model, batch: next_token_loss(model, batch.tokens, vocab),
                   evaluate=evaluate,
                   inputs=lambda b: jax.vmap(lambda t: one_hot_tokens(t[:-1], vocab))(b.tokens))


def parametrised(problem: Problem, parametrisation, base_model: Callable) -> Problem:
    """``problem`` under a width/depth parametrisation: its model is initialised by the
    parametrisation (init and forward multipliers) and the optimiser gets its per-array
    multipliers (``Problem.scaling``).

    Args:
        problem: a problem whose model is an ``iclab.models.ScalableModel``.
        parametrisation: an ``iclab.parametrisation.Parametrisation``.
        base_model: key → the same model at the base width and depth (only its shapes are
            read).
    """
    import dataclasses

    key = jax.random.key(0)
    scaling = parametrisation.scale(eqx.filter_eval_shape(problem.init_model, key),
                                    eqx.filter_eval_shape(base_model, key))
    init = problem.init_model
    return dataclasses.replace(problem, init_model=lambda k: scaling.initialise(init(k)),
                               scaling=scaling)
