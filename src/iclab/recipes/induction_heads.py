"""induction-heads: an induction head forms abruptly, and when (Olsson et al. 2022; Musat,
Pimentel, Noci et al. 2025, "On the Emergence of Induction Heads for In-Context Learning").

Setting: the minimal in-context task (``ItemLabelTask``): N distinct items each followed
by a label drawn afresh per sequence, then a query item from the context; the target is
its label, so only an induction circuit (layer 1: attend to the previous token; layer 2:
match the query against those, copy the label) solves it. Model: a 2-layer
attention-only softmax transformer (one head per layer, one-hot tokens embedded, learned
positions, linear read-out), trained with Adam and cross-entropy on the query's label.

Measured per N and seed: the query accuracy and loss, the induction score of layer 2 at
the query row and the previous-token score of layer 1 (``iclab.instruments`` "mul" rule:
fraction of attention mass on the pattern), every ``eval_every`` steps. Emergence time:
the first evaluation step at which the query accuracy reaches ``threshold``; the score's
rise time: the first step at which the induction score reaches ``threshold``. Training of
an N stops once every seed's accuracy is ≥ ``stop_accuracy`` (or at ``train.steps``).

Claims: an induction head forms (final induction score ≥ 0.5 for every N); the loss drop
coincides with the score's rise; the emergence time grows quadratically with N (log-log
slope within [1.6, 2.4]). The quadratic law is proved by Musat et al. for their
disentangled model under gradient flow on the population MSE loss; here it is tested
on a standard attention-only transformer trained with Adam and cross-entropy, so a
different exponent is a finding, not a bug.
"""

import dataclasses
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from iclab._errors import ConfigError, check_positive, check_positive_int
from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer
from iclab.instruments import induction_mask, pattern_score, previous_token_mask
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes._base import Recipe, register
from iclab.recipes._claims import check
from iclab.report import figure, plot_metric_by_seed, save_figure, write_report
from iclab.store import MetricRows
from iclab.tasks import ItemLabelTask, one_hot_tokens

PAPER = ("Olsson et al. 2022, 'In-context Learning and Induction Heads'; Musat, Pimentel, Noci, "
         "Stolfo, Sachan, Hofmann 2025, 'On the Emergence of Induction Heads for In-Context "
         "Learning' (arXiv 2511.01033)")


@dataclass(frozen=True)
class InductionConfig:
    """Context lengths, task, model and training of the induction-head recipe.

    Args:
        n_values: the context sizes N (pairs) to train, one model family per N.
        items: item vocabulary (≥ max N).
        labels: label vocabulary.
        threshold: accuracy (and induction score) that defines emergence.
        stop_accuracy: stop training an N once every seed's accuracy reaches this.
        eval_sequences: held-out sequences per evaluation.
        eval_seed: key of the held-out sequences.
        model: the attention-only transformer (``layers``, ``heads``, ``key_size``,
            ``dim``, ``init_std``; the rest is set per N).
    """

    n_values: tuple[int, ...] = (4, 8, 16, 32)
    items: int = 64
    labels: int = 32
    threshold: float = 0.5
    stop_accuracy: float = 0.95
    eval_sequences: int = 512
    eval_seed: int = 5
    model: CausalTransformerConfig = field(default_factory=lambda: CausalTransformerConfig(
        layers=("softmax", "softmax"), heads=1, key_size=32, dim=64, readout="linear",
        init_std=0.05))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=3e-3,
                                                                   b2=0.999))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=60_000, batch_size=128, eval_every=100, seeds=3))

    def __post_init__(self):
        if (len(self.n_values) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 2
                                          for n in self.n_values)):
            raise ConfigError("n_values", self.n_values,
                              "a comma-separated list of at least two integers >= 2")
        check_positive_int("items", self.items)
        check_positive_int("labels", self.labels)
        if self.items < max(self.n_values):
            raise ConfigError("items", self.items, f"an integer >= max(n_values) = "
                              f"{max(self.n_values)}")
        for key in ("threshold", "stop_accuracy"):
            value = getattr(self, key)
            if not 0 < value <= 1:
                raise ConfigError(key, value, "a number in (0, 1]")
        check_positive_int("eval_sequences", self.eval_sequences)
        check_positive("model.init_std", self.model.init_std)
        if set(self.model.layers) != {"softmax"} or len(self.model.layers) < 2:
            raise ConfigError("model.layers", self.model.layers,
                              "at least two 'softmax' layers (an attention-only transformer)")

    def task(self, n: int) -> ItemLabelTask:
        return ItemLabelTask(n_pairs=n, items=self.items, labels=self.labels)

    def model_for(self, n: int) -> CausalTransformerConfig:
        task = self.task(n)
        return dataclasses.replace(self.model, mlp=False, readout="linear",
                                   max_len=task.length).resolve(task.vocab_size,
                                                                 task.vocab_size)


