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
``eval.external_prompts`` prompts. Each class carries Garg et al.'s claims for it
(``claims``; quadratic functions, in their code but not the paper, carry none). In the
full mode, decision trees and ReLU networks get Garg et al.'s 101 points
(curriculum 26 → 101 by 5; ``resolve``) unless those keys are set on the command line.
``capacity.sizes`` trains further GPTs like the main model for the error against model
size (Garg et al.'s Fig. 6; the full mode adds their tiny and small models), with the
claim that the largest model's error at the last k is below the smallest's.

Warning:
    Garg et al. train a 12-layer, 256-wide model for 500k steps with a curriculum
    (d from 5 to 20). ``--quick`` trains the "tiny" model (3 layers, 2 heads, width 64)
    on d = 5, 11 points, for 8000 steps at lr 1e-3 without curriculum.

Bring your own model: ``model(key, d=d, points=K)`` in place of the GPT (a causal module
on interleaved tokens of width d + 1 returning one prediction per position).
"""

import dataclasses
from dataclasses import dataclass, field

import equinox as eqx
import jax
import numpy as np
import pandas as pd

from iclab.config import (
    ConfigError,
    apply_overrides,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from iclab.engine import OptimConfig, TrainConfig, prompt_predictions, prompt_problem
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.instruments import bootstrap_mean_ci
from iclab.models import GPT, GPTConfig
from iclab.recipes.analysis.function_classes import (
    NETWORK,
    TITLES,
    capacity_ratio,
    capacity_table,
    curve,
    error_table,
    ood_table,
    plot_capacity,
    plot_error_vs_k,
    plot_loss,
    plot_ood,
    tf_seeds,
    xgboost_name,
)
from iclab.solvers import (
    available,
    lasso_prefix_predictions,
    network_prefix_predictions,
    ood_error_curves,
    prefix_predictions,
    sklearn_tree_prefix_predictions,
    tree_prefix_predictions,
    xgboost_prefix_predictions,
)
from iclab.tasks import (
    CurriculumConfig,
    FunctionClassTask,
    all_points,
)

PAPER = ("Garg, Tsipras, Liang, Valiant: What Can Transformers Learn In-Context? A Case Study "
         "of Simple Function Classes, NeurIPS 2022 (arXiv 2208.01066).")
BASELINES = {"least squares": "least_squares", "ridge (λ=0.1)": "ridge", "3-NN": "knn",
             "averaging": "averaging"}
LASSO_ALPHAS = (0.1, 0.01)
GARG_SIZES = {"tiny": (64, 3, 2), "small": (128, 6, 4), "standard": (256, 12, 8)}
"""Garg et al.'s models (``conf/models/*.yaml`` of their code): width, layers, heads."""


# -- spec: claims (one set per function class), figures and report sections ---------


def claims(config: "FunctionClassesConfig") -> list[Claim]:
    """Garg et al.'s headline for the task's class (§§3–5), each the mean over training
    seeds of the transformer's error against a baseline's mean error curve (the better
    Lasso, α = 0.1 or 0.01; XGBoost on the prompts it was fitted on)."""
    return class_claims(config) + capacity_claims(config)


def capacity_claims(config: "FunctionClassesConfig") -> list[Claim]:
    """With ``capacity.sizes``: the largest model's error at the last k against the
    smallest's (seed means), Garg et al.'s error falling with model size."""
    if not config.capacity.sizes:
        return []
    last = config.task.n_context
    return [Claim("capacity_helps", f"error falls with model size: error at k = {last} of the "
                  "largest GPT / the smallest's", lambda r: capacity_ratio(r, last), "<", 1.0,
                  paper=paper("error falls with size (0.2M, 1.2M, 9.5M parameters)",
                              "Garg et al. 2022, Fig. 6"))]


def class_claims(config: "FunctionClassesConfig") -> list[Claim]:
    """The claims of the task's class."""
    task, last = config.task, config.task.n_context
    kind = task.kind
    if kind == "linear":
        return [
            Claim("near_least_squares", f"transformer approaches least squares: normalised "
                  f"error at k = {last} (zero estimator = 1)", lambda r: tf_seeds(r, [last]),
                  "<=", 0.1, paper=paper("≈ least squares", "Garg et al. 2022, Fig. 2")),
            Claim("beats_knn_and_averaging", f"transformer beats 3-NN and averaging at "
                  f"k = {last}: error_TF / min(error_3NN, error_avg)",
                  lambda r: tf_seeds(r, [last]) / min(curve(r, "3-NN")[last],
                                                      curve(r, "averaging")[last]), "<", 1.0,
                  paper=paper("TF < 3-NN, averaging", "Garg et al. 2022, Fig. 2"))]
    if kind == "sparse_linear":
        below = range(1, min(task.d, last + 1))
        lasso = lambda r: min(curve(r, f"Lasso (α={a:g})").loc[1:].mean() for a in LASSO_ALPHAS)
        return [
            Claim("sparse_beats_least_squares", f"sparse linear: the transformer beats least "
                  f"squares below k = d = {task.d}: mean error over k = 1..{below.stop - 1}, "
                  "TF / least squares", lambda r: tf_seeds(r, below)
                  / curve(r, "least squares").loc[list(below)].mean(), "<", 1.0,
                  paper=paper("TF ≈ Lasso < least squares", "Garg et al. 2022")),
            Claim("sparse_matches_lasso", "sparse linear: the transformer matches Lasso: mean "
                  f"error over k = 1..{last}, TF / best Lasso",
                  lambda r: tf_seeds(r, range(1, last + 1)) / lasso(r), "<=", 1.25,
                  paper=paper("TF ≈ Lasso", "Garg et al. 2022"))]
    if kind == "decision_tree":
        tree = f"greedy tree (depth {task.depth})"
        return [
            Claim("tree_beats_greedy_tree", f"decision trees: the transformer beats the greedy "
                  f"depth-{task.depth} tree at k = {last}: error TF / tree",
                  lambda r: tf_seeds(r, [last]) / curve(r, tree)[last], "<", 1.0,
                  paper=paper("TF < greedy tree", "Garg et al. 2022")),
            Claim("tree_beats_xgboost", f"decision trees: the transformer beats XGBoost at "
                  f"k = {last} on the prompts XGBoost was fitted on: error TF / XGBoost",
                  lambda r: r["xgboost_subset"].transformer_error_last_k
                  / curve(r, xgboost_name(int(r["xgboost_subset"].prompts.iloc[0])))[last],
                  "<", 1.0, paper=paper("TF < XGBoost", "Garg et al. 2022"),
                  when=lambda r: "xgboost_subset" in r.tables)]
    if kind == "relu_net":
        return [
            Claim("relu_matches_network", f"2-layer ReLU networks: the transformer matches a "
                  f"2-layer network trained by Adam on the prompt, at k = {last}: error TF / "
                  "network", lambda r: tf_seeds(r, [last]) / curve(r, NETWORK)[last], "<=",
                  1.2, paper=paper("TF ≈ 2-layer NN", "Garg et al. 2022"),
                  when=lambda r: NETWORK in set(r["curves"].learner)),
            Claim("relu_beats_least_squares", f"2-layer ReLU networks: the transformer beats "
                  f"least squares at k = {last}: error TF / least squares",
                  lambda r: tf_seeds(r, [last]) / curve(r, "least squares")[last], "<", 1.0,
                  paper=paper("TF < least squares", "Garg et al. 2022"))]
    return []


FIGURES = [
    Figure("error_vs_k", "Normalised squared error of the k+1-th prediction against the number "
           "of in-context examples k (bands: 90 % bootstrap intervals over prompts; thin "
           "lines: the transformer's training seeds; dotted line: k = d).", plot_error_vs_k),
    Figure("loss", "Evaluation loss during training (thin: seeds, thick: mean).", plot_loss),
    Figure("capacity", "Normalised squared error at k = d and at the last k against the "
           "model's parameter count (dots: training seeds; lines: their mean; dotted: least "
           "squares at the last k).", plot_capacity, when=lambda r: "capacity" in r.tables),
    Figure("ood_prompts", "Normalised squared error against the number of in-context examples "
           "on Garg et al.'s out-of-distribution prompts (dotted: k = d).", plot_ood,
           when=lambda r: "ood" in r.tables),
]
SECTIONS = [
    Section("Normalised error by number of in-context examples", table=error_table),
    Section("Error against model size", lambda r: "Each GPT is trained like the main model "
            "(same data, steps and seeds); seed means of the normalised error.",
            capacity_table, when=lambda r: "capacity" in r.tables),
    Section("Out-of-distribution prompts (measured, not claimed)",
            lambda r: f"Normalised squared error (÷ {r.config.task.normaliser:g}) at "
            f"k = d = {r.config.task.d} and at the last k; errors are not rescaled for "
            "scale_x / scale_y.", ood_table, when=lambda r: "ood" in r.tables),
]


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


def model_size(spec: str) -> tuple[int, int, int]:
    """(width, layers, heads) of a size: one of ``GARG_SIZES`` or "WIDTHxLAYERSxHEADS"."""
    if spec in GARG_SIZES:
        return GARG_SIZES[spec]
    allowed = f"one of {', '.join(GARG_SIZES)} or WIDTHxLAYERSxHEADS (e.g. 32x1x1)"
    parts = spec.split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError("capacity.sizes", spec, allowed)
    width, layers, heads = map(int, parts)
    if width % heads:
        raise ConfigError("capacity.sizes", spec, f"{allowed}, with WIDTH divisible by HEADS")
    return width, layers, heads


@dataclass(frozen=True)
class CapacityConfig:
    """Args:
        sizes: further GPTs, each trained like the main model (the same prompts, steps and
            seeds), for the error against model size (Garg et al.'s Fig. 6): "tiny",
            "small", "standard" (their widths 64, 128, 256 with 3, 6, 12 layers and 2, 4, 8
            heads) or "WIDTHxLAYERSxHEADS"; empty: none.
    """

    sizes: tuple[str, ...] = ()

    def __post_init__(self):
        for spec in self.sizes:
            model_size(spec)
        if len(set(self.sizes)) != len(self.sizes):
            raise ConfigError("capacity.sizes", ",".join(self.sizes), "distinct sizes")


@dataclass(frozen=True)
class FunctionClassesConfig:
    """Args:
        task: the function class and its prompt length.
        model: the GPT (Garg et al.'s standard: width 256, 12 layers, 8 heads).
        optim: Adam, lr 1e-4 (the paper's).
        train: steps, batch (64) and evaluation interval.
        eval: the in-distribution evaluation prompts and baselines.
        ood: the out-of-distribution prompts.
        network_baseline: train the class's own 2-layer network baseline (relu_net).
        curriculum: the dimension / points curriculum.
        capacity: further model sizes for the error against model size.
    """

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
    capacity: CapacityConfig = field(default_factory=CapacityConfig)


def full_config() -> FunctionClassesConfig:
    """Garg et al.'s standard model, schedule and curriculum (d 5 → 20, 11 → 41 points),
    with their tiny and small models for the error against size: GPU-scale (its measured
    cost: ``docs/results/function-classes.md``)."""
    return FunctionClassesConfig(curriculum=CurriculumConfig(enabled=True),
                                 capacity=CapacityConfig(sizes=("tiny", "small")))


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


# -- experiment ---------------------------------------------------------------------
def experiment(config: FunctionClassesConfig, model=None) -> list[Job]:
    task, model_config = config.task, config.model.resolve(config.task.d)
    init = ((lambda key: GPT(model_config, key=key)) if model is None else
            (lambda key: model(key, d=task.d, points=task.n_context + 1)))
    curriculum = config.curriculum if config.curriculum.enabled else None
    eval_data = task.sample_batch(jax.random.key(config.eval.seed), config.eval.prompts)
    jobs = [Job("", prompt_problem(task, init, curriculum), config.optim, config.train,
                label=f"GPT on {task.kind} functions", eval_data=eval_data)]
    for spec in config.capacity.sizes:
        width, layers, heads = model_size(spec)
        size = dataclasses.replace(model_config, width=width, layers=layers, heads=heads)
        jobs.append(Job(f"size-{spec}", prompt_problem(
            task, lambda key, c=size: GPT(c, key=key), curriculum), config.optim, config.train,
            label=f"GPT {width}x{layers}x{heads}", eval_data=eval_data,
            cost=width * width * layers))
    return jobs


# -- measurement --------------------------------------------------------------------
def error_curve(name: str, errors, resamples: int) -> pd.DataFrame:
    """One learner's normalised error by k with its 90 % bootstrap interval over prompts."""
    mean, low, high = bootstrap_mean_ci(errors, resamples)
    return pd.DataFrame({"learner": name, "k": np.arange(len(mean)), "mean": mean,
                         "low": low, "high": high})


def seed_errors(config: FunctionClassesConfig, job) -> list[np.ndarray]:
    """Each trained seed's normalised squared error, (prompts, k), on the evaluation prompts."""
    _, y = jax.vmap(all_points)(job.eval_data)
    return [np.asarray((prompt_predictions(m, job.eval_data) - y) ** 2) / config.task.normaliser
            for m in job.models]


def capacity_rows(config: FunctionClassesConfig, trained, main_errors) -> pd.DataFrame:
    """Per model size and seed: the parameter count and the mean error at every k."""
    rows = []
    sizes = [("main", trained[""], main_errors)] + [
        (spec, trained[f"size-{spec}"], seed_errors(config, trained[f"size-{spec}"]))
        for spec in config.capacity.sizes]
    for name, job, errors in sizes:
        params = sum(a.size for a in jax.tree.leaves(eqx.filter(job.models[0], eqx.is_array)))
        rows += [{"model": name, "params": int(params), "seed": seed, "k": k,
                  "error": float(e[:, k].mean())}
                 for seed, e in zip(job.seeds, errors, strict=True) for k in range(e.shape[1])]
    return pd.DataFrame(rows)


def measure(config: FunctionClassesConfig, trained) -> dict[str, pd.DataFrame]:
    job, kind, boot = trained[""], config.task.kind, config.eval.bootstrap
    x, y = jax.vmap(all_points)(job.eval_data)
    per_seed = seed_errors(config, job)
    curves = [error_curve("transformer", np.mean(per_seed, axis=0), boot)]

    def add(name, preds, target=y):
        errors = np.asarray((preds - target) ** 2) / config.task.normaliser
        curves.append(error_curve(name, errors, boot))

    for name, learner in BASELINES.items():
        add(name, jax.vmap(lambda a, b, lr=learner: prefix_predictions(lr, a, b))(x, y))
    if config.network_baseline:
        keys = jax.random.split(jax.random.key(config.eval.seed + 1), x.shape[0])
        add(NETWORK, jax.jit(jax.vmap(network_prefix_predictions))(keys, x, y))
    tables = {}
    if kind == "decision_tree":
        depth = config.task.depth
        add(f"greedy tree (depth {depth})",
            jax.jit(jax.vmap(lambda a, b: tree_prefix_predictions(a, b, depth)))(x, y))
        n = min(config.eval.external_prompts, x.shape[0])
        if n and available("sklearn") and available("xgboost"):
            xs, ys = np.asarray(x[:n]), np.asarray(y[:n])
            add(f"tree, unbounded (sklearn, {n} prompts)", sklearn_tree_prefix_predictions(xs, ys),
                ys)
            add(xgboost_name(n), xgboost_prefix_predictions(xs, ys), ys)
            tables["xgboost_subset"] = pd.DataFrame(
                {"seed": job.seeds, "prompts": n,
                 "transformer_error_last_k": [e[:n, -1].mean() for e in per_seed]})
    for alpha in LASSO_ALPHAS if kind == "sparse_linear" else ():
        add(f"Lasso (α={alpha:g})",
            jax.vmap(lambda a, b, al=alpha: lasso_prefix_predictions(a, b, al))(x, y))
    if config.capacity.sizes:
        tables["capacity"] = capacity_rows(config, trained, per_seed)
    tables["curves"] = pd.concat(curves, ignore_index=True)
    tables["transformer_seeds"] = pd.DataFrame(
        [{"seed": seed, "k": k, "error": float(e[:, k].mean())}
         for seed, e in zip(job.seeds, per_seed, strict=True) for k in range(e.shape[1])])
    if kind == "linear" and config.ood.prompts:
        tables["ood"] = pd.DataFrame(
            [{"prompts": name, "learner": learner, "k": k, "error": float(v)}
             for name, per in ood_error_curves(config.task, job.models, config.ood.prompts,
                                               config.ood.seed, config.ood.scales).items()
             for learner, values in per.items() for k, v in enumerate(values)])
    return tables


RECIPE = Recipe(
    name="function-classes",
    title=lambda config: f"Transformers learn {TITLES[config.task.kind]} in context",
    description="a GPT-style transformer learns linear regression in context, close to least "
                "squares; out-of-distribution prompts (Garg et al. 2022; claims for the linear "
                "class)",
    paper=PAPER, config_type=FunctionClassesConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=claims, figures=FIGURES, sections=SECTIONS,
    resolve=resolve)
