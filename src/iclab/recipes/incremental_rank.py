"""incremental-rank: "Transformers learn through gradual rank increase" (Boix-Adserà,
Littwin, Abbe, Bengio, Susskind, NeurIPS 2023).

What is trained:

1. The theorem's toy: one softmax head with diagonal weights (``DiagonalSoftmaxHead``),
   f(X) = softmax(X diag(w_Q⊙w_K) Xᵀ/√d) X diag(w_V⊙w_O), on a fixed set of token
   matrices X ∈ R^{N×d} (iid N(0, 1)) labelled by a teacher of the same form with a few
   nonzero product entries of distinct sizes; squared error, full-batch gradient descent
   with a small step (≈ gradient flow) from α·N(0, 1) for several α.
2. A small attention-only transformer (2 layers, the induction-head model) on in-context
   associative recall, Adam, with every weight matrix's initialisation multiplied by s
   (``train.init_scale``).

What is measured: for the toy, the entries of the products' change from initialisation
ΔW_KQ = diag(a − a₀), ΔW_VO = diag(v − v₀) during training — an entry is active once it
has moved by ``toy.active`` × the smallest teacher entry — so rank ΔW = the number of
active entries, the time (rescaled as t / log(1/α), t = η × steps) at which each new entry
activates, and the loss; for the transformer, per head, the stable rank ‖ΔM‖_F² / ‖ΔM‖₂²
of the change of W_Kᵀ W_Q and W_O W_V since initialisation along training (the probes'
``heads/dqk`` and ``heads/dov``), against s.
"""

import dataclasses
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.config import ConfigError, check_positive, check_positive_int
from iclab.engine import (
    OptimConfig,
    ProbeConfig,
    Problem,
    TrainConfig,
    finite_sampler,
    query_token_problem,
)
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.models import CausalTransformer, CausalTransformerConfig, DiagonalSoftmaxHead
from iclab.recipes.analysis.incremental_rank import (
    plot_entries,
    plot_rescaled_loss,
    plot_transformer_ranks,
)
from iclab.tasks import ItemLabelTask

PAPER = ("Boix-Adserà, Littwin, Abbe, Bengio, Susskind: Transformers learn through gradual "
         "rank increase, NeurIPS 2023 (arXiv 2306.07042).")

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("toy_one_entry_per_stage", "each stage adds one active entry: the largest rise "
          "of rank ΔW_KQ + rank ΔW_VO between consecutive evaluations, over α ≤ 1e-2 and "
          "seeds", lambda r: r["toy"].query("alpha <= 0.01").max_jump, "<=", 1,
          reduce="max", paper=paper("≤ 1 per stage as α → 0", "Theorem (§3), Fig. 2b")),
    Claim("toy_learns_every_entry", "the stages end at the teacher: |active entries at the "
          "end − the teacher's nonzero entries|, over α and seeds",
          lambda r: (r["toy"].final_active - r["toy"].teacher_entries).abs(), "<=", 0,
          reduce="max"),
    Claim("toy_rescaled_collapse", "curves collapse against t / log(1/α) as α → 0: the "
          "largest shift of a stage's rescaled time between the two smallest α over that "
          "between the two largest α (mean over seeds)",
          lambda r: _stage_shift(r, smallest=True) / _stage_shift(r, smallest=False), "<",
          1.0, paper=paper("curves converge as α → 0", "Fig. 2a")),
    Claim("transformer_rank_grows", "the change of W_Kᵀ W_Q grows in rank during training: "
          "stable rank of ΔW_KQ at the end minus at the first probe, at the smallest s "
          "(mean over layers, heads and seeds)",
          lambda r: _rank_growth(r, "dqk"), ">", 0.0,
          paper=paper("increases along training", "Fig. 4 (ViT, GPT-2; Adam)")),
    Claim("smaller_init_lower_rank", "smaller initialisation gives a lower-rank ΔW_KQ: the "
          "largest rise of its final stable rank as s decreases (mean over layers, heads "
          "and seeds)", lambda r: np.diff(_final_by_scale(r, "dqk")).max(), "<", 0.0,
          paper=paper("lower at smaller init", "Fig. 7 (ViT on CIFAR-10, layers 1, 3, 5)")),
]

