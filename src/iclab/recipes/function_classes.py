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

Bring your own model: ``model(key, d=d, points=K)`` in place of the GPT (a causal module
on interleaved tokens of width d + 1 returning one prediction per position).
"""

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.config import apply_overrides, check_nonnegative, check_positive, check_positive_int
from iclab.engine import MaskedPrompts, OptimConfig, Problem, TrainConfig, prompt_loss
from iclab.engine import prompt_predictions as prompt_predictions
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.instruments import bootstrap_mean_ci
from iclab.models import GPT, GPTConfig
from iclab.report import figure, plot_metric_by_seed
from iclab.solvers import (
    available,
    lasso_prefix_predictions,
    network_prefix_predictions,
    prefix_predictions,
    sklearn_tree_prefix_predictions,
    tree_prefix_predictions,
    xgboost_prefix_predictions,
)
from iclab.tasks import (
    FunctionClassTask,
    all_points,
    interleave,
    ood_prompts,
    query_prompt_predictions,
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


def make_problem(config: FunctionClassesConfig, model=None) -> Problem:
    model_config = config.model.resolve(config.task.d)
    task, curriculum = config.task, config.curriculum
    k = task.n_context + 1

    def sample_scheduled(key, batch_size, step):
        dims, points = curriculum.at(step, task.d, k)
        return MaskedPrompts(task.sample_batch(key, batch_size, active_dims=dims),
                             jnp.full((batch_size,), points))

    if model is None:
        init = lambda key: GPT(model_config, key=key)
    else:
        init = lambda key: model(key, d=task.d, points=k)
    return Problem(init_model=init,
                   sample_batch=task.sample_batch, loss=prompt_loss,
                   evaluate=lambda model, batch: {"test_loss": prompt_loss(model, batch)},
                   sample_scheduled=sample_scheduled if curriculum.enabled else None)


def xgboost_name(prompts: int) -> str:
    """The curve name of XGBoost, fitted on the first ``prompts`` evaluation prompts."""
    return f"XGBoost ({prompts} prompts)"




# -- spec ---------------------------------------------------------------------------
def curve(r, learner: str) -> pd.Series:
    """The mean normalised error of ``learner`` by k (in-context examples)."""
    rows = r["curves"]
    return rows[rows.learner == learner].set_index("k")["mean"]


def tf_seeds(r, ks) -> pd.Series:
    """Each training seed's mean normalised error over the prefixes ``ks``."""
    rows = r["transformer_seeds"]
    return rows[rows.k.isin(list(ks))].groupby("seed").error.mean()


def claims(config: FunctionClassesConfig) -> list[Claim]:
    """Garg et al.'s headline for the task's class (§§3–5); each is the mean over seeds.

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
    task, last = config.task, config.task.n_context
    kind = task.kind
    if kind == "linear":
        return [
            Claim("near_least_squares", f"transformer approaches least squares: normalised "
                  f"error at k = {last} (zero estimator = 1)", lambda r: tf_seeds(r, [last]),
                  "<=", 0.1, paper=paper("≈ least squares", "Garg et al. Fig. 2")),
            Claim("beats_knn_and_averaging", f"transformer beats 3-NN and averaging at "
                  f"k = {last}: error_TF / min(error_3NN, error_avg)",
                  lambda r: tf_seeds(r, [last]) / min(curve(r, "3-NN")[last],
                                                      curve(r, "averaging")[last]), "<", 1.0,
                  paper=paper("TF < 3-NN, averaging", "Garg et al. Fig. 2"))]
    if kind == "sparse_linear":
        below = range(1, min(task.d, last + 1))
        lasso = lambda r: min(curve(r, f"Lasso (α={a:g})").loc[1:].mean() for a in LASSO_ALPHAS)
        return [
            Claim("sparse_beats_least_squares", f"sparse linear: the transformer beats least "
                  f"squares below k = d = {task.d}: mean error over k = 1..{below.stop - 1}, "
                  "TF / least squares", lambda r: tf_seeds(r, below)
                  / curve(r, "least squares").loc[list(below)].mean(), "<", 1.0,
                  paper=paper("TF ≈ Lasso < least squares", "Garg et al. Fig. 4")),
            Claim("sparse_matches_lasso", "sparse linear: the transformer matches Lasso: mean "
                  f"error over k = 1..{last}, TF / best Lasso",
                  lambda r: tf_seeds(r, range(1, last + 1)) / lasso(r), "<=", 1.25,
                  paper=paper("TF ≈ Lasso", "Garg et al. Fig. 4"))]
    if kind == "decision_tree":
        tree = f"greedy tree (depth {task.depth})"
        return [
            Claim("tree_beats_greedy_tree", f"decision trees: the transformer beats the greedy "
                  f"depth-{task.depth} tree at k = {last}: error TF / tree",
                  lambda r: tf_seeds(r, [last]) / curve(r, tree)[last], "<", 1.0,
                  paper=paper("TF < greedy tree", "Garg et al. Fig. 5")),
            Claim("tree_beats_xgboost", f"decision trees: the transformer beats XGBoost at "
                  f"k = {last} on the prompts XGBoost was fitted on: error TF / XGBoost",
                  lambda r: r["xgboost_subset"].transformer_error_last_k
                  / curve(r, xgboost_name(int(r["xgboost_subset"].prompts.iloc[0])))[last],
                  "<", 1.0, paper=paper("TF < XGBoost", "Garg et al. Fig. 5"),
                  when=lambda r: "xgboost_subset" in r.tables)]
    if kind == "relu_net":
        return [
            Claim("relu_matches_network", f"2-layer ReLU networks: the transformer matches a "
                  f"2-layer network trained by Adam on the prompt, at k = {last}: error TF / "
                  "network", lambda r: tf_seeds(r, [last]) / curve(r, NETWORK)[last], "<=",
                  1.2, paper=paper("TF ≈ 2-layer NN", "Garg et al. Fig. 5"),
                  when=lambda r: NETWORK in set(r["curves"].learner)),
            Claim("relu_beats_least_squares", f"2-layer ReLU networks: the transformer beats "
                  f"least squares at k = {last}: error TF / least squares",
                  lambda r: tf_seeds(r, [last]) / curve(r, "least squares")[last], "<", 1.0,
                  paper=paper("TF < least squares", "Garg et al. Fig. 5"))]
    return []


NETWORK = "2-layer NN (Adam)"


# -- experiment ---------------------------------------------------------------------
def experiment(config: FunctionClassesConfig, model=None) -> list[Job]:
    eval_batch = config.task.sample_batch(jax.random.key(config.eval.seed), config.eval.prompts)
    return [Job("", make_problem(config, model), config.optim, config.train,
                eval_data=eval_batch, label=f"GPT on {config.task.kind} functions")]


# -- measurement --------------------------------------------------------------------
def error_curve(name: str, errors, resamples: int) -> pd.DataFrame:
    """One learner's normalised error by k with its 90 % bootstrap interval over prompts."""
    mean, low, high = bootstrap_mean_ci(errors, resamples)
    return pd.DataFrame({"learner": name, "k": np.arange(len(mean)), "mean": mean,
                         "low": low, "high": high})


