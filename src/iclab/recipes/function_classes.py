"""function-classes: "What can transformers learn in-context?" (Garg et al., NeurIPS 2022).

Claim reproduced (Fig. 2, linear regression): a GPT-style transformer trained from
scratch on prompts x_1, y_1, …, x_K, y_K of random linear functions (x, w ~ N(0, I_d))
learns to regress in context: its normalised squared error at prefix length k falls
like that of least squares (≈ 0 once k ≥ d), far below 3-nearest-neighbours and
averaging. The loss covers every prefix; errors are divided by d (the zero estimator
scores 1) and shown with 90 % bootstrap intervals over the evaluation prompts.

Any class of ``FunctionClassTask`` can be trained with ``--set task.kind=...``
(linear, sparse_linear, quadratic, relu_net, decision_tree); errors are divided by
the class's normaliser. Baselines: least squares, ridge, 3-NN and averaging, a 2-layer
ReLU network trained by Adam on each prefix (Garg et al.'s "2-layer NN"), Lasso (ISTA)
for sparse regression, and a greedy regression tree of the task's depth
(``tree_prefix_predictions``, CART) for decision trees. For the linear class the
trained model and the baselines are also evaluated on Garg et al.'s
out-of-distribution prompts (``ood_prompts``: random quadrants, orthogonal and
repeated queries, half subspace, skewed covariance, scaled inputs and weights, noisy
labels) — measured and reported, not claimed. The full mode follows Garg et al.'s
curriculum (``CurriculumConfig``). With the optional extra ``iclab[trees]`` decision
trees are also compared with the unbounded-depth tree (scikit-learn) and XGBoost, on
``eval.external_prompts`` prompts. Each class carries Garg et al.'s claim for it
(``class_claims``): linear — near least squares, better than 3-NN and averaging; sparse
linear — better than least squares below k = d and as good as Lasso; decision trees —
better than the greedy tree and XGBoost; ReLU networks — as good as the Adam-trained
network and better than least squares. Quadratic functions carry none.
In the full mode, decision trees and ReLU networks get Garg et al.'s 101 points
(curriculum 26 → 101 by 5; ``resolve``) unless those keys are set on the command line.

Warning:
    Garg et al. train a 12-layer, 256-wide model for 500k steps with a curriculum
    (d from 5 to 20). ``--quick`` trains the "tiny" model (3 layers, 2 heads, width 64)
    on d = 5, 11 points, for 8000 steps at lr 1e-3 without curriculum.
"""

from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from iclab._errors import check_nonnegative, check_positive, check_positive_int
from iclab.config import apply_overrides
from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer
from iclab.instruments import bootstrap_mean_ci
from iclab.models import GPT, GPTConfig
from iclab.recipes._base import Recipe, register
from iclab.recipes._claims import check
from iclab.report import figure, plot_metric_by_seed, save_figure, write_report
from iclab.solvers import (
    available,
    lasso_weights,
    network_prefix_predictions,
    prefix_predictions,
    sklearn_tree_prefix_predictions,
    tree_prefix_predictions,
    xgboost_prefix_predictions,
)
from iclab.store import MetricRows
from iclab.tasks import (
    FunctionClassTask,
    RegressionExample,
    all_points,
    interleave,
    ood_prompts,
    query_prompt_predictions,
    to_interleaved_tokens,
)

PAPER = ("Garg, Tsipras, Liang, Valiant: What Can Transformers Learn In-Context? A Case Study "
         "of Simple Function Classes, NeurIPS 2022 (arXiv 2208.01066).")
BASELINES = {"least squares": "least_squares", "ridge (λ=0.1)": "ridge", "3-NN": "knn",
             "averaging": "averaging"}
LASSO_ALPHAS = (0.1, 0.01)


@dataclass(frozen=True)
class PromptEvalConfig:
    """Args:
        prompts: evaluation prompts (Garg et al.: 1280 = 20 batches of 64).
        seed: key of the evaluation prompts.
        bootstrap: bootstrap resamples for the 90 % intervals.
        external_prompts: prompts (the first ones) for the host-side baselines of
            decision trees — the unbounded-depth tree (scikit-learn) and XGBoost, one fit
            per prefix; used when the optional extra ``iclab[trees]`` is installed
            (0 = skip).
    """

    prompts: int = 1280
    seed: int = 5
    bootstrap: int = 1000
    external_prompts: int = 64

    def __post_init__(self):
        check_positive_int("eval.prompts", self.prompts)
        check_positive_int("eval.bootstrap", self.bootstrap)
        check_nonnegative("eval.external_prompts", self.external_prompts)