FIGURES = [
    Figure("toy_rescaled_loss", "Diagonal toy: loss against rescaled time t / log(1/α), "
           "per α (one seed); ticks: the times at which a new entry of ΔW activates.",
           plot_rescaled_loss),
    Figure("toy_entries", "Diagonal toy at the smallest α (one seed): the entries of "
           "w_Q⊙w_K (solid) and w_V⊙w_O (dashed) against rescaled time; dotted: the "
           "teacher's.", plot_entries),
    Figure("transformer_ranks", "Transformer: stable rank of ΔW_KQ and ΔW_VO (mean over "
           "layers, heads and seeds) along training, per initialisation scale s.",
           plot_transformer_ranks),
]
SECTIONS = [
    Section("Diagonal toy (per α and seed; τ_k: rescaled time of the k-th active entry)",
            table="toy"),
    Section("Transformer (final values per s and seed; means over layers and heads)",
            table="transformer"),
]


def _stage_shift(r, smallest: bool) -> float:
    """max_k |τ_k(α_i) − τ_k(α_j)| (mean over seeds) for the two smallest (or largest) α."""
    taus = r["toy"].groupby("alpha")[[c for c in r["toy"] if c.startswith("tau")]].mean()
    taus = taus.sort_index()
    pair = taus.iloc[:2] if smallest else taus.iloc[-2:]
    return float((pair.iloc[0] - pair.iloc[1]).abs().max())


def _final_by_scale(r, product: str) -> np.ndarray:
    """Final stable rank of Δ{product}, mean over seeds, in decreasing s."""
    table = r["transformer"]
    return table.groupby("scale")[f"{product}_stable_rank"].mean().sort_index(
        ascending=False).to_numpy()


def _rank_growth(r, product: str) -> float:
    curves = r["transformer_curves"]
    rows = curves[curves.scale == curves.scale.min()]
    by_step = rows.groupby("step")[f"{product}_stable_rank"].mean().sort_index()
    return float(by_step.iloc[-1] - by_step.iloc[0])


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ToyConfig:
    """Args:
        tokens: N, tokens per example.
        dim: d, token width.
        examples: size of the fixed training set.
        attention: the teacher's nonzero entries of w_Q⊙w_K (on the first coordinates).
        values: the teacher's nonzero entries of w_V⊙w_O (on the first coordinates).
        scales: the initialisation scales α, one model each.
        lr: gradient descent's step η.
        horizon: rescaled time t / log(1/α) trained to (t = η × steps).
        active: an entry is active once it has moved by this fraction of the smallest
            teacher entry.
        eval_every: steps between evaluations (the stage-time resolution).
        seeds: initialisations per α.
        data_seed: seed of the training set.
    """

    tokens: int = 8
    dim: int = 8
    examples: int = 512
    attention: tuple[float, ...] = (3.0, -2.0)
    values: tuple[float, ...] = (1.0, 0.6, 0.3)
    scales: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
    lr: float = 0.05
    horizon: float = 6.0
    active: float = 0.1
    eval_every: int = 5
    seeds: int = 3
    data_seed: int = 0

    def __post_init__(self):
        for key in ("tokens", "dim", "examples", "eval_every", "seeds"):
            check_positive_int(f"toy.{key}", getattr(self, key))
        for key in ("lr", "horizon", "active"):
            check_positive(f"toy.{key}", getattr(self, key))
        if max(len(self.attention), len(self.values)) > self.dim:
            raise ConfigError("toy.dim", self.dim, "at least the number of teacher entries "
                              "of toy.attention and toy.values")
        if not self.values or any(not v != 0 for v in self.values + self.attention):
            raise ConfigError("toy.values", self.values, "nonzero teacher entries (at least "
                              "one value entry; zero entries are the unlisted ones)")
        if any(not 0 < a < 1 for a in self.scales) or len(self.scales) < 2 \
                or list(self.scales) != sorted(self.scales, reverse=True):
            raise ConfigError("toy.scales", self.scales,
                              "at least two decreasing scales in (0, 1)")

    @property
    def teacher_entries(self) -> int:
        return len(self.attention) + len(self.values)

    def steps(self, alpha: float) -> int:
        """Steps that reach ``horizon`` in rescaled time, a multiple of ``eval_every``."""
        raw = math.ceil(self.horizon * math.log(1 / alpha) / self.lr)
        return self.eval_every * math.ceil(raw / self.eval_every)