def measure(config: FunctionClassesConfig, trained) -> dict[str, pd.DataFrame]:
    job, norm, boot = trained[""], config.task.normaliser, config.eval.bootstrap
    eval_batch = job.eval_data
    x, y = jax.vmap(all_points)(eval_batch)
    per_seed = [np.asarray((prompt_predictions(m, eval_batch) - y) ** 2) / norm
                for m in job.models]
    tf_errors = np.mean(per_seed, axis=0)
    curves = [error_curve("transformer", tf_errors, boot)]
    for name, learner in BASELINES.items():
        preds = jax.vmap(lambda a, b, lr=learner: prefix_predictions(lr, a, b))(x, y)
        curves.append(error_curve(name, np.asarray((preds - y) ** 2) / norm, boot))
    if config.network_baseline:
        keys = jax.random.split(jax.random.key(config.eval.seed + 1), x.shape[0])
        preds = jax.jit(jax.vmap(network_prefix_predictions))(keys, x, y)
        curves.append(error_curve(NETWORK, np.asarray((preds - y) ** 2) / norm, boot))
    tables = {}
    if config.task.kind == "decision_tree":
        depth = config.task.depth
        preds = jax.jit(jax.vmap(lambda a, b: tree_prefix_predictions(a, b, depth)))(x, y)
        curves.append(error_curve(f"greedy tree (depth {depth})",
                                  np.asarray((preds - y) ** 2) / norm, boot))
        n = min(config.eval.external_prompts, x.shape[0])
        if n and available("sklearn") and available("xgboost"):
            xs, ys = np.asarray(x[:n]), np.asarray(y[:n])
            for name, learner in ((f"tree, unbounded (sklearn, {n} prompts)",
                                   sklearn_tree_prefix_predictions),
                                  (xgboost_name(n), xgboost_prefix_predictions)):
                curves.append(error_curve(name, (learner(xs, ys) - ys) ** 2 / norm, boot))
            tables["xgboost_subset"] = pd.DataFrame(
                {"seed": job.seeds, "prompts": n,
                 "transformer_error_last_k": [e[:n, -1].mean() for e in per_seed]})
    if config.task.kind == "sparse_linear":
        for alpha in LASSO_ALPHAS:
            preds = jax.vmap(lambda a, b, al=alpha: lasso_prefix_predictions(a, b, al))(x, y)
            curves.append(error_curve(f"Lasso (α={alpha:g})",
                                      np.asarray((preds - y) ** 2) / norm, boot))
    tables["curves"] = pd.concat(curves, ignore_index=True)
    tables["transformer_seeds"] = pd.DataFrame(
        [{"seed": seed, "k": k, "error": float(e[:, k].mean())}
         for seed, e in zip(job.seeds, per_seed, strict=True) for k in range(e.shape[1])])
    if config.task.kind == "linear" and config.ood.prompts:
        tables["ood"] = pd.DataFrame(
            [{"prompts": name, "learner": learner, "k": k, "error": float(v)}
             for name, per in ood_errors(config, job.models).items()
             for learner, values in per.items() for k, v in enumerate(values)])
    return tables


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