@dataclass(frozen=True)
class OODConfig:
    """Args:
        prompts: prompts per out-of-distribution strategy (0 = skip the evaluation).
        scales: factors of the scale_x and scale_y strategies.
        seed: key of the prompts.
    """

    prompts: int = 1280
    scales: tuple[float, ...] = (1 / 3, 1 / 2, 2.0, 3.0)
    seed: int = 11

    def __post_init__(self):
        check_nonnegative("ood.prompts", self.prompts)
        for s in self.scales:
            check_positive("ood.scales", s)


@dataclass(frozen=True)
class CurriculumConfig:
    """Garg et al.'s curriculum (``curriculum.py``): every ``interval`` steps the active
    input dimensions grow by ``dims_inc`` from ``dims_start`` up to ``task.d`` and the
    prompt's points by ``points_inc`` from ``points_start`` up to N + 1. Inactive
    coordinates of x are zeroed (so only the active part of w matters) and points beyond
    the active count are left out of the loss — with a causal model the same as
    truncating the prompt. ``enabled`` = False trains on the full task from step 0.
    """

    enabled: bool = False
    dims_start: int = 5
    dims_inc: int = 1
    points_start: int = 11
    points_inc: int = 2
    interval: int = 2000

    def __post_init__(self):
        for key in ("dims_start", "points_start", "interval"):
            check_positive_int(f"curriculum.{key}", getattr(self, key))
        for key in ("dims_inc", "points_inc"):
            check_nonnegative(f"curriculum.{key}", getattr(self, key))

    def at(self, step, d: int, points: int):
        """(active dimensions, active points) at ``step`` (traced or concrete)."""
        stage = step // self.interval
        return (jnp.minimum(d, self.dims_start + self.dims_inc * stage),
                jnp.minimum(points, self.points_start + self.points_inc * stage))


class MaskedPrompts(eqx.Module):
    """A batch of prompts of which only the first ``points`` points count in the loss."""

    example: RegressionExample
    points: Array


@dataclass(frozen=True)
class FunctionClassesConfig:
    task: FunctionClassTask = field(default_factory=lambda: FunctionClassTask(
        kind="linear", d=20, n_context=40))
    model: GPTConfig = field(default_factory=lambda: GPTConfig(width=256, layers=12, heads=8))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=1e-4,
                                                                   b2=0.999))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=500_000, batch_size=64, eval_every=5000, seeds=1))
    eval: PromptEvalConfig = field(default_factory=PromptEvalConfig)
    ood: OODConfig = field(default_factory=OODConfig)
    network_baseline: bool = True
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)


def full_config() -> FunctionClassesConfig:
    """Garg et al.'s standard model, schedule and curriculum (d 5 → 20, 11 → 41 points):
    GPU-scale (80 steps/s on one H100, so about 1.7 h for the 500k steps)."""
    return FunctionClassesConfig(curriculum=CurriculumConfig(enabled=True))


GARG_POINTS = {"decision_tree": {"task.n_context": 100, "curriculum.points_start": 26,
                                  "curriculum.points_inc": 5}}
GARG_POINTS["relu_net"] = GARG_POINTS["decision_tree"]
"""Garg et al.'s prompt lengths for the classes that differ from the default 41 points
(``conf/*.yaml`` of their code)."""


def resolve(config: FunctionClassesConfig, mode: str, set_keys: frozenset[str]
            ) -> FunctionClassesConfig:
    """The full mode with Garg et al.'s points for the chosen class, except where set."""
    if mode != "full":
        return config
    defaults = GARG_POINTS.get(config.task.kind, {})
    return apply_overrides(config, [f"{key}={value}" for key, value in defaults.items()
                                    if key not in set_keys])


def quick_config() -> FunctionClassesConfig:
    """d = 5, 11 points, the tiny model, 8000 steps at lr 1e-3, 2 seeds."""
    return FunctionClassesConfig(
        task=FunctionClassTask(kind="linear", d=5, n_context=10),
        model=GPTConfig(width=64, layers=3, heads=2),
        optim=OptimConfig(name="adam", lr=1e-3, b2=0.999),
        train=TrainConfig(steps=8000, batch_size=64, eval_every=500, seeds=2),
        ood=OODConfig(prompts=256))


