"""bursty-icl: in-context vs in-weights learning depends on the data (Chan et al. 2022;
Reddy 2024, "The mechanistic basis of data dependence and abrupt learning in an
in-context classification task", arXiv 2312.03002).

Task: ``BurstyClassificationTask`` — K classes of D = 63-dimensional items (class means
plus within-class noise ε = 0.1), L = 32 labels shared by the classes, N = 8 item–label
pairs then a query item; the target is the query's label. Bursty sequences (burstiness
B) hold N/B classes B times each, one of them the query's; B = 0 here means no bursty
sequences at all (every context is i.i.d. over classes, so the query's class is rarely
in the context). Model: a 2-layer attention-only transformer (one head per layer) on
tokens [item; 0] / [0; one-hot label] with learned positions, trained with Adam and
cross-entropy on the query's label, for every (B, K) of the grid.

Measured: ICL accuracy (novel classes, labels re-assigned within the sequence, two
classes × N/2 exemplars; chance 1/2) and IWL accuracy (the query's class absent from
the context; chance 1/L). Claims: in-context learning appears with bursty data and many
classes; it is absent without burstiness, and absent with few classes (where the
labels are learned in the weights instead).
"""

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from iclab._errors import ConfigError, check_positive_int
from iclab.engine import FitJob, OptimConfig, Problem, TrainConfig, Trainer, fit_concurrently
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes._base import Recipe, register
from iclab.recipes._claims import check
from iclab.report import figure, plot_metric_by_seed, save_figure, write_report
from iclab.store import MetricRows
from iclab.tasks import BurstyClassificationTask

PAPER = ("Reddy 2024, 'The mechanistic basis of data dependence and abrupt learning in an "
         "in-context classification task' (ICLR 2024, arXiv 2312.03002); Chan et al. 2022")


@dataclass(frozen=True)
class BurstyIclConfig:
    """The (burstiness, classes) grid, task, model and training.

    Args:
        burstiness: values of B (0 = no bursty sequences).
        classes: values of K.
        task: the other task settings (``classes``, ``burstiness`` and ``p_bursty`` are
            set per grid cell).
        model: attention-only transformer (layers, heads, key_size, dim, init_std).
        eval_sequences: sequences per ICL / IWL evaluation.
    """

    burstiness: tuple[int, ...] = (0, 1, 2, 4)
    classes: tuple[int, ...] = (32, 128, 512, 2048)
    task: BurstyClassificationTask = field(default_factory=BurstyClassificationTask)
    model: CausalTransformerConfig = field(default_factory=lambda: CausalTransformerConfig(
        layers=("softmax", "softmax"), heads=1, key_size=32, dim=64, readout="linear",
        init_std=0.05))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3,
                                                                   b2=0.999))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=20_000, batch_size=128, eval_every=500, seeds=2))
    eval_sequences: int = 1024

    def __post_init__(self):
        n = self.task.n_pairs
        if not self.burstiness or any(isinstance(b, bool) or not isinstance(b, int) or b < 0
                                      or (b and n % b) for b in self.burstiness):
            raise ConfigError("burstiness", self.burstiness,
                              f"integers >= 0 (0 = no bursty sequences) dividing "
                              f"task.n_pairs = {n}")
        if not self.classes or any(isinstance(k, bool) or not isinstance(k, int) or k < n
                                   for k in self.classes):
            raise ConfigError("classes", self.classes, f"integers >= task.n_pairs = {n}")
        check_positive_int("eval_sequences", self.eval_sequences)

    def task_for(self, burstiness: int, classes: int) -> BurstyClassificationTask:
        import dataclasses

        return dataclasses.replace(self.task, classes=classes,
                                   burstiness=burstiness or self.task.n_pairs,
                                   p_bursty=1.0 if burstiness else 0.0)

    def model_config(self) -> CausalTransformerConfig:
        import dataclasses

        t = self.task
        return dataclasses.replace(self.model, mlp=False, readout="linear",
                                   max_len=2 * t.n_pairs + 1).resolve(t.dim + t.labels, t.labels)


def full_config() -> BurstyIclConfig:
    return BurstyIclConfig()


def quick_config() -> BurstyIclConfig:
    """B ∈ {0, 4} × K ∈ {32, 512}; 12k steps, 2 seeds."""
    return BurstyIclConfig(burstiness=(0, 4), classes=(32, 512),
                           train=TrainConfig(steps=12_000, batch_size=128, eval_every=500,
                                             seeds=2))


def sequence_tokens(items, labels, query, n_labels: int):
    """[x_1; 0], [0; e_{y_1}], ..., [x_N; 0], [0; e_{y_N}], [x_q; 0]: (2N + 1, D + L)."""
    n, d = items.shape
    item_tokens = jnp.concatenate([items, jnp.zeros((n, n_labels))], axis=1)
    label_tokens = jnp.concatenate([jnp.zeros((n, d)), jax.nn.one_hot(labels, n_labels)], 1)
    pairs = jnp.stack([item_tokens, label_tokens], axis=1).reshape(2 * n, d + n_labels)
    query_token = jnp.concatenate([query, jnp.zeros(n_labels)])[None]
    return jnp.concatenate([pairs, query_token])


def query_logits(model, batch, n_labels: int):
    return jax.vmap(lambda x, y, q: model(sequence_tokens(x, y, q, n_labels))[-1])(
        batch.items, batch.labels, batch.query)