# -- figures ------------------------------------------------------------------------
def plot_error_vs_k(r):
    curves, task = r["curves"], r.config.task
    fig, (ax,) = figure(1, width=6)
    for c, name in enumerate(dict.fromkeys(curves.learner)):
        rows = curves[curves.learner == name]
        ax.plot(rows.k, rows["mean"], "o-" if name == "transformer" else "--", color=f"C{c}",
                label=name, ms=3)
        ax.fill_between(rows.k, rows.low, rows.high, color=f"C{c}", alpha=0.2)
        seeds = r["transformer_seeds"]
        if name == "transformer" and seeds.seed.nunique() > 1:
            for _, one in seeds.groupby("seed"):  # each training seed, thin
                ax.plot(one.k, one.error, "-", color=f"C{c}", lw=0.7, alpha=0.5)
    ax.axvline(task.d, color="gray", ls=":", lw=1)
    ax.set_xlabel("in-context examples k")
    ax.set_ylabel(f"squared error / {task.normaliser:g}")
    ax.set_ylim(-0.05, 1.6)
    ax.legend(fontsize=8)
    return fig


def plot_loss(r):
    fig, (ax,) = figure(1, width=6)
    plot_metric_by_seed(ax, r.metrics, "test_loss", "transformer (all prefixes)")
    ax.set_yscale("log")
    ax.legend()
    return fig


def plot_ood(r):
    ood, d = r["ood"], r.config.task.d
    names = list(dict.fromkeys(ood.prompts))
    cols, rows = 4, -(-len(names) // 4)
    fig, axes = figure(cols, width=3.0, height=2.4 * rows, rows=rows)
    for ax, name in zip(axes, names, strict=False):
        for c, learner in enumerate(("transformer", "least squares", "averaging")):
            values = ood[(ood.prompts == name) & (ood.learner == learner)]
            ax.plot(values.k, values.error, "o-" if c == 0 else "--", ms=2, color=f"C{c}",
                    label=learner)
        ax.axvline(d, color="gray", ls=":", lw=1)
        ax.set_title(name, fontsize=8)
        ax.set_ylim(-0.05, 2.0)
    for ax in axes[len(names):]:
        ax.axis("off")
    axes[0].legend(fontsize=6)
    return fig


def error_table(r) -> pd.DataFrame:
    return r["curves"].pivot_table(index="k", columns="learner", values="mean",
                                   sort=False).reset_index()


def ood_table(r) -> pd.DataFrame:
    ood, d = r["ood"], r.config.task.d
    rows = []
    for name, one in ood.groupby("prompts", sort=False):
        error = one.set_index(["learner", "k"]).error
        at, last = min(d, int(one.k.max())), int(one.k.max())
        rows.append({"prompts": name, f"transformer k={d}": error["transformer", at],
                     f"least squares k={d}": error["least squares", at],
                     "transformer last k": error["transformer", last],
                     "least squares last k": error["least squares", last],
                     "averaging last k": error["averaging", last]})
    return pd.DataFrame(rows)


TITLES = {"linear": "linear functions", "sparse_linear": "sparse linear functions",
          "quadratic": "quadratic functions", "relu_net": "2-layer ReLU networks",
          "decision_tree": "decision trees"}
FIGURES = [
    Figure("error_vs_k", "Normalised squared error of the k+1-th prediction against the number "
           "of in-context examples k (bands: 90 % bootstrap intervals over prompts; thin "
           "lines: the transformer's training seeds; dotted line: k = d).", plot_error_vs_k),
    Figure("loss", "Evaluation loss during training (thin: seeds, thick: mean).", plot_loss),
    Figure("ood_prompts", "Normalised squared error against the number of in-context examples "
           "on Garg et al.'s out-of-distribution prompts (dotted: k = d).", plot_ood,
           when=lambda r: "ood" in r.tables),
]
SECTIONS = [
    Section("Normalised error by number of in-context examples", table=error_table),
    Section("Out-of-distribution prompts (measured, not claimed)",
            lambda r: f"Normalised squared error (÷ {r.config.task.normaliser:g}) at "
            f"k = d = {r.config.task.d} and at the last k; errors are not rescaled for "
            "scale_x / scale_y.", ood_table, when=lambda r: "ood" in r.tables),
]

RECIPE = Recipe(
    name="function-classes",
    title=lambda config: f"Transformers learn {TITLES[config.task.kind]} in context",
    description="a GPT-style transformer learns linear regression in context, close to least "
                "squares; out-of-distribution prompts (Garg et al. 2022; claims for the linear "
                "class)",
    paper=PAPER, config_type=FunctionClassesConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=claims, figures=FIGURES, sections=SECTIONS,
    resolve=resolve)