def prompt_predictions(model, batch):
    """The model's prediction of y_i at every x_i position: shape (B, K)."""
    return jax.vmap(model)(jax.vmap(to_interleaved_tokens)(batch))[:, ::2]


def prompt_loss(model, batch):
    """Mean squared error over all prompts and all prefixes (Garg et al.'s objective);
    for ``MaskedPrompts`` only the first ``points`` predictions of each prompt count."""
    points = None
    if isinstance(batch, MaskedPrompts):
        batch, points = batch.example, batch.points
    _, y = jax.vmap(all_points)(batch)
    errors = (prompt_predictions(model, batch) - y) ** 2
    if points is None:
        return jnp.mean(errors)
    mask = (jnp.arange(y.shape[1])[None, :] < points[:, None]).astype(errors.dtype)
    return jnp.sum(errors * mask) / jnp.sum(mask)


def make_problem(config: FunctionClassesConfig) -> Problem:
    model_config = config.model.resolve(config.task.d)
    task, curriculum = config.task, config.curriculum
    k = task.n_context + 1

    def sample_scheduled(key, batch_size, step):
        dims, points = curriculum.at(step, task.d, k)
        return MaskedPrompts(task.sample_batch(key, batch_size, active_dims=dims),
                             jnp.full((batch_size,), points))

    return Problem(init_model=lambda key: GPT(model_config, key=key),
                   sample_batch=task.sample_batch, loss=prompt_loss,
                   evaluate=lambda model, batch: {"test_loss": prompt_loss(model, batch)},
                   sample_scheduled=sample_scheduled if curriculum.enabled else None)


def _lasso_prefix(x, y, alpha):
    """Lasso's prediction of y_i from the first i − 1 pairs, for every i (0 for i = 1)."""
    k = x.shape[0]
    masks = (jnp.arange(k)[None, :] < jnp.arange(k)[:, None]).astype(x.dtype)
    # lasso_weights normalises the squared error by all K rows; α·n/K keeps the penalty
    # that of the n pairs actually seen.
    weights = jax.vmap(lambda m: lasso_weights(x * m[:, None], y * m, alpha * m.sum() / k,
                                               500))(masks)
    return jnp.einsum("kd,kd->k", weights, x)


def xgboost_name(prompts: int) -> str:
    """The curve name of XGBoost, fitted on the first ``prompts`` evaluation prompts."""
    return f"XGBoost ({prompts} prompts)"


def _external_tree_curves(config, x, y, norm, console) -> dict:
    """The unbounded tree (scikit-learn) and XGBoost on the first ``eval.external_prompts``
    prompts, if the optional extra is installed."""
    n = min(config.eval.external_prompts, x.shape[0])
    if n == 0:
        return {}
    if not (available("sklearn") and available("xgboost")):
        console.print("decision-tree baselines: the unbounded tree and XGBoost need the "
                      "optional extra: pip install 'iclab[trees]' (skipped)")
        return {}
    x, y = np.asarray(x[:n]), np.asarray(y[:n])
    curves = {}
    for name, learner in ((f"tree, unbounded (sklearn, {n} prompts)",
                           sklearn_tree_prefix_predictions),
                          (xgboost_name(n), xgboost_prefix_predictions)):
        curves[name] = bootstrap_mean_ci((learner(x, y) - y) ** 2 / norm,
                                         config.eval.bootstrap)
    return curves


