"""The training loop, generic over tasks and models.

A ``Problem`` says how to build a model, draw a batch and score it. The
``Trainer`` trains S seeds at once as one compiled program: the per-seed state
(parameters, optimizer state, step, data key) is stacked on a leading axis and
the step is ``vmap``-ed over it; steps run in chunks of ``lax.scan`` inside
``jit`` (data sampling included), with evaluation, metric writing and an atomic
checkpoint between chunks. Seed s uses ``jax.random.key(seed + s)``, so seed s of
a vmapped run equals a single-seed run with ``seed + s``. The batch at step t is
drawn from ``fold_in(data_key, t)``, so the data stream does not depend on the
chunking, and a resumed run repeats an uninterrupted one.
"""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from iclab._errors import check_nonnegative, check_positive, check_positive_int
from iclab.engine._optim import OptimConfig, make_optimizer
from iclab.engine._probes import ProbeConfig, probe_metrics

_PROBE_LOCK = threading.Lock()
"""One probe program at a time in a process: two trainers' vmapped probe programs (SVDs
of every head) run from two host threads at once wedged XLA's CPU thread pool (both
threads waiting on their results forever, no CPU in use; seen with jax 0.10.2 on 2
cores). Probes are a small share of a run, so they are serialised."""


PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    """How long and on what to train.

    Args:
        steps: optimizer steps.
        batch_size: fresh tasks per step.
        eval_every: steps between evaluations (and checkpoints); the scan chunk length.
        seeds: number of seeds trained together (one vmapped program).
        seed: first seed; seed s of the run uses ``seed + s``.
        probes: training-dynamics instruments logged every ``probes.every`` steps
            (``iclab.engine.ProbeConfig``; off by default).
        init_scale: multiplies the initial weights (for a model that labels its
            parameters: the embedding, attention, MLP and read-out arrays, not norms and
            biases; otherwise every array). 1 = the model's own initialisation.
        precision: "float32" or "float64": the run's floating-point type (its model,
            data sampling, training and evaluation are traced under ``jax.enable_x64``
            for float64).
        lr_grid: learning rates trained together with the seeds as one vmapped program
            (one compilation for the whole grid): member k has learning rate
            ``lr_grid[k // seeds]`` (it replaces ``optim.lr``; a schedule keeps its shape,
            scaled to that peak) and seed ``seed + k % seeds``, so every learning rate
            starts from the same initialisations. The metric history's seed column is
            ``seed + k``; ``member_lr(k)`` and ``member_seed(k)`` decode it. () = off.
    """

    steps: int = 5000
    batch_size: int = 2048
    eval_every: int = 100
    seeds: int = 1
    seed: int = 0
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    init_scale: float = 1.0
    precision: str = "float32"
    lr_grid: tuple[float, ...] = ()

    def __post_init__(self):
        for key in ("steps", "batch_size", "eval_every", "seeds"):
            check_positive_int(f"train.{key}", getattr(self, key))
        check_nonnegative("train.seed", self.seed)
        check_nonnegative("train.init_scale", self.init_scale)
        from iclab._errors import check_choice

        check_choice("train.precision", self.precision, PRECISIONS)
        for lr in self.lr_grid:
            check_positive("train.lr_grid", lr)
        if self.probes.every % self.eval_every:
            from iclab._errors import ConfigError

            raise ConfigError("train.probes.every", self.probes.every,
                              f"0 or a multiple of train.eval_every ({self.eval_every})")

    @property
    def members(self) -> int:
        """Models trained together: seeds × learning rates of ``lr_grid`` (or seeds)."""
        return self.seeds * max(1, len(self.lr_grid))

    def member_lr(self, k: int) -> float | None:
        """The learning rate of member k (None without an ``lr_grid``)."""
        return self.lr_grid[k // self.seeds] if self.lr_grid else None

    def member_seed(self, k: int) -> int:
        """The seed of member k."""
        return self.seed + k % self.seeds


@dataclass(frozen=True)
class Packable:
    """How a problem is rebuilt from array-valued data parameters, so that problems that
    differ only in them train as one vmapped program (``Trainer(..., data=...)``).

    Args:
        values: this problem's data parameters (a pytree of numbers, e.g. a task's
            ``array_fields()``).
        rebuild: values (possibly traced) → the problem with those parameters.
        family: what else its data depends on, comparable (e.g. the task without its
            array fields); the model and the evaluation are the packer's to match.
    """

    values: Any
    rebuild: Callable[[Any], "Problem"]
    family: Any


@dataclass(frozen=True)
class Problem:
    """What to train: pure functions, all traced inside ``jit``.

    Args:
        init_model: key → model (an Equinox module).
        sample_batch: (key, batch_size) → batch (a pytree of arrays).
        loss: (model, batch) → scalar training loss.
        evaluate: (model, eval_data) → dict of scalar metrics; ``eval_data`` is a
            fixed pytree (held-out batch, baseline predictions, ...) passed as an
            argument, never baked into the graph.
        sample_scheduled: optional (key, batch_size, step) → training batch, used instead of
            ``sample_batch`` for training (curricula); ``step`` is the traced step counter,
            so a schedule survives chunking and resume.
        inputs: optional batch → the model's input sequences (B, T, D), for the probes
            that run the model on its own inputs (attention entropy).
        scaling: optional ``iclab.parametrisation.Scaling`` the optimiser applies (its
            per-array learning-rate, weight-decay and ε multipliers); ``parametrised``
            sets it together with an ``init_model`` that applies its initialisation.
        packable: optional ``Packable``: the problem as a function of its data parameters
            (``regression_problem`` sets it), for training several data settings in one
            program.
    """

    init_model: Callable[[PRNGKeyArray], eqx.Module]
    sample_batch: Callable[[PRNGKeyArray, int], Any]
    loss: Callable[[eqx.Module, Any], Array]
    evaluate: Callable[[eqx.Module, Any], dict[str, Array]]
    sample_scheduled: Callable[[PRNGKeyArray, int, Array], Any] | None = None
    inputs: Callable[[Any], Array] | None = None
    scaling: Any = None
    packable: Packable | None = None


class TrainState(eqx.Module):
    """Everything one seed needs to continue training.

    ``halted`` is set by the first step whose loss or updated parameters are not finite;
    from then on the seed's parameters and optimiser state stay those that step started
    from (its last finite model) and its training loss reads NaN, while the other seeds
    train on."""

    params: Any
    opt_state: Any
    step: Array
    data_key: Array
    halted: Array


class _StateBefore(eqx.Module):
    """A checkpoint written before ``TrainState.halted`` existed (read-only)."""

    params: Any
    opt_state: Any
    step: Array
    data_key: Array


def _lr_multiplier(lr_multiplier):
    """u ← c·u: a member's learning rate over the optimiser's (``TrainConfig.lr_grid``)."""
    return optax.scale(lr_multiplier)


def _with_hyperparam(opt_state: Any, name: str, values: Array) -> Any:
    """``opt_state`` with the injected hyperparameter ``name`` set to ``values`` (one per
    member) in every ``inject_hyperparams`` state that has it."""
    def put(node):
        if hasattr(node, "hyperparams") and name in node.hyperparams:
            hyper = dict(node.hyperparams)
            hyper[name] = values.astype(jnp.asarray(hyper[name]).dtype)
            return node._replace(hyperparams=hyper)
        return node

    return jax.tree.map(put, opt_state, is_leaf=lambda x: hasattr(x, "hyperparams"))


def _all_finite(tree: Any) -> Array:
    """One bool: every floating leaf of ``tree`` is finite.

    One reduction over the leaves concatenated, not one per leaf: XLA:CPU compiles each
    reduction as its own kernel, and a per-leaf check inside the training step made a
    16-block GPT's chunk compile in 24 s instead of 9 s (same steps/s)."""
    leaves = [x.ravel() for x in jax.tree.leaves(tree)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.isfinite(jnp.concatenate(leaves)).all() if leaves else jnp.asarray(True)


def _finite_per_seed(params: Any, seeds: int) -> np.ndarray:
    """(seeds,) bool: every floating leaf of the stacked parameters is finite."""
    ok = np.ones(seeds, bool)
    for leaf in jax.tree.leaves(params):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact):
            ok &= np.asarray(jnp.isfinite(leaf).reshape(seeds, -1).all(axis=1))
    return ok


def _divergences(losses: np.ndarray, metrics: dict[str, np.ndarray], start: int,
                 known: set) -> dict[int, int]:
    """Seeds (not in ``known``) that became non-finite in a chunk from step ``start``:
    seed → (step, what): the step of the first non-finite training loss (the loss at scan
    index i is that of step ``start + i``), or the chunk's end when only an evaluation
    metric is non-finite."""
    found = {}
    seeds = losses.shape[0]
    for s in range(seeds):
        if s in known:
            continue
        bad = np.flatnonzero(~np.isfinite(losses[s]))
        if bad.size:
            found[s] = (start + int(bad[0]), "training loss")
            continue
        for name, v in metrics.items():
            if np.size(v) % seeds == 0 and not np.all(
                    np.isfinite(np.asarray(v, float).reshape(seeds, -1)[s])):
                found[s] = (start + losses.shape[1], f"evaluation metric {name}")
                break
    return found


def _is_array_like(x) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct)