def make_problem(config: BurstyIclConfig, task: BurstyClassificationTask) -> Problem:
    model_config, n_labels = config.model_config(), task.labels

    def loss(model, batch):
        return optax.softmax_cross_entropy_with_integer_labels(
            query_logits(model, batch, n_labels), batch.target).mean()

    def accuracy(model, batch):
        return (query_logits(model, batch, n_labels).argmax(-1) == batch.target).mean()

    def evaluate(model, data):
        train, icl, iwl = data
        return {"loss": loss(model, train), "icl_accuracy": accuracy(model, icl),
                "iwl_accuracy": accuracy(model, iwl)}

    return Problem(init_model=lambda key: CausalTransformer(model_config, key=key),
                   sample_batch=task.sample_batch, loss=loss, evaluate=evaluate)


def run(config: BurstyIclConfig, run_dir, console, mode: str = "full") -> list:
    jobs = []
    for b in config.burstiness:
        for k in config.classes:
            task = config.task_for(b, k)
            key = jax.random.key(17)
            data = tuple(task.sample_batch(jax.random.fold_in(key, i), config.eval_sequences,
                                           mode=m) for i, m in enumerate(("train", "icl", "iwl")))
            trainer = Trainer(make_problem(config, task), config.optim, config.train)
            jobs.append(((b, k), FitJob(trainer, data, tag=f"B{b}-K{k}")))
    # The grid cells are independent models: train them side by side.
    states = fit_concurrently([job for _, job in jobs], run=run_dir, console=console)
    grid = {}
    for ((b, k), job), state in zip(jobs, states, strict=True):
        final = job.trainer.evaluate(state, job.eval_data)
        grid[(b, k)] = {name: float(np.mean(v)) for name, v in final.items()}
        console.print(f"{job.tag}: ICL {grid[(b, k)]['icl_accuracy']:.3f}, "
                      f"IWL {grid[(b, k)]['iwl_accuracy']:.3f}")

    b_max, k_max, k_min = max(config.burstiness), max(config.classes), min(config.classes)
    claims = [check("icl_emerges", f"in-context learning appears with bursty data and many "
                    f"classes: ICL accuracy at B = {b_max}, K = {k_max} (0.5 = copying a random "
                    "context label, 1/L = guessing)",
                    grid[(b_max, k_max)]["icl_accuracy"], ">=", 0.8,
                    paper="≈ 1 (Reddy Fig. 2)")]
    if 0 in config.burstiness:
        claims.append(check("no_icl_without_bursts", "no in-context learning without bursty "
                            f"sequences: ICL accuracy at B = 0, K = {k_max}",
                            grid[(0, k_max)]["icl_accuracy"], "<=", 0.6,
                            paper="low (Reddy Fig. 2)"))
    if k_min < k_max:
        claims.append(check("no_icl_few_classes", "no in-context learning with few classes: "
                            f"ICL accuracy at B = {b_max}, K = {k_min}",
                            grid[(b_max, k_min)]["icl_accuracy"], "<=", 0.6,
                            paper="low (in-weights instead)"))
    rows = MetricRows()
    for (b, k), values in grid.items():
        for name, value in values.items():
            rows.add(config.train.steps, -1, f"B{b}-K{k}/final_{name}", value)
    run_dir.write_metrics("final", rows)
    run_dir.write_json("grid.json", [{"burstiness": b, "classes": k, **v}
                                     for (b, k), v in grid.items()])
    _report(config, run_dir, grid, claims, mode)
    return claims


def _report(config, run_dir, grid, claims, mode):
    metrics = run_dir.metrics()
    folder = run_dir.path / "figures"
    figures = []
    fig, axes = figure(2, width=4.2)
    for ax, name in zip(axes, ("icl_accuracy", "iwl_accuracy"), strict=True):
        matrix = np.array([[grid[(b, k)][name] for k in config.classes]
                           for b in config.burstiness])
        image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(config.classes)), [str(k) for k in config.classes])
        ax.set_yticks(range(len(config.burstiness)), [str(b) for b in config.burstiness])
        ax.set_xlabel("classes K")
        ax.set_ylabel("burstiness B (0 = none)")
        ax.set_title(name.replace("_", " "), fontsize=9)
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color="w",
                        fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    figures.append({"svg": save_figure(fig, folder, "grid"),
                    "caption": "Final ICL accuracy (novel classes; chance 0.5) and IWL "
                               "accuracy (query class absent from the context; chance 1/L) "
                               "over the (B, K) grid, mean over seeds."})
    fig, axes = figure(2, width=4.2)
    for i, (b, k) in enumerate(grid):
        for ax, name in zip(axes, ("icl_accuracy", "iwl_accuracy"), strict=True):
            plot_metric_by_seed(ax, metrics, f"B{b}-K{k}/{name}", f"B={b}, K={k}",
                                color=f"C{i}")
    for ax, name in zip(axes, ("ICL accuracy", "IWL accuracy"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "curves"),
                    "caption": "ICL and IWL accuracy during training (thin: seeds)."})
    table = [[b, k, v["icl_accuracy"], v["iwl_accuracy"], v["loss"]] for (b, k), v in
             grid.items()]
    sections = [{"title": "Grid", "text": "Final values, mean over seeds.",
                 "table": {"columns": ["B", "K", "ICL acc", "IWL acc", "train loss"],
                           "rows": table}}]
    write_report(run_dir, "Bursty data and the emergence of in-context learning", "bursty-icl",
                 PAPER, mode, [c.to_json() for c in claims], figures, sections)


RECIPE = register(Recipe(
    name="bursty-icl",
    description="In-context learning appears only with bursty data and many classes "
                "(Reddy 2024; Chan et al. 2022)",
    paper=PAPER, config_type=BurstyIclConfig, full=full_config, quick=quick_config, run=run))