def run(config: FunctionClassesConfig, run_dir, console, mode: str = "full") -> list:
    from iclab._console import training_progress

    norm = config.task.normaliser
    eval_batch = config.task.sample_batch(jax.random.key(config.eval.seed), config.eval.prompts)
    trainer = Trainer(make_problem(config), config.optim, config.train)
    start = run_dir.checkpoint_step() or 0
    with training_progress(console, f"GPT on {config.task.kind} functions", config.train.steps,
                           start) as progress:
        state = trainer.fit(eval_batch, run=run_dir, progress=progress)
    x, y = jax.vmap(all_points)(eval_batch)
    curves = {}  # name -> (mean, low, high) of the normalised error per prefix length
    seeds = range(config.train.seed, config.train.seed + config.train.seeds)
    per_seed = []
    for s in range(config.train.seeds):
        model = trainer.model(jax.tree.map(lambda a, s=s: a[s], state.params))
        per_seed.append(np.asarray((prompt_predictions(model, eval_batch) - y) ** 2) / norm)
    curves["transformer"] = bootstrap_mean_ci(np.mean(per_seed, axis=0), config.eval.bootstrap)
    for name, learner in BASELINES.items():
        preds = jax.vmap(lambda a, b, lr=learner: prefix_predictions(lr, a, b))(x, y)
        curves[name] = bootstrap_mean_ci(np.asarray((preds - y) ** 2) / norm,
                                         config.eval.bootstrap)
    if config.network_baseline:
        keys = jax.random.split(jax.random.key(config.eval.seed + 1), x.shape[0])
        preds = jax.jit(jax.vmap(network_prefix_predictions))(keys, x, y)
        curves["2-layer NN (Adam)"] = bootstrap_mean_ci(np.asarray((preds - y) ** 2) / norm,
                                                       config.eval.bootstrap)
    if config.task.kind == "decision_tree":
        preds = jax.jit(jax.vmap(lambda a, b: tree_prefix_predictions(a, b, config.task.depth)))(
            x, y)
        curves[f"greedy tree (depth {config.task.depth})"] = bootstrap_mean_ci(
            np.asarray((preds - y) ** 2) / norm, config.eval.bootstrap)
        curves.update(_external_tree_curves(config, x, y, norm, console))
    if config.task.kind == "sparse_linear":
        for alpha in LASSO_ALPHAS:
            preds = jax.vmap(lambda a, b, al=alpha: _lasso_prefix(a, b, al))(x, y)
            curves[f"Lasso (α={alpha:g})"] = bootstrap_mean_ci(
                np.asarray((preds - y) ** 2) / norm, config.eval.bootstrap)

    rows = MetricRows()
    k_points = np.arange(x.shape[1])  # in-context examples seen before each prediction
    for name, (mean, low, high) in curves.items():
        for k in k_points:
            rows.add(int(k), -1, f"error/{name}", mean[k])
            rows.add(int(k), -1, f"error_ci90_low/{name}", low[k])
            rows.add(int(k), -1, f"error_ci90_high/{name}", high[k])
    for seed, errors in zip(seeds, per_seed, strict=True):
        for k in k_points:
            rows.add(int(k), seed, "error/transformer_seed", errors[:, k].mean())
    ood = (ood_errors(config, trainer.models(state))
           if config.task.kind == "linear" and config.ood.prompts else {})
    for name, per_model in ood.items():
        for learner, errors in per_model.items():
            for k, value in enumerate(errors):
                rows.add(k, -1, f"ood/{name}/{learner}", float(value))
    run_dir.write_metrics("final", rows)

    claims = class_claims(config.task, {name: c[0] for name, c in curves.items()},
                          np.mean(per_seed, axis=0), config.eval.external_prompts)

    metrics = run_dir.metrics()
    figures_dir = run_dir.path / "figures"
    fig, (ax,) = figure(1, width=6)
    for c, (name, (mean, low, high)) in enumerate(curves.items()):
        ax.plot(k_points, mean, "o-" if name == "transformer" else "--", color=f"C{c}",
                label=name, ms=3)
        ax.fill_between(k_points, low, high, color=f"C{c}", alpha=0.2)
        if name == "transformer" and len(per_seed) > 1:
            for errors in per_seed:  # each training seed, thin
                ax.plot(k_points, errors.mean(0), "-", color=f"C{c}", lw=0.7, alpha=0.5)
    ax.axvline(config.task.d, color="gray", ls=":", lw=1)
    ax.set_xlabel("in-context examples k")
    ax.set_ylabel(f"squared error / {norm:g}")
    ax.set_ylim(-0.05, 1.6)
    ax.legend(fontsize=8)
    figures = [{"svg": save_figure(fig, figures_dir, "error_vs_k"),
                "caption": "Normalised squared error of the k+1-th prediction against the "
                           "number of in-context examples k (bands: 90 % bootstrap intervals "
                           "over prompts; thin lines: the transformer's training seeds; dotted "
                           "line: k = d)."}]
    fig, (ax,) = figure(1, width=6)
    plot_metric_by_seed(ax, metrics, "test_loss", "transformer (all prefixes)")
    ax.set_yscale("log")
    ax.legend()
    figures.append({"svg": save_figure(fig, figures_dir, "loss"),
                    "caption": "Evaluation loss during training (thin: seeds, thick: mean)."})
    table = [[int(k)] + [float(curves[name][0][k]) for name in curves] for k in k_points]
    sections = [{"title": "Normalised error by number of in-context examples",
                 "table": {"columns": ["k"] + list(curves), "rows": table}}]
    if ood:
        figures.append(_ood_figure(ood, config, figures_dir))
        d = config.task.d
        sections.append({
            "title": "Out-of-distribution prompts (measured, not claimed)",
            "text": f"Normalised squared error (÷ {norm:g}) at k = d = {d} and at the last k; "
                    "errors are not rescaled for scale_x / scale_y.",
            "table": {"columns": ["prompts", f"transformer k={d}", f"least squares k={d}",
                                  "transformer last k", "least squares last k",
                                  "averaging last k"],
                      "rows": [[name, float(v["transformer"][min(d, len(v["transformer"]) - 1)]),
                                float(v["least squares"][min(d, len(v["transformer"]) - 1)]),
                                float(v["transformer"][-1]), float(v["least squares"][-1]),
                                float(v["averaging"][-1])] for name, v in ood.items()]}})
    title = {"linear": "linear functions", "sparse_linear": "sparse linear functions",
             "quadratic": "quadratic functions", "relu_net": "2-layer ReLU networks",
             "decision_tree": "decision trees"}[config.task.kind]
    write_report(run_dir, f"Transformers learn {title} in context", "function-classes",
                 PAPER, mode, [c.to_json() for c in claims], figures, sections)
    return claims


