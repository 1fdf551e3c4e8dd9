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
import optax
import pandas as pd

from iclab.config import ConfigError, check_positive_int
from iclab.engine import OptimConfig, Problem, TrainConfig
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes.analysis.bursty_icl import grid_means, icl_at, plot_curves, plot_grid
from iclab.tasks import BurstyClassificationTask, bursty_tokens

PAPER = ("Reddy 2024, 'The mechanistic basis of data dependence and abrupt learning in an "
         "in-context classification task' (ICLR 2024, arXiv 2312.03002); Chan et al. 2022")


# -- spec: claims, figures and report sections -----------------------------------------
def claims(config) -> list[Claim]:
    """ICL appears at the largest (B, K); it is absent at B = 0 and at the fewest classes
    (the rows that the grid allows). Each is the mean over seeds."""
    b_max, k_max, k_min = max(config.burstiness), max(config.classes), min(config.classes)
    rows = [Claim("icl_emerges", f"in-context learning appears with bursty data and many "
                  f"classes: ICL accuracy at B = {b_max}, K = {k_max} (0.5 = copying a random "
                  "context label, 1/L = guessing)", lambda r: icl_at(r, b_max, k_max), ">=", 0.8,
                  paper=paper("≈ 1", "Reddy 2024, Fig. 2"))]
    if 0 in config.burstiness:
        rows.append(Claim("no_icl_without_bursts", "no in-context learning without bursty "
                          f"sequences: ICL accuracy at B = 0, K = {k_max}",
                          lambda r: icl_at(r, 0, k_max), "<=", 0.6,
                          paper=paper("low", "Reddy 2024, Fig. 2")))
    if k_min < k_max:
        rows.append(Claim("no_icl_few_classes", "no in-context learning with few classes: "
                          f"ICL accuracy at B = {b_max}, K = {k_min}",
                          lambda r: icl_at(r, b_max, k_min), "<=", 0.6,
                          paper=paper("low (in-weights instead)", "Reddy 2024, Fig. 2")))
    return rows


FIGURES = [
    Figure("grid", "Final ICL accuracy (novel classes; chance 0.5) and IWL accuracy (query "
           "class absent from the context; chance 1/L) over the (B, K) grid, mean over seeds.",
           plot_grid),
    Figure("curves", "ICL and IWL accuracy during training (thin: seeds).", plot_curves),
]
SECTIONS = [Section("Grid", "Final values, mean over seeds (loss: on training sequences).",
                    grid_means),
            Section("Per seed", table="grid")]


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
    model: CausalTransformerConfig = field(default_factory=CausalTransformerConfig.attention_only)
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


def query_logits(model, batch, n_labels: int):
    return jax.vmap(lambda x, y, q: model(bursty_tokens(x, y, q, n_labels))[-1])(
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
                   sample_batch=task.sample_batch, loss=loss, evaluate=evaluate,
                   inputs=lambda batch: jax.vmap(lambda x, y, q: bursty_tokens(
                       x, y, q, n_labels))(batch.items, batch.labels, batch.query))


def experiment(config: BurstyIclConfig) -> list[Job]:
    """One model family per (B, K) cell; the cells are independent (trained side by side)."""
    jobs = []
    for b in config.burstiness:
        for k in config.classes:
            task = config.task_for(b, k)
            key = jax.random.key(17)
            data = tuple(task.sample_batch(jax.random.fold_in(key, i), config.eval_sequences,
                                           mode=m) for i, m in enumerate(("train", "icl", "iwl")))
            jobs.append(Job(f"B{b}-K{k}", make_problem(config, task), config.optim,
                            config.train, eval_data=data, info={"burstiness": b, "classes": k}))
    return jobs


def measure(config: BurstyIclConfig, trained) -> dict[str, pd.DataFrame]:
    rows = []
    for job in trained.values():
        for s, seed in enumerate(job.seeds):
            rows.append({**job.info, "seed": seed,
                         **{name: float(v[s]) for name, v in job.final.items()}})
    return {"grid": pd.DataFrame(rows)}


RECIPE = Recipe(
    name="bursty-icl", title="Bursty data and the emergence of in-context learning",
    description="In-context learning appears only with bursty data and many classes "
                "(Reddy 2024; Chan et al. 2022)",
    paper=PAPER, config_type=BurstyIclConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=claims, figures=FIGURES, sections=SECTIONS)