def full_config() -> InductionConfig:
    """N = 4, 8, 16, 32; 3 seeds; up to 60k steps per N."""
    return InductionConfig()


def quick_config() -> InductionConfig:
    """N = 4, 6, 8, 12; 2 seeds; up to 20k steps per N."""
    return InductionConfig(n_values=(4, 6, 8, 12),
                           train=TrainConfig(steps=20_000, batch_size=128, eval_every=100,
                                             seeds=2))


def query_logits(model, tokens, vocab_size: int):
    return jax.vmap(lambda t: model(one_hot_tokens(t, vocab_size))[-1])(tokens)


def query_row_scores(model, tokens, vocab_size: int) -> dict:
    """Induction score of the last layer and previous-token score of the first layer at
    the query row (max over heads), averaged over sequences."""

    def one(t):
        patterns = model.attention_patterns(one_hot_tokens(t, vocab_size))  # (L, H, T, T)
        last_row = jnp.zeros((t.shape[0],) * 2, bool).at[-1].set(True)
        induction = induction_mask(t) & last_row
        previous = previous_token_mask(t.shape[0])
        ind = jax.vmap(lambda a: pattern_score(a, induction))(patterns[-1]).max()
        prev = jax.vmap(lambda a: pattern_score(a, previous))(patterns[0]).max()
        return ind, prev

    ind, prev = jax.vmap(one)(tokens)
    return {"induction_score": ind.mean(), "previous_token_score": prev.mean()}


def make_problem(config: InductionConfig, n: int) -> Problem:
    task, model_config = config.task(n), config.model_for(n)
    vocab = task.vocab_size

    def loss(model, batch):
        return optax.softmax_cross_entropy_with_integer_labels(
            query_logits(model, batch.tokens, vocab), batch.target).mean()

    def evaluate(model, batch):
        logits = query_logits(model, batch.tokens, vocab)
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits,
                                                                        batch.target).mean(),
                "accuracy": (logits.argmax(-1) == batch.target).mean(),
                **query_row_scores(model, batch.tokens, vocab)}

    return Problem(init_model=lambda key: CausalTransformer(model_config, key=key),
                   sample_batch=task.sample_batch, loss=loss, evaluate=evaluate)


