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

Sweeps at the grid's largest (B, K): the Zipf exponent α of the class frequencies
(``zipf``; Chan et al. 2022 found in-context and in-weights learning coexisting at α = 1)
and the within-class noise ε (``noise``). They pack with that cell (``--pack``).

Measured at every evaluation: ICL accuracy (novel classes, labels re-assigned within the
sequence, two classes × N/2 exemplars; copying a random context label scores 1/2) and
IWL accuracy (the query's class absent from the context; chance 1/L); on the ICL
sequences, the fraction of predictions that are a context label, and the two halves of
the induction head (``instruments.item_label_scores``): layer 1's attention from each
label to its own item and layer 2's from the query to the labels of its class.

Claims: in-context learning appears with bursty data and many classes; it is absent
without burstiness, and absent with few classes (where the labels are learned in the
weights instead); it appears abruptly after a plateau, with an induction head whose
attention rises at the same time; at α = 1 both forms of learning coexist.
"""

import dataclasses
from dataclasses import dataclass, field

import jax
import optax
import pandas as pd

from iclab.config import ConfigError, check_positive_int
from iclab.engine import OptimConfig, Packable, Problem, TrainConfig
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.instruments import item_label_scores, rise_times
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes.analysis.bursty_icl import (
    cell,
    cell_tag,
    grid_means,
    icl_at,
    plot_curves,
    plot_grid,
    plot_mechanism,
    plot_sweeps,
    sweep_means,
)
from iclab.tasks import BurstyClassificationTask, bursty_tokens

PAPER = ("Reddy 2024, 'The mechanistic basis of data dependence and abrupt learning in an "
         "in-context classification task' (ICLR 2024, arXiv 2312.03002); Chan et al. 2022")


# -- spec: claims, figures and report sections -----------------------------------------
INDUCTION_MIN = 0.5
"""Attention mass on the pattern that counts as a formed head (uniform attention: the
query's 4 label tokens of 17 positions, 0.235; each label's own item, 0.23 on average)."""
RISE = (0.2, 0.5, 0.8)


def claims(config) -> list[Claim]:
    """ICL appears at the largest (B, K); it is absent at B = 0 and at the fewest classes
    (the rows that the grid allows); its transition and mechanism at the largest (B, K);
    coexistence at α = 1 when swept. Each is the mean over seeds."""
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
    transition = lambda r: r["transition"]
    rows += [
        Claim("abrupt_icl", f"in-context learning appears abruptly after a plateau (B = {b_max}, "
              f"K = {k_max}): the rise of ICL accuracy above the copy level 1/2, from 20 % to "
              "80 % of it, over the steps before it, (t₀.₈ − t₀.₂) / t₀.₂",
              lambda r: transition(r).icl_rise_width / transition(r).icl_t20, "<=", 0.5,
              paper=paper("abrupt jump after a plateau", "Reddy 2024, Fig. 1d")),
        Claim("induction_head_forms", "an induction head forms: layer 2's attention from the "
              "query on the label tokens of its class (ICL sequences; uniform 0.235)",
              lambda r: transition(r).induction_final, ">=", INDUCTION_MIN,
              paper=paper("ICL is driven by an induction head", "Reddy 2024, abstract")),
        Claim("previous_item_head", "… fed by layer 1: each label token's attention on its own "
              "item (uniform 0.23)", lambda r: transition(r).previous_item_final, ">=",
              INDUCTION_MIN, paper=paper("item–label pairing in layer 1", "Reddy 2024, §4")),
        Claim("head_with_icl", "the head's attention rises with ICL accuracy: |t₀.₅(induction "
              "attention) − t₀.₅(ICL)| / steps", lambda r: (transition(r).induction_t50
                                                             - transition(r).icl_t50).abs()
              / config.train.steps, "<=", 0.1,
              paper=paper("abrupt emergence of an induction head", "Reddy 2024, abstract"))]
    if 1.0 in config.zipf:
        rows += [
            Claim("zipf_keeps_icl", f"with Zipfian classes (α = 1, B = {b_max}, K = {k_max}) "
                  "in-context learning remains: ICL accuracy",
                  lambda r: cell(r, b_max, k_max, zipf=1.0).icl_accuracy, ">=", 0.8,
                  paper=paper("ICL and IWL coexist at α = 1", "Chan et al. 2022, Fig. 7")),
            Claim("zipf_adds_iwl", "… and the frequent classes' labels are learned in the "
                  "weights too: IWL accuracy (query classes drawn from the Zipf law)",
                  lambda r: cell(r, b_max, k_max, zipf=1.0).iwl_accuracy, ">=", 0.5,
                  paper=paper("ICL and IWL coexist at α = 1", "Chan et al. 2022, Fig. 7"))]
    return rows


FIGURES = [
    Figure("grid", "Final ICL accuracy (novel classes; chance 0.5) and IWL accuracy (query "
           "class absent from the context; chance 1/L) over the (B, K) grid, mean over seeds.",
           plot_grid),
    Figure("curves", "ICL and IWL accuracy during training (thin: seeds).", plot_curves),
    Figure("mechanism", "At the largest (B, K): ICL accuracy, the fraction of predictions "
           "that are a context label, and the two halves of the induction head during "
           "training (thin: seeds; dotted: uniform attention).", plot_mechanism),
    Figure("sweeps", "Final ICL and IWL accuracy against the Zipf exponent α and the "
           "within-class noise ε at the largest (B, K) (dots: seeds).", plot_sweeps),
]
SECTIONS = [Section("Grid", "Final values, mean over seeds (loss: on training sequences).",
                    grid_means),
            Section("Sweeps at the largest (B, K)", "Final values, mean over seeds.",
                    sweep_means),
            Section("Transition at the largest (B, K)", "Per seed: t_q is the first "
                    "evaluation at which a curve has covered q of its rise (ICL accuracy: "
                    "above the copy level 1/2).", table="transition"),
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
        zipf: Zipf exponents α trained at the largest (B, K) besides the task's own.
        noise: within-class noise levels ε trained there besides the task's own.
    """

    burstiness: tuple[int, ...] = (0, 1, 2, 4)
    classes: tuple[int, ...] = (32, 128, 512, 2048)
    zipf: tuple[float, ...] = (0.5, 1.0, 1.5)
    noise: tuple[float, ...] = (0.0, 0.4, 1.6)
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
        for name in ("zipf", "noise"):
            values = getattr(self, name)
            if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0
                   for v in values):
                raise ConfigError(name, values, "numbers >= 0 (an empty list: no sweep)")

    def task_for(self, burstiness: int, classes: int, **arrays) -> BurstyClassificationTask:
        """The task of one cell; ``arrays``: zipf and/or within_class_noise."""
        return dataclasses.replace(self.task, classes=classes,
                                   burstiness=burstiness or self.task.n_pairs,
                                   p_bursty=1.0 if burstiness else 0.0, **arrays)

    def cells(self) -> list[dict]:
        """Every trained cell: the grid, then the sweeps at the largest (B, K)."""
        t = self.task
        base = {"zipf": t.zipf, "within_class_noise": t.within_class_noise}
        rows = [{"burstiness": b, "classes": k, **base}
                for b in self.burstiness for k in self.classes]
        top = {"burstiness": max(self.burstiness), "classes": max(self.classes)}
        rows += [{**top, **base, "zipf": float(a)} for a in self.zipf if a != t.zipf]
        rows += [{**top, **base, "within_class_noise": float(e)} for e in self.noise
                 if e != t.within_class_noise]
        return rows

    def model_config(self) -> CausalTransformerConfig:
        t = self.task
        return dataclasses.replace(self.model, mlp=False, readout="linear",
                                   max_len=2 * t.n_pairs + 1).resolve(t.dim + t.labels, t.labels)