def _abstract_model(init_model: Callable) -> Any:
    """The model's structure with its arrays as shapes (``eqx.filter_eval_shape``: nothing
    is computed, so a trainer is built without running the initialisation eagerly, op by
    op); a model whose construction needs concrete values is built for real."""
    try:
        return eqx.filter_eval_shape(init_model, jax.random.key(0))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
            jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError):
        return init_model(jax.random.key(0))


def _nan_where(values: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """``values`` (seeds, ...) with the rows of the ``seeds`` mask set to NaN."""
    values = np.array(values, dtype=np.result_type(values.dtype, np.float32))
    values[seeds] = np.nan
    return values


def roles_of(model) -> Callable | None:
    """params → roles for a ``ParameterRolesModel`` (the optimiser's weight-decay masks),
    None for a model that does not label its parameters."""
    from iclab.models import ParameterRolesModel

    if isinstance(model, ParameterRolesModel):
        return lambda params: params.parameter_roles()
    return None


def check_training(problem: "Problem", optim: OptimConfig, train: TrainConfig) -> None:
    """Raise the ``ConfigError`` a ``Trainer`` of this problem would raise, without
    building the model (its shapes only): e.g. ``optim.attention_weight_decay`` for a model
    that does not label its parameters."""
    example = eqx.filter_eval_shape(problem.init_model, jax.random.key(0))
    make_optimizer(optim, train.steps, roles=roles_of(example), scaling=problem.scaling)


class Trainer:
    """Trains ``train.seeds`` copies of a problem's model as one vmapped program.

    Args:
        problem: what to train.
        optim: the optimiser.
        train: steps, batch, evaluation interval, seeds (and an ``lr_grid``).
        data: optional data parameters, one per group (e.g. ``[{"noise_std": 1.0},
            {"noise_std": 3.0}]``), for a problem with a ``Packable``: every group trains
            ``train.seeds`` seeds of ``problem.packable.rebuild(values)``, all in one
            program. Member k is group ``k // seeds``'s seed ``train.seed + k % seeds``
            (each group starts from the same initialisations, as an ``lr_grid`` does);
            ``eval_data`` is then stacked over the groups on a leading axis. Not together
            with an ``lr_grid`` or probes.
        group_tags: with ``data``, the tag of each group: its members' metric rows are
            named ``"{tag}/{metric}"`` with seeds ``train.seed + k % seeds`` (as if each
            group had trained alone under that tag). Default: rows as without groups.
    """

    def __init__(self, problem: Problem, optim: OptimConfig, train: TrainConfig,
                 data: Sequence | None = None, group_tags: Sequence[str] | None = None):
        self.problem, self.train = problem, train
        self.group_tags = list(group_tags) if group_tags else None
        if self.group_tags is not None and len(self.group_tags) != len(data or ()):
            raise ValueError(f"{len(self.group_tags)} group tags for "
                             f"{len(data or ())} data groups")
        self.groups = len(data) if data else 1
        """Data groups trained together (1 without ``data``)."""
        self._data = list(data) if data else None
        if self._data is not None:
            if problem.packable is None:
                raise ValueError("Trainer(data=...) needs a problem with a Packable "
                                 "(problem.packable is None)")
            if train.lr_grid or train.probes.every:
                raise ValueError("Trainer(data=...) packs data groups alone: not with "
                                 "train.lr_grid or train.probes")
        example = _abstract_model(problem.init_model)
        roles = roles_of(example)
        self.optimizer = make_optimizer(optim, train.steps, roles=roles,
                                        scaling=problem.scaling)
        from iclab.models import StatefulModel

        self._stateful = isinstance(example, StatefulModel)
        if self._stateful and roles is not None:  # the optimiser never moves "state"
            self.optimizer = optax.chain(self.optimizer, optax.masked(
                optax.set_to_zero(), lambda p: jax.tree.map(lambda r: r == "state",
                                                            roles(p))))
        if train.lr_grid:  # one more injected factor: each member's lr over optim.lr
            self.optimizer = optax.chain(self.optimizer, optax.inject_hyperparams(
                _lr_multiplier)(lr_multiplier=1.0))
        self._base_lr = optim.lr
        self.members = train.members * self.groups
        """Models trained together: ``train.seeds`` × the learning rates of its grid, or
        × the data groups."""
        self._roles = roles
        _, self.static = eqx.partition(example, _is_array_like)
        self._chunk = jax.jit(self._run_chunk, static_argnums=1, donate_argnums=0)
        self._compiled: dict[int, Any] = {}
        self.compile_seconds = 0.0
        """Seconds spent compiling chunk programs (kept out of the steps/s figure)."""
        self.train_seconds = 0.0
        """Seconds spent running compiled chunks in ``fit`` (the steps themselves)."""
        self.fit_seconds = 0.0
        """Wall seconds of every ``fit`` call: compilation, the steps, and the rest
        (evaluation, probes, metric rows and checkpoints)."""
        self.steps_trained = 0
        """Steps ``fit`` ran in this process (a resumed run counts from its checkpoint)."""
        self._evaluate = jax.jit(jax.vmap(self._evaluate_one, in_axes=(0, None)))
        self._evaluate_groups = jax.jit(jax.vmap(jax.vmap(
            self._evaluate_data, in_axes=(0, None, None)), in_axes=(0, 0, 0)))
        self._init = jax.jit(jax.vmap(self._init_one))
        self._history: dict[str, list] = {"step": [], "seed": [], "metric": [], "value": []}
        self._probe = jax.jit(jax.vmap(self._probe_one, in_axes=(0, 0, None, 0)))
        self._probe_batch = None
        self._initial_params = None

    @property
    def history(self):
        """Every evaluation this trainer recorded (all ``fit`` calls), as a pandas
        DataFrame with columns step, seed, metric, value — the in-memory sink, kept with or
        without a run folder. Metric names carry the ``tag`` prefix of the fit."""
        import pandas as pd

        return pd.DataFrame(self._history)

    # -- pure pieces ---------------------------------------------------------------
    def model(self, params: Any) -> eqx.Module:
        return eqx.combine(params, self.static)

    def models(self, state: TrainState) -> list[eqx.Module]:
        """The model of every seed in a stacked state, in seed order."""
        return [self.model(jax.tree.map(lambda a, s=s: a[s], state.params))
                for s in range(self.members)]

    def _init_one(self, seed_key: PRNGKeyArray) -> TrainState:
        init_key, data_key = jax.random.split(seed_key)
        params, _ = eqx.partition(self.problem.init_model(init_key), eqx.is_array)
        if self.train.init_scale != 1.0:
            params = self._scaled(params, self.train.init_scale)
        return TrainState(params, self.optimizer.init(params), jnp.zeros((), jnp.int32),
                          jax.random.key_data(data_key), jnp.zeros((), bool))

    def precision(self):
        """The context of the run's floating-point type (``jax.enable_x64`` for float64)."""
        return jax.enable_x64(self.train.precision == "float64")

    def init(self, first_seed: int | None = None) -> TrainState:
        """The stacked initial state of all seeds (seed s: ``first_seed + s``, default
        ``train.seed + s``)."""
        first = self.train.seed if first_seed is None else first_seed
        seeds = self.train.seeds
        with self.precision():
            keys = jnp.stack([jax.random.key(first + k % seeds) for k in range(self.members)])
            state = self._init(keys)
            if not self.train.lr_grid:
                return state
            factors = jnp.asarray([self.train.member_lr(k) / self._base_lr
                                   for k in range(self.members)], jnp.float32)
            return eqx.tree_at(lambda t: t.opt_state, state, _with_hyperparam(
                state.opt_state, "lr_multiplier", factors))

    def _scaled(self, params: Any, scale: float) -> Any:
        if self._roles is None:
            return jax.tree.map(lambda p: p * scale, params)
        weights = ("embedding", "attention", "mlp", "readout")
        return jax.tree.map(lambda p, r: p * scale if r in weights else p, params,
                            self._roles(params))

    def _problem_for(self, data: Any) -> Problem:
        """The problem of one member: with its (traced) data parameters, when packed."""
        return self.problem if data is None else self.problem.packable.rebuild(data)

    def member_data(self) -> Any:
        """The data parameters of every member, stacked (None without ``data``)."""
        if self._data is None:
            return None
        seeds = self.train.seeds
        with self.precision():
            return jax.tree.map(lambda *v: jnp.repeat(jnp.stack(
                [jnp.asarray(x, dtype=jnp.result_type(float)) for x in v]), seeds, axis=0),
                *self._data)

    def _step_one(self, state: TrainState, data: Any) -> tuple[TrainState, Array]:
        problem = self._problem_for(data)
        data_key = jax.random.wrap_key_data(state.data_key)
        key = jax.random.fold_in(data_key, state.step)
        if problem.sample_scheduled is None:
            batch = problem.sample_batch(key, self.train.batch_size)
        else:
            batch = problem.sample_scheduled(key, self.train.batch_size, state.step)
        loss, grads = jax.value_and_grad(
            lambda p: problem.loss(self.model(p), batch))(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if self._stateful:  # e.g. σReparam's power iteration, after the step
            params = eqx.filter(self.model(params).refreshed(), eqx.is_array)
        ok = ~state.halted & jnp.isfinite(loss) & _all_finite(params)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
        return (TrainState(params, opt_state, state.step + 1, state.data_key, ~ok),
                jnp.where(ok, loss, jnp.nan))

    def _run_chunk(self, state: TrainState, length: int, data: Any
                   ) -> tuple[TrainState, Array]:
        scan = lambda s, d: jax.lax.scan(lambda st, _: self._step_one(st, d), s, None,
                                         length=length)
        return jax.vmap(scan)(state, data)

    def _evaluate_one(self, params: Any, eval_data: Any) -> dict[str, Array]:
        return self.problem.evaluate(self.model(params), eval_data)

    def _evaluate_data(self, params: Any, data: Any, eval_data: Any) -> dict[str, Array]:
        return self._problem_for(data).evaluate(self.model(params), eval_data)

    def _probe_one(self, params: Any, opt_state: Any, batch: Any, initial: Any
                   ) -> dict[str, Array]:
        return probe_metrics(self.problem, self.optimizer, self.train.probes,
                             self.model(params), opt_state, batch, self.model(initial))

    def probe(self, state: TrainState) -> dict[str, np.ndarray]:
        """The ``train.probes`` instruments of every seed on the fixed probe batch
        (drawn once, key ``probes.seed``); see ``iclab.engine.ProbeConfig``."""
        if self._probe_batch is None:
            with self.precision():
                self._probe_batch = self.problem.sample_batch(
                    jax.random.key(self.train.probes.seed), self.train.probes.batch_size)
            # the initial parameters are a function of the seeds: the same after a resume
            self._initial_params = self.init().params
        with _PROBE_LOCK, self.precision():
            out = self._probe(state.params, state.opt_state, self._probe_batch,
                              self._initial_params)
            return {k: np.asarray(v) for k, v in out.items()}

    def _with_probes(self, step: int, state: TrainState, metrics: dict) -> dict:
        every = self.train.probes.every
        return {**metrics, **self.probe(state)} if every and step % every == 0 else metrics

    # -- the loop ------------------------------------------------------------------
    def chunk(self, state: TrainState, length: int) -> tuple[TrainState, Array]:
        """``length`` steps for every seed; returns the new state and losses (seeds, length).

        The program for each chunk length is compiled ahead of time once (its time is
        added to ``compile_seconds``), so a timed chunk measures training alone."""
        with self.precision():
            return self._program(state, length)(state)

    def _program(self, state: TrainState, length: int):
        """The compiled chunk of ``length`` steps, a function of the state alone."""
        if length not in self._compiled:
            start = time.perf_counter()
            data = self.member_data()
            with self.precision():
                compiled = self._chunk.lower(state, length, data).compile()
            self._compiled[length] = lambda s, c=compiled, d=data: c(s, d)
            self.compile_seconds += time.perf_counter() - start
        return self._compiled[length]

    def evaluate(self, state: TrainState, eval_data: Any, halted_as_nan: bool = True
                 ) -> dict[str, np.ndarray]:
        """``problem.evaluate`` for every seed: metric → (seeds, ...). A halted (diverged)
        seed reads NaN unless ``halted_as_nan`` is False (then: its last finite model)."""
        with self.precision():
            if self._data is None:
                out = self._evaluate(state.params, eval_data)
            else:  # (groups, seeds, ...) over the groups' data and stacked eval_data
                g, s = self.groups, self.train.seeds
                grouped = jax.tree.map(lambda a: a.reshape(g, s, *a.shape[1:]), state.params)
                data = jax.tree.map(lambda a: a[::s], self.member_data())
                out = jax.tree.map(lambda a: a.reshape(g * s, *a.shape[2:]),
                                   self._evaluate_groups(grouped, data, eval_data))
            out = {k: np.asarray(v) for k, v in out.items()}
        halted = np.asarray(state.halted)
        if halted_as_nan and halted.any():
            out = {k: _nan_where(v, halted) for k, v in out.items()}
        return out

    def fit(self, eval_data: Any, run=None, progress=None, state: TrainState | None = None,
            tag: str = "", stop: Callable[[int, dict], bool] | None = None,
            log: Callable[[str], None] | None = None) -> TrainState:
        """Train to ``train.steps``, evaluating and checkpointing every ``eval_every`` steps.

        Returns the final state; the metric history (train loss and every evaluation) is
        in ``trainer.history`` whether or not a run folder is given.

        Args:
            eval_data: passed to ``problem.evaluate``.
            run: a ``RunDir`` to write metric parts and checkpoints to; if it holds
                a checkpoint, training resumes from it.
            progress: optional callback ``(step, total, train_loss, steps_per_s)``.
            state: start from this state instead of a fresh init.
            tag: names this model when a run trains several: metrics are written as
                ``"{tag}/{metric}"`` and the checkpoint as ``checkpoint-{tag}``.
            stop: optional early-stopping rule ``(step, metrics) -> bool`` checked after
                every evaluation (and on resume, on the restored state, so a resumed run
                stops where the uninterrupted one did).
            log: optional callback for one-line messages (a seed's divergence).

        Divergence is an outcome, not an error. The first step at which a seed's training
        loss or updated parameters are NaN or ±inf (or, at an evaluation, an evaluation
        metric) stops that seed (``TrainState.halted``); the other seeds go on. It is
        recorded once, as the metric ``diverged_step`` (value: that step) at the
        evaluation that saw it, and logged; the seed's last finite model is evaluated and
        its metrics recorded at that step; its later evaluations and its final ones read
        NaN, and its model (``models``) is the last finite one.
        """
        began = time.perf_counter()
        try:
            return self._fit(eval_data, run, progress, state, tag, stop, log)
        finally:
            self.fit_seconds += time.perf_counter() - began

    def _fit(self, eval_data, run, progress, state, tag, stop, log) -> TrainState:
        state = self.init() if state is None else state
        ckpt = f"checkpoint-{tag}" if tag else "checkpoint"
        if run is not None and run.checkpoint_step(ckpt) is not None:
            state = self._restore(run, ckpt, state)
        step = int(state.step[0])
        # a resumed seed that halted (or, in an older checkpoint, whose parameters are
        # non-finite) diverged, and was recorded, before the checkpoint
        diverged = set(np.flatnonzero(np.asarray(state.halted)
                                      | ~_finite_per_seed(state.params, self.members)))
        metrics = self.evaluate(state, eval_data) if (step == 0 or stop is not None) else {}
        if step == 0:
            self._record(run, 0, self._with_probes(0, state, metrics), None, tag)
        while step < self.train.steps and not (stop is not None and stop(step, metrics)):
            length = min(self.train.eval_every, self.train.steps - step)
            program = self._program(state, length)  # compiled before the clock starts
            start = time.perf_counter()
            state, losses = program(state)
            losses = np.asarray(losses)  # the one host sync per chunk
            took = time.perf_counter() - start
            self.train_seconds += took
            self.steps_trained += length
            rate = length / took
            metrics = self._with_probes(step + length, state,
                                        self.evaluate(state, eval_data, halted_as_nan=False))
            new = _divergences(losses, metrics, step, diverged)
            if new:
                state = self._halt(state, list(new))
                self._record_last_finite(run, step + length, new, metrics, tag)
            stopped = np.asarray(state.halted)
            if stopped.any():
                metrics = {k: _nan_where(v, stopped) if np.size(v) % len(stopped) == 0
                           and np.shape(v)[:1] == stopped.shape else v
                           for k, v in metrics.items()}
            step += length
            self._record(run, step, metrics, losses.mean(axis=1), tag, new)
            for s, (at, what) in new.items():
                diverged.add(s)
                if log is not None:
                    seed, metric = self._row(s, "", tag)
                    log(f"{metric.rstrip('/') or 'model'}: seed {seed} diverged at step {at} "
                        f"(non-finite {what})")
            if run is not None:
                run.save_checkpoint(state, step, ckpt)
            if progress is not None:
                progress(step, self.train.steps, float(losses[:, -1].mean()), rate)
        return state

    def _restore(self, run, name: str, like: TrainState) -> TrainState:
        try:
            return run.load_checkpoint(like, name)
        except Exception:  # noqa: BLE001 - a checkpoint from before ``halted``
            old = run.load_checkpoint(_StateBefore(like.params, like.opt_state, like.step,
                                                   like.data_key), name)
            return TrainState(old.params, old.opt_state, old.step, old.data_key,
                              like.halted)

    def _halt(self, state: TrainState, seeds: list[int]) -> TrainState:
        """Mark ``seeds`` halted (a seed whose evaluation, not training, went non-finite
        is stopped here, on the host)."""
        halted = np.asarray(state.halted).copy()
        halted[seeds] = True
        return eqx.tree_at(lambda s: s.halted, state, jnp.asarray(halted))

    def _row(self, k: int, name: str, tag: str) -> tuple[int, str]:
        """The seed and metric name of member k's rows."""
        if self.group_tags is not None:
            return (self.train.member_seed(k), f"{self.group_tags[k // self.train.seeds]}/"
                                               f"{name}")
        return self.train.seed + k, f"{tag}/{name}" if tag else name

    def _record_last_finite(self, run, end: int, new: dict, metrics: dict, tag: str) -> None:
        """The evaluation of each newly diverged seed's last finite model, at the step it
        diverged (it kept the parameters that step started from)."""
        from iclab.store import MetricRows

        rows = MetricRows()
        for s, (at, what) in new.items():
            if what != "training loss":
                continue  # the model itself is finite: its metrics are not
            for name, values in metrics.items():
                values = np.asarray(values)
                if values.shape[:1] != (self.members,):
                    continue
                seed, metric = self._row(s, name, tag)
                for v in values[s].reshape(-1):
                    rows.add(at, seed, metric, float(v))
        for key, column in rows.columns.items():
            self._history[key].extend(column)
        if run is not None and rows.columns["step"]:
            run.write_metrics(f"{tag or 'train'}-{end:09d}-last-finite", rows)

    def _record(self, run, step: int, metrics: dict[str, np.ndarray],
                train_loss: np.ndarray | None, tag: str,
                diverged: dict[int, tuple[int, str]] | None = None) -> None:
        if train_loss is not None:
            metrics = {"train_loss": train_loss, **metrics}
        from iclab.store import MetricRows

        rows = MetricRows()
        for name, values in metrics.items():
            values = np.asarray(values).reshape(-1)
            per_member = values.size // self.members if values.size % self.members == 0 \
                else None
            for i, v in enumerate(values):
                k = i if per_member is None else i // per_member
                seed, metric = self._row(k, name, tag) if self.group_tags is not None \
                    else (self.train.seed + i, f"{tag}/{name}" if tag else name)
                rows.add(step, seed, metric, float(v))
        for s, (at, _) in (diverged or {}).items():
            seed, metric = self._row(s, "diverged_step", tag)
            rows.add(step, seed, metric, float(at))
        for key, column in rows.columns.items():
            self._history[key].extend(column)
        if run is not None:
            run.write_metrics(f"{tag or 'train'}-{step:09d}", rows)