@dataclass(frozen=True)
class IncrementalRankConfig:
    """Args:
        toy: the diagonal-head toy.
        task: the transformer's in-context recall task.
        init_scales: the initialisation multipliers s of the transformer, one model each.
        model: the attention-only transformer (resolved to the task's vocabulary;
            ``max_len``: learned positions for sequences up to that length, at least the
            task's 2 × n_pairs + 1 tokens).
        optim: Adam.
        train: steps, batch, seeds and the spectral probes (ΔW ranks).
        eval_tasks: held-out sequences for the loss and accuracy.
    """

    toy: ToyConfig = field(default_factory=ToyConfig)
    task: ItemLabelTask = field(default_factory=lambda: ItemLabelTask(n_pairs=8, items=64,
                                                                      labels=32))
    init_scales: tuple[float, ...] = (1.0, 0.3, 0.1)
    model: CausalTransformerConfig = field(default_factory=lambda: dataclasses.replace(
        CausalTransformerConfig.attention_only(), max_len=17))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=3e-3,
                                                                   b2=0.999))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=10_000, batch_size=128, eval_every=250, seeds=3, probes=ProbeConfig(
            every=250, batch_size=64, norms=False, entropy=False, spectra=True)))
    eval_tasks: int = 512

    def __post_init__(self):
        if len(self.init_scales) < 2 or any(not s > 0 for s in self.init_scales):
            raise ConfigError("init_scales", self.init_scales, "at least two scales > 0")
        if not self.train.probes.every or not self.train.probes.spectra:
            raise ConfigError("train.probes.every", self.train.probes.every,
                              "a multiple of train.eval_every with train.probes.spectra=true"
                              " (the ΔW ranks are probes)")
        check_positive_int("eval_tasks", self.eval_tasks)
        if 0 < self.model.max_len < self.task.length:
            raise ConfigError("model.max_len", self.model.max_len,
                              f"0 (no positions) or at least the task's length "
                              f"{self.task.length}")


def full_config() -> IncrementalRankConfig:
    return IncrementalRankConfig()


def quick_config() -> IncrementalRankConfig:
    return IncrementalRankConfig(toy=ToyConfig(seeds=2), train=TrainConfig(
        steps=3000, batch_size=128, eval_every=250, seeds=2, probes=ProbeConfig(
            every=250, batch_size=64, norms=False, entropy=False, spectra=True)))


# -- experiment -------------------------------------------------------------------------
def toy_problem(config: ToyConfig, alpha: float) -> Problem:
    d = config.dim
    teacher = DiagonalSoftmaxHead.from_products(
        jnp.zeros(d).at[:len(config.attention)].set(jnp.asarray(config.attention)),
        jnp.zeros(d).at[:len(config.values)].set(jnp.asarray(config.values)))
    x = jax.random.normal(jax.random.key(config.data_seed),
                          (config.examples, config.tokens, d))
    data = (x, jax.vmap(teacher)(x))

    def loss(model, batch):
        inputs, targets = batch
        return 0.5 * jnp.mean(jnp.sum((jax.vmap(model)(inputs) - targets) ** 2, (-2, -1)))

    def evaluate(model, batch):
        a, v = model.attention_product, model.value_product
        return {"loss": loss(model, batch), **{f"a{i}": a[i] for i in range(d)},
                **{f"v{i}": v[i] for i in range(d)}}

    return Problem(init_model=lambda key: DiagonalSoftmaxHead.initialise(d, alpha, key=key),
                   sample_batch=lambda key, batch_size: data, loss=loss, evaluate=evaluate,
                   sample_scheduled=finite_sampler(data, config.examples, "full"))