def first_crossing(steps: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """The first step whose value is ≥ threshold (NaN if none)."""
    above = np.nonzero(values >= threshold)[0]
    return float(steps[above[0]]) if above.size else math.nan


def loglog_slope(n_values, times) -> float:
    """Least-squares slope of log t against log N (NaN if any t is missing)."""
    times = np.asarray(times, float)
    if np.any(~np.isfinite(times)):
        return math.nan
    return float(np.polyfit(np.log(n_values), np.log(times), 1)[0])


def run(config: InductionConfig, run_dir, console, mode: str = "full") -> list:
    from iclab._console import training_progress

    results = []
    for n in config.n_values:
        tag = f"N{n}"
        task = config.task(n)
        trainer = Trainer(make_problem(config, n), config.optim, config.train)
        eval_batch = task.sample_batch(jax.random.key(config.eval_seed), config.eval_sequences)
        stop = lambda step, m: bool(np.all(np.asarray(m["accuracy"]) >= config.stop_accuracy))
        start = run_dir.checkpoint_step(f"checkpoint-{tag}") or 0
        with training_progress(console, f"N = {n}", config.train.steps, start) as progress:
            state = trainer.fit(eval_batch, run=run_dir, progress=progress, tag=tag, stop=stop)
        results.append({"n": n, "stopped_at": int(state.step[0]),
                        "model": trainer.model(jax.tree.map(lambda a: a[0], state.params)),
                        "eval_tokens": np.asarray(eval_batch.tokens[0])})

    metrics = run_dir.metrics()
    seeds = sorted(s for s in metrics.seed.unique() if s >= 0)
    table = []
    for r in results:
        tag = f"N{r['n']}"
        curves = {}
        for name in ("accuracy", "induction_score", "loss", "previous_token_score"):
            rows = metrics[metrics.metric == f"{tag}/{name}"]
            curves[name] = rows.pivot_table(index="step", columns="seed", values="value")
        steps = curves["accuracy"].index.to_numpy()
        r["t_acc"] = [first_crossing(steps, curves["accuracy"][s].to_numpy(), config.threshold)
                      for s in seeds]
        r["t_score"] = [first_crossing(steps, curves["induction_score"][s].to_numpy(),
                                       config.threshold) for s in seeds]
        r["final_score"] = float(curves["induction_score"].iloc[-1].mean())
        r["final_accuracy"] = float(curves["accuracy"].iloc[-1].mean())
        r["final_previous"] = float(curves["previous_token_score"].iloc[-1].mean())
        table.append([r["n"], float(np.mean(r["t_acc"])), float(np.std(r["t_acc"])),
                      float(np.mean(r["t_score"])), r["final_accuracy"], r["final_score"],
                      r["final_previous"], r["stopped_at"]])

    n_values = [r["n"] for r in results]
    mean_times = [float(np.mean(r["t_acc"])) for r in results]
    slope = loglog_slope(n_values, mean_times)
    per_seed_slopes = [loglog_slope(n_values, [r["t_acc"][i] for r in results])
                       for i in range(len(seeds))]
    gaps = [abs(ts - ta) / ta for r in results
            for ta, ts in zip(r["t_acc"], r["t_score"], strict=True)]
    claims = [
        check("induction_head_forms", "an induction head forms: final layer-2 induction "
              "score at the query (mean over seeds), minimum over N",
              min(r["final_score"] for r in results), ">=", 0.5,
              paper="≈ 1 after the phase change (Olsson et al.)"),
        check("drop_coincides", "the loss drop coincides with the induction score's rise: "
              "mean |t_score − t_acc| / t_acc over N and seeds",
              float(np.mean(gaps)) if gaps else math.nan, "<=", 0.2,
              paper="same time (Olsson et al. 2022)"),
        check("quadratic_emergence", "emergence time grows quadratically with N: log-log "
              f"slope of t_acc over N = {', '.join(map(str, n_values))}", slope, ">=", 1.6,
              paper="2 (Θ(N²), Musat et al., disentangled model, gradient flow)"),
        check("quadratic_emergence_upper", "… and the slope is at most 2.4", slope, "<=", 2.4,
              paper="2"),
    ]
    rows = MetricRows()
    for r in results:
        for seed, ta, ts in zip(seeds, r["t_acc"], r["t_score"], strict=True):
            rows.add(r["stopped_at"], int(seed), f"N{r['n']}/emergence_step", ta)
            rows.add(r["stopped_at"], int(seed), f"N{r['n']}/score_rise_step", ts)
    rows.add(0, -1, "emergence_loglog_slope", slope)
    run_dir.write_metrics("final", rows)
    run_dir.write_json("emergence.json", {
        "n_values": n_values, "mean_emergence_step": mean_times, "slope": slope,
        "per_seed_slopes": per_seed_slopes,
        "per_n": [{k: v for k, v in r.items() if k not in ("model", "eval_tokens")}
                  for r in results]})
    _report(config, run_dir, metrics, results, claims, table, slope, mode)
    return claims


def _report(config, run_dir, metrics, results, claims, table, slope, mode):
    folder = run_dir.path / "figures"
    figures = []
    fig, axes = figure(3, width=4.2)
    for i, r in enumerate(results):
        tag, color = f"N{r['n']}", f"C{i}"
        plot_metric_by_seed(axes[0], metrics, f"{tag}/loss", f"N = {r['n']}", color=color)
        plot_metric_by_seed(axes[1], metrics, f"{tag}/accuracy", f"N = {r['n']}", color=color)
        plot_metric_by_seed(axes[2], metrics, f"{tag}/induction_score", f"N = {r['n']}",
                            color=color)
    for ax, label in zip(axes, ("query loss (cross-entropy)", "query accuracy",
                                "layer-2 induction score at the query"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    axes[1].axhline(config.threshold, color="grey", lw=0.6)
    axes[0].legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "phase_change"),
                    "caption": "Plateau, then an abrupt drop of the loss; the accuracy and the "
                               "induction score rise together (thin: seeds, thick: mean; grey: "
                               "the emergence threshold)."})
    fig, (ax,) = figure(1, width=5.0)
    n_values = np.array([r["n"] for r in results], float)
    for r in results:
        ax.scatter([r["n"]] * len(r["t_acc"]), r["t_acc"], color="C0", alpha=0.4, s=14)
    means = np.array([np.mean(r["t_acc"]) for r in results])
    ax.plot(n_values, means, "o-", color="C0", label=f"mean over seeds (slope {slope:.2f})")
    if np.all(np.isfinite(means)):
        ax.plot(n_values, means[0] * (n_values / n_values[0]) ** 2, "--", color="grey",
                label="∝ N² (Musat et al.)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context pairs N")
    ax.set_ylabel(f"emergence step (accuracy ≥ {config.threshold})")
    ax.legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "emergence_time"),
                    "caption": "Emergence time against N on log-log axes (dots: seeds)."})
    last = results[-1]
    model, tokens = last["model"], last["eval_tokens"]
    vocab = config.task(last["n"]).vocab_size
    patterns = np.asarray(model.attention_patterns(one_hot_tokens(jnp.asarray(tokens), vocab)))
    fig, axes = figure(patterns.shape[0], width=4.2, height=4.0)
    for layer, ax in enumerate(axes):
        ax.imshow(patterns[layer, 0], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {layer + 1}, head 1", fontsize=9)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    figures.append({"svg": save_figure(fig, folder, "attention_patterns"),
                    "caption": f"Attention patterns of the trained model (N = {last['n']}, "
                               "seed 0) on one evaluation sequence: layer 1 attends to the "
                               "previous token, layer 2 from the query to the label after the "
                               "matching item."})
    sections = [{"title": "Per N", "text": "Emergence (first step with accuracy ≥ threshold) "
                 "and the induction score's rise; final values are at the stopping step.",
                 "table": {"columns": ["N", "t_acc mean", "t_acc std", "t_score mean",
                                       "final acc", "final induction", "final prev-token",
                                       "stopped at"], "rows": table}}]
    write_report(run_dir, "Induction-head emergence", "induction-heads", PAPER, mode,
                 [c.to_json() for c in claims], figures, sections)


RECIPE = register(Recipe(
    name="induction-heads",
    description="Induction heads form abruptly on the minimal in-context task; emergence time "
                "against context length (Olsson et al. 2022; Musat et al. 2025)",
    paper=PAPER, config_type=InductionConfig, full=full_config, quick=quick_config, run=run))
