"""function-classes: "What can transformers learn in-context?" (Garg et al., NeurIPS 2022).

Claim reproduced (Fig. 2, linear regression): a GPT-style transformer trained from
scratch on prompts x_1, y_1, …, x_K, y_K of random linear functions (x, w ~ N(0, I_d))
learns to regress in context: its normalised squared error at prefix length k falls
like that of least squares (≈ 0 once k ≥ d), far below 3-nearest-neighbours and
averaging. The loss covers every prefix; errors are divided by d (the zero estimator
scores 1) and shown with 90 % bootstrap intervals over the evaluation prompts.

Any class of ``FunctionClassTask`` can be trained with ``--set task.kind=...``
(linear, sparse_linear, quadratic, relu_net, decision_tree); errors are divided by
the class's normaliser. Baselines: least squares, ridge, 3-NN and averaging, plus
Lasso (ISTA) for sparse regression. Not implemented yet: the Adam-trained 2-layer
network and tree/XGBoost baselines, the curriculum, and the out-of-distribution
prompts. The claims are stated for the linear class.

Warning:
    Garg et al. train a 12-layer, 256-wide model for 500k steps with a curriculum
    (d from 5 to 20). ``--quick`` trains the "tiny" model (3 layers, 2 heads, width 64)
    on d = 5, 11 points, for 8000 steps at lr 1e-3 without curriculum.
"""

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from iclab._errors import check_positive_int
from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer
from iclab.instruments import bootstrap_mean_ci
from iclab.models import GPT, GPTConfig
from iclab.recipes._base import Recipe, register
from iclab.recipes._claims import check
from iclab.report import figure, plot_metric_by_seed, save_figure, write_report
from iclab.solvers import lasso_weights, prefix_predictions
from iclab.store import MetricRows
from iclab.tasks import FunctionClassTask, all_points, to_interleaved_tokens

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
    """

    prompts: int = 1280
    seed: int = 5
    bootstrap: int = 1000

    def __post_init__(self):
        check_positive_int("eval.prompts", self.prompts)
        check_positive_int("eval.bootstrap", self.bootstrap)


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


def full_config() -> FunctionClassesConfig:
    """Garg et al.'s standard model and schedule (no curriculum yet): GPU-scale."""
    return FunctionClassesConfig()


def quick_config() -> FunctionClassesConfig:
    """d = 5, 11 points, the tiny model, 8000 steps at lr 1e-3, 2 seeds."""
    return FunctionClassesConfig(
        task=FunctionClassTask(kind="linear", d=5, n_context=10),
        model=GPTConfig(width=64, layers=3, heads=2),
        optim=OptimConfig(name="adam", lr=1e-3, b2=0.999),
        train=TrainConfig(steps=8000, batch_size=64, eval_every=500, seeds=2))


def prompt_predictions(model, batch):
    """The model's prediction of y_i at every x_i position: shape (B, K)."""
    return jax.vmap(model)(jax.vmap(to_interleaved_tokens)(batch))[:, ::2]


def prompt_loss(model, batch):
    """Mean squared error over all prompts and all prefixes (Garg et al.'s objective)."""
    _, y = jax.vmap(all_points)(batch)
    return jnp.mean((prompt_predictions(model, batch) - y) ** 2)


def make_problem(config: FunctionClassesConfig) -> Problem:
    model_config = config.model.resolve(config.task.d)
    return Problem(init_model=lambda key: GPT(model_config, key=key),
                   sample_batch=config.task.sample_batch, loss=prompt_loss,
                   evaluate=lambda model, batch: {"test_loss": prompt_loss(model, batch)})


def _lasso_prefix(x, y, alpha):
    """Lasso's prediction of y_i from the first i − 1 pairs, for every i (0 for i = 1)."""
    k = x.shape[0]
    masks = (jnp.arange(k)[None, :] < jnp.arange(k)[:, None]).astype(x.dtype)
    # lasso_weights normalises the squared error by all K rows; α·n/K keeps the penalty
    # that of the n pairs actually seen.
    weights = jax.vmap(lambda m: lasso_weights(x * m[:, None], y * m, alpha * m.sum() / k,
                                               500))(masks)
    return jnp.einsum("kd,kd->k", weights, x)


def run(config: FunctionClassesConfig, run_dir, console, mode: str = "full") -> list:
    from iclab._console import training_progress

    norm = config.task.normaliser
    eval_batch = config.task.sample_batch(jax.random.key(config.eval.seed), config.eval.prompts)
    trainer = Trainer(make_problem(config), config.optim, config.train)
    start = run_dir.checkpoint_step() or 0
    with training_progress(console, "GPT on linear functions", config.train.steps,
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
    run_dir.write_metrics("final", rows)

    last = int(k_points[-1])
    tf = curves["transformer"][0]
    claims = [
        check("near_least_squares", f"transformer approaches least squares: normalised error "
              f"at k = {last} (zero estimator = 1; least squares = "
              f"{curves['least squares'][0][last]:.3f})", tf[last], "<=", 0.1),
        check("beats_knn_and_averaging", f"transformer beats 3-NN and averaging at k = {last}: "
              "error_TF / min(error_3NN, error_avg)",
              tf[last] / min(curves["3-NN"][0][last], curves["averaging"][0][last]), "<", 1.0),
    ]

    metrics = run_dir.metrics()
    figures_dir = run_dir.path / "figures"
    fig, (ax,) = figure(1, width=6)
    for c, (name, (mean, low, high)) in enumerate(curves.items()):
        ax.plot(k_points, mean, "o-" if name == "transformer" else "--", color=f"C{c}",
                label=name, ms=3)
        ax.fill_between(k_points, low, high, color=f"C{c}", alpha=0.2)
    ax.axvline(config.task.d, color="gray", ls=":", lw=1)
    ax.set_xlabel("in-context examples k")
    ax.set_ylabel(f"squared error / {norm:g}")
    ax.set_ylim(-0.05, 1.6)
    ax.legend(fontsize=8)
    figures = [{"svg": save_figure(fig, figures_dir, "error_vs_k"),
                "caption": "Normalised squared error of the k+1-th prediction against the "
                           "number of in-context examples k (bands: 90 % bootstrap intervals; "
                           "dotted line: k = d)."}]
    fig, (ax,) = figure(1, width=6)
    plot_metric_by_seed(ax, metrics, "test_loss", "transformer (all prefixes)")
    ax.set_yscale("log")
    ax.legend()
    figures.append({"svg": save_figure(fig, figures_dir, "loss"),
                    "caption": "Evaluation loss during training (thin: seeds, thick: mean)."})
    table = [[int(k)] + [float(curves[name][0][k]) for name in curves] for k in k_points]
    sections = [{"title": "Normalised error by number of in-context examples",
                 "table": {"columns": ["k"] + list(curves), "rows": table}}]
    write_report(run_dir, "Transformers learn linear functions in context", "function-classes",
                 PAPER, mode, [c.to_json() for c in claims], figures, sections)
    return claims


RECIPE = register(Recipe(
    name="function-classes",
    description="a GPT-style transformer learns linear regression in context, close to least "
                "squares (Garg et al. 2022; linear class so far)",
    paper=PAPER, config_type=FunctionClassesConfig, full=full_config, quick=quick_config,
    run=run))