def experiment(config: IncrementalRankConfig) -> list[Job]:
    toy = config.toy
    jobs = []
    for alpha in toy.scales:
        train = TrainConfig(steps=toy.steps(alpha), batch_size=toy.examples,
                            eval_every=toy.eval_every, seeds=toy.seeds,
                            seed=config.train.seed)
        problem = toy_problem(toy, alpha)
        jobs.append(Job(f"toy_a{alpha:g}", problem, OptimConfig(name="sgd", lr=toy.lr), train,
                        eval_data=problem.sample_batch(None, 0),
                        label=f"toy α={alpha:g}", cost=0.05))
    model = config.model.resolve(config.task.vocab_size, config.task.vocab_size)
    problem = query_token_problem(config.task, lambda key: CausalTransformer(model, key=key))
    eval_batch = config.task.sample_batch(jax.random.key(5), config.eval_tasks)
    for s in config.init_scales:
        jobs.append(Job(f"tf_s{s:g}", problem, config.optim,
                        dataclasses.replace(config.train, init_scale=s), eval_data=eval_batch,
                        label=f"transformer s={s:g}"))
    return jobs


# -- measurement ------------------------------------------------------------------------
def _toy_rows(config: ToyConfig, alpha: float, job) -> list[dict]:
    d, threshold = config.dim, config.active * min(abs(v) for v in
                                                   config.attention + config.values)
    rows = []
    for seed in job.seeds:
        entries = np.stack([job.curves(f"{p}{i}")[seed].to_numpy()
                            for p in ("a", "v") for i in range(d)], axis=1)
        steps = job.curves("a0").index.to_numpy()
        active = (np.abs(entries - entries[0]) >= threshold).sum(axis=1)
        rescaled = steps * config.lr / math.log(1 / alpha)
        taus = {f"tau{k}": float(rescaled[np.argmax(active >= k)]) if (active >= k).any()
                else float("nan") for k in range(1, config.teacher_entries + 1)}
        rows.append({"alpha": alpha, "seed": seed, "steps": int(steps[-1]),
                     "teacher_entries": config.teacher_entries,
                     "final_active": int(active[-1]),
                     "max_jump": int(np.diff(active).max()),
                     "final_loss": float(job.curves("loss")[seed].iloc[-1]), **taus})
    return rows


def _head_mean(history: pd.DataFrame, key: str) -> pd.DataFrame:
    """Mean over layers and heads of probe ``heads/{key}`` per (step, seed)."""
    rows = history[history.metric.str.startswith(f"probe/heads/{key}/")]
    return rows.groupby(["step", "seed"]).value.mean()


def measure(config: IncrementalRankConfig, trained) -> dict[str, pd.DataFrame]:
    toy_rows = [row for alpha in config.toy.scales
                for row in _toy_rows(config.toy, alpha, trained[f"toy_a{alpha:g}"])]
    curves, finals = [], []
    for s in config.init_scales:
        job = trained[f"tf_s{s:g}"]
        table = pd.DataFrame({f"{p}_stable_rank": _head_mean(job.history, f"{p}/stable_rank")
                              for p in ("dqk", "dov")}).reset_index()
        table = table[table.step > 0]  # Δ = 0 at initialisation
        table.insert(0, "scale", s)
        curves.append(table)
        last = table[table.step == table.step.max()]
        for i, seed in enumerate(job.seeds):
            row = last[last.seed == seed].iloc[0]
            finals.append({"scale": s, "seed": seed,
                           "dqk_stable_rank": float(row.dqk_stable_rank),
                           "dov_stable_rank": float(row.dov_stable_rank),
                           "accuracy": float(job.final["accuracy"][i]),
                           "loss": float(job.final["loss"][i])})
    return {"toy": pd.DataFrame(toy_rows), "transformer": pd.DataFrame(finals),
            "transformer_curves": pd.concat(curves, ignore_index=True)}


RECIPE = Recipe(
    name="incremental-rank", title="Transformers learn through gradual rank increase",
    description="Stagewise learning with one new active entry per stage in the diagonal "
                "toy, and ΔW ranks growing along training (Boix-Adserà et al. 2023)",
    paper=PAPER, config_type=IncrementalRankConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, figures=FIGURES,
    sections=SECTIONS)