def class_claims(task: FunctionClassTask, mean_errors: dict[str, np.ndarray],
                 tf_errors: np.ndarray, external_prompts: int = 0) -> list:
    """Garg et al.'s headline for the task's class (§§3–5), from the mean normalised
    error curves ``mean_errors[name][k]`` (k = in-context examples) and the transformer's
    per-prompt errors ``tf_errors`` (prompts × K), for XGBoost restricted to the first
    ``external_prompts`` prompts on which it was fitted:

    * linear: the transformer approaches least squares (error at the last k ≤ 0.1) and
      beats 3-NN and averaging;
    * sparse linear: it beats least squares below k = d (mean error over k = 1..d − 1),
      and matches Lasso — its mean error over k ≥ 1 is within 1.25 × that of the better
      Lasso (α = 0.1 or 0.01);
    * decision trees: it beats the greedy depth-``task.depth`` tree at the last k, and
      XGBoost on the same prompts when the optional extra is installed;
    * 2-layer ReLU networks: it matches the Adam-trained 2-layer network at the last k
      (ratio ≤ 1.2) and beats least squares there.

    Quadratic functions (in Garg et al.'s code, not the paper) carry no claim.
    """
    tf = mean_errors["transformer"]
    last = len(tf) - 1
    kind = task.kind
    if kind == "linear":
        return [
            check("near_least_squares", f"transformer approaches least squares: normalised "
                  f"error at k = {last} (zero estimator = 1; least squares = "
                  f"{mean_errors['least squares'][last]:.3f})", tf[last], "<=", 0.1),
            check("beats_knn_and_averaging", f"transformer beats 3-NN and averaging at "
                  f"k = {last}: error_TF / min(error_3NN, error_avg)",
                  tf[last] / min(mean_errors["3-NN"][last], mean_errors["averaging"][last]),
                  "<", 1.0)]
    claims = []
    if kind == "sparse_linear":
        below = slice(1, min(task.d, last + 1))
        claims.append(check(
            "sparse_beats_least_squares", f"sparse linear: the transformer beats least "
            f"squares below k = d = {task.d}: mean error over k = 1..{below.stop - 1}, "
            "TF / least squares", np.mean(tf[below]) / np.mean(mean_errors["least squares"]
                                                                 [below]), "<", 1.0,
            paper="TF ≈ Lasso < least squares"))
        lasso = min(np.mean(mean_errors[f"Lasso (α={a:g})"][1:]) for a in LASSO_ALPHAS)
        claims.append(check(
            "sparse_matches_lasso", "sparse linear: the transformer matches Lasso: mean error "
            f"over k = 1..{last}, TF / best Lasso", np.mean(tf[1:]) / lasso, "<=", 1.25,
            paper="TF ≈ Lasso"))
    elif kind == "decision_tree":
        tree = f"greedy tree (depth {task.depth})"
        claims.append(check(
            "tree_beats_greedy_tree", f"decision trees: the transformer beats the greedy "
            f"depth-{task.depth} tree at k = {last}: error TF / tree", tf[last]
            / mean_errors[tree][last], "<", 1.0, paper="TF < greedy tree"))
        n = min(external_prompts, len(tf_errors))
        if xgboost_name(n) in mean_errors:
            claims.append(check(
                "tree_beats_xgboost", f"decision trees: the transformer beats XGBoost at "
                f"k = {last} (the same {n} prompts): error TF / XGBoost",
                np.mean(tf_errors[:n, last]) / mean_errors[xgboost_name(n)][last], "<", 1.0,
                paper="TF < XGBoost"))
    elif kind == "relu_net":
        if "2-layer NN (Adam)" in mean_errors:
            claims.append(check(
                "relu_matches_network", f"2-layer ReLU networks: the transformer matches a "
                f"2-layer network trained by Adam on the prompt, at k = {last}: error TF / "
                "network", tf[last] / mean_errors["2-layer NN (Adam)"][last], "<=", 1.2,
                paper="TF ≈ 2-layer NN"))
        claims.append(check(
            "relu_beats_least_squares", f"2-layer ReLU networks: the transformer beats least "
            f"squares at k = {last}: error TF / least squares", tf[last]
            / mean_errors["least squares"][last], "<", 1.0, paper="TF < least squares"))
    return claims