def full_config() -> BurstyIclConfig:
    return BurstyIclConfig()


def quick_config() -> BurstyIclConfig:
    """B ∈ {0, 4} × K ∈ {32, 512}; 12k steps, 2 seeds. The sweeps are left out: with the
    α = 1 cell the quick mode took 10 min 19 s on 2 cores (docs/results); they run in a
    stated mode, e.g. ``--set zipf=0.5,1,1.5 --set burstiness=4 --set classes=512 --pack``."""
    return BurstyIclConfig(burstiness=(0, 4), classes=(32, 512), zipf=(), noise=(),
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

    def mechanism(model, batch):
        """On ICL sequences: predictions that are a context label; the head's halves."""
        predicted = query_logits(model, batch, n_labels).argmax(-1)
        in_context = (predicted[:, None] == batch.labels).any(-1).mean()

        def scores(x, y, q, target):
            patterns = model.attention_patterns(bursty_tokens(x, y, q, n_labels))
            return item_label_scores(patterns, y, target)

        induction, previous = jax.vmap(scores)(batch.items, batch.labels, batch.query,
                                               batch.target)
        return {"context_label_fraction": in_context, "induction_attention": induction.mean(),
                "previous_item_attention": previous.mean()}

    def evaluate(model, data):
        train, icl, iwl = data
        return {"loss": loss(model, train), "icl_accuracy": accuracy(model, icl),
                "iwl_accuracy": accuracy(model, iwl), **mechanism(model, icl)}

    fields = task.array_fields()
    packable = Packable(values=fields,
                        rebuild=lambda values: make_problem(config, task.with_arrays(**values)),
                        family=("bursty", task.with_arrays(**dict.fromkeys(fields, 0.0))))
    return Problem(init_model=lambda key: CausalTransformer(model_config, key=key),
                   sample_batch=task.sample_batch, loss=loss, evaluate=evaluate,
                   inputs=lambda batch: jax.vmap(lambda x, y, q: bursty_tokens(
                       x, y, q, n_labels))(batch.items, batch.labels, batch.query),
                   packable=packable)


def tag_of(config: BurstyIclConfig, c: dict) -> str:
    return cell_tag(config.task, c["burstiness"], c["classes"], c["zipf"],
                    c["within_class_noise"])


def experiment(config: BurstyIclConfig) -> list[Job]:
    """One model family per cell; the cells are independent (trained side by side). The
    sweeps pack with the largest (B, K) cell: they differ only in the task's array fields."""
    jobs, b_max, k_max = [], max(config.burstiness), max(config.classes)
    for c in config.cells():
        b, k = c["burstiness"], c["classes"]
        task = config.task_for(b, k, zipf=c["zipf"], within_class_noise=c["within_class_noise"])
        key = jax.random.key(17)
        data = tuple(task.sample_batch(jax.random.fold_in(key, i), config.eval_sequences,
                                       mode=m) for i, m in enumerate(("train", "icl", "iwl")))
        pack = f"B{b}-K{k}" if (b, k) == (b_max, k_max) else None
        jobs.append(Job(tag_of(config, c), make_problem(config, task), config.optim,
                        config.train, eval_data=data, info=c, pack=pack))
    return jobs


def transition(job) -> pd.DataFrame:
    """Per seed: when ICL accuracy (above the copy level 1/2) and the head's two attention
    scores cover 20, 50 and 80 % of their rise, and the scores' final values."""
    icl = job.curves("icl_accuracy")
    induction, previous = job.curves("induction_attention"), job.curves("previous_item_attention")
    rows = []
    for seed in icl.columns:
        t_icl = rise_times(icl.index, icl[seed], RISE, baseline=0.5)
        t_ind = rise_times(induction.index, induction[seed], RISE)
        t_prev = rise_times(previous.index, previous[seed], RISE)
        rows.append({"seed": seed, "icl_t20": t_icl[0.2], "icl_t50": t_icl[0.5],
                     "icl_t80": t_icl[0.8], "icl_rise_width": t_icl[0.8] - t_icl[0.2],
                     "induction_t50": t_ind[0.5], "previous_item_t50": t_prev[0.5],
                     "icl_final": float(icl[seed].iloc[-1]),
                     "induction_final": float(induction[seed].iloc[-1]),
                     "previous_item_final": float(previous[seed].iloc[-1])})
    return pd.DataFrame(rows)


def measure(config: BurstyIclConfig, trained) -> dict[str, pd.DataFrame]:
    rows = []
    for job in trained.values():
        for s, seed in enumerate(job.seeds):
            rows.append({**job.info, "seed": seed,
                         **{name: float(v[s]) for name, v in job.final.items()}})
    top = tag_of(config, {"burstiness": max(config.burstiness), "classes": max(config.classes),
                          "zipf": config.task.zipf,
                          "within_class_noise": config.task.within_class_noise})
    return {"grid": pd.DataFrame(rows), "transition": transition(trained[top])}


RECIPE = Recipe(
    name="bursty-icl", title="Bursty data and the emergence of in-context learning",
    description="In-context learning appears only with bursty data and many classes "
                "(Reddy 2024; Chan et al. 2022)",
    paper=PAPER, config_type=BurstyIclConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=claims, figures=FIGURES, sections=SECTIONS)
