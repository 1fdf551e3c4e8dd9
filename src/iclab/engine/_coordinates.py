"""The coordinate check as one call: train each model of a family for a few steps and
read its activation sizes at every step (the ``coordinates`` probe). Its pieces —
``coordinate_setup`` and ``coordinate_frame`` — let a recipe run the same check as jobs."""

import dataclasses
from collections.abc import Mapping

import jax
import pandas as pd

from iclab.engine._optim import OptimConfig
from iclab.engine._probes import ProbeConfig
from iclab.engine._train import Problem, TrainConfig, Trainer


def coordinate_setup(problem: Problem, steps: int = 3, seeds: int = 1, batch_size: int = 8,
                     fixed_batch: bool = True, seed: int = 0
                     ) -> tuple[Problem, TrainConfig, object]:
    """The problem, training config and evaluation batch of a coordinate check.

    The ``coordinates`` probe reads ``coordinate_sizes`` at every step (0 = init) on one
    probe batch of ``batch_size`` sequences; with ``fixed_batch`` (``mup``'s ``fix_data``)
    the problem trains on that same batch at every step. Returns (problem, train config,
    the batch, to pass as the evaluation data)."""
    if problem.inputs is None:
        raise ValueError("coordinate check: the problem gives no inputs (Problem.inputs), "
                         "so its activations cannot be read")
    probes = ProbeConfig(every=1, batch_size=batch_size, norms=False, entropy=False,
                         coordinates=True)
    train = TrainConfig(steps=steps, batch_size=batch_size, eval_every=1, seeds=seeds,
                        seed=seed, probes=probes)
    batch = problem.sample_batch(jax.random.key(probes.seed), batch_size)
    if fixed_batch:
        problem = dataclasses.replace(problem, sample_batch=lambda key, n, b=batch: b,
                                      sample_scheduled=None)
    return problem, train, batch


def coordinate_frame(history: pd.DataFrame, **columns) -> pd.DataFrame:
    """The coordinate sizes of a metric history (step, seed, metric, value) as a tidy
    frame: ``columns`` (e.g. size=…, scheme=…), seed, step, site, value."""
    coords = history[history.metric.str.startswith("probe/coord/")]
    frame = pd.DataFrame({"seed": coords.seed.to_numpy(), "step": coords.step.to_numpy(),
                          "site": coords.metric.str.removeprefix("probe/coord/").to_numpy(),
                          "value": coords.value.to_numpy(float)})
    for i, (key, value) in enumerate(columns.items()):
        frame.insert(i, key, value)
    return frame


def coordinate_check(problems: Mapping[int, Problem], optim: OptimConfig, steps: int = 3,
                     seeds: int = 1, batch_size: int = 8, fixed_batch: bool = True,
                     seed: int = 0) -> pd.DataFrame:
    """Coordinate sizes of a family of models (one per width, or per depth) at
    initialisation and after each of ``steps`` optimiser steps.

    Each problem's model (any ``ResidualStreamModel``; a parametrisation goes in through
    ``iclab.engine.parametrised``) is trained by ``optim`` with the engine, as set up by
    ``coordinate_setup``.

    Args:
        problems: size (the width or the depth) → problem; each must give ``inputs``.
        optim: the optimiser (its learning rate is the base learning rate).
        steps: optimiser steps after initialisation.
        seeds: seeds per size (one vmapped program).
        batch_size: sequences in the probe (and, with ``fixed_batch``, training) batch.
        fixed_batch: train on the probe batch at every step.
        seed: the first seed.

    Returns:
        A tidy DataFrame: size, seed, step (0 = initialisation), site, value (mean |x|;
        sites "embedding", "block{l}", "output", and "delta_{site}" for the change since
        initialisation). ``iclab.instruments.coordinate_slopes`` fits the slopes.

    Examples:
        >>> import jax
        >>> from iclab.engine import language_problem, parametrised
        >>> from iclab.models import GPT, GPTConfig
        >>> from iclab.parametrisation import Parametrisation
        >>> from iclab.tasks import MarkovLanguageTask
        >>> task = MarkovLanguageTask(vocab=8, length=8)
        >>> gpt = lambda w: (lambda k: GPT(GPTConfig(dim_in=8, dim_out=8, width=w,
        ...                                          layers=1, heads=2, max_len=8), key=k))
        >>> problems = {w: parametrised(language_problem(task, gpt(w)),
        ...                             Parametrisation("mup"), gpt(8)) for w in (8, 16)}
        >>> frame = coordinate_check(problems, OptimConfig(name="adam"), steps=1)
        >>> sorted(frame.site.unique())[:3]
        ['block1', 'delta_block1', 'delta_embedding']

    References:
        Yang et al. "Tensor Programs V", 2022 (``mup.coord_check.get_coord_data``).
    """
    frames = []
    for size, problem in problems.items():
        problem, train, batch = coordinate_setup(problem, steps, seeds, batch_size,
                                                 fixed_batch, seed)
        trainer = Trainer(problem, optim, train)
        trainer.fit(batch)  # evaluated on the probe batch too
        frames.append(coordinate_frame(trainer.history, size=size))
    return pd.concat(frames, ignore_index=True)