def ood_errors(config: FunctionClassesConfig, models: list) -> dict[str, dict[str, np.ndarray]]:
    """Mean normalised squared error per position on each out-of-distribution prompt set,
    for the trained models (averaged over seeds), least squares and averaging."""
    strategies = [("standard", 1.0), ("random_quadrants", 1.0), ("orthogonal_query", 1.0),
                  ("repeated_query", 1.0), ("half_subspace", 1.0), ("skewed", 1.0)]
    strategies += [(f"scale_{axis}", s) for axis in ("x", "y") for s in config.ood.scales]
    strategies += [("noisy_labels", 1.0)]
    norm = config.task.normaliser
    out = {}
    for i, (strategy, scale) in enumerate(strategies):
        key = jax.random.fold_in(jax.random.key(config.ood.seed), i)
        prompts = ood_prompts(config.task, key, config.ood.prompts, strategy, scale)
        differ = strategy in ("random_quadrants", "orthogonal_query", "repeated_query")
        predictors = {"transformer": [lambda x, y, m=m: m(interleave(x, y))[::2]
                                      for m in models],
                      "least squares": [lambda x, y: prefix_predictions("least_squares", x, y)],
                      "averaging": [lambda x, y: prefix_predictions("averaging", x, y)]}
        name = f"{strategy}×{scale:.3g}" if strategy.startswith("scale") else strategy
        out[name] = {}
        for learner, fns in predictors.items():
            errors = []
            for fn in fns:
                preds = jax.jit(jax.vmap(lambda p, fn=fn, differ=differ:
                                         query_prompt_predictions(fn, p, differ)))(prompts)
                errors.append(np.asarray((preds - prompts.y_query) ** 2).mean(0) / norm)
            out[name][learner] = np.mean(errors, axis=0)
    return out


def _ood_figure(ood: dict, config: FunctionClassesConfig, folder) -> dict:
    names = list(ood)
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = figure(cols, width=3.0, height=2.4 * rows, rows=rows)
    for ax, name in zip(axes, names, strict=False):
        for c, learner in enumerate(("transformer", "least squares", "averaging")):
            values = ood[name][learner]
            ax.plot(np.arange(len(values)), values, "o-" if c == 0 else "--", ms=2,
                    color=f"C{c}", label=learner)
        ax.axvline(config.task.d, color="gray", ls=":", lw=1)
        ax.set_title(name, fontsize=8)
        ax.set_ylim(-0.05, 2.0)
    for ax in axes[len(names):]:
        ax.axis("off")
    axes[0].legend(fontsize=6)
    return {"svg": save_figure(fig, folder, "ood_prompts"),
            "caption": "Normalised squared error against the number of in-context examples on "
                       "Garg et al.'s out-of-distribution prompts (dotted: k = d)."}


RECIPE = register(Recipe(
    name="function-classes",
    description="a GPT-style transformer learns linear regression in context, close to least "
                "squares; out-of-distribution prompts (Garg et al. 2022; claims for the linear "
                "class)",
    paper=PAPER, config_type=FunctionClassesConfig, full=full_config, quick=quick_config,
    run=run, resolve=resolve))
