"""induction-heads: an induction head forms abruptly, and when (Olsson et al. 2022; Musat,
Pimentel, Noci et al. 2025, "On the Emergence of Induction Heads for In-Context Learning").

Part 1 — a standard transformer. The minimal in-context task (``ItemLabelTask``): N
distinct items each followed by a label drawn afresh per sequence, then a query item from
the context; the target is its label, so only an induction circuit (layer 1: attend to the
previous token; layer 2: match the query against those, copy the label) solves it. Model:
a 2-layer attention-only softmax transformer (one head per layer, one-hot tokens embedded,
learned positions, linear read-out), trained with Adam and cross-entropy on the query's
label. Measured per N and seed every ``eval_every`` steps: query accuracy and loss, the
induction score of layer 2 at the query row and the previous-token score of layer 1
(``iclab.instruments`` "mul" rule: fraction of attention mass on the pattern), and the
progress measures α̃₃, β̃₂, γ̃₃ (``induction_progress``). Emergence time: the first
evaluation step at which the query accuracy reaches ``threshold``; the score's rise time:
the first step at which the induction score reaches ``threshold``.

Part 2 — the disentangled model (``DisentangledTransformer``) on the orthonormal task
(``OrthonormalPairsTask``), the setting of Musat et al.'s theorems: zero initialisation,
population MSE, full-batch gradient descent.
- Subspace: the full model (W¹, W², W³; float64) is trained on a batch closed under a
  finite symmetry group with the same commutant as O(D) × U(D/2) (so its loss is exactly
  invariant); the relative residual of the weights outside the 19-dimensional subspace is
  logged, and the 19 coordinates are compared with the reduced dynamics. Control: the same
  training on i.i.d. Haar-rotated sequences, whose loss is invariant only on average.
- Emergence law: gradient descent on the 19 coordinates with the exact population loss
  (time in units of the coordinate flow, lr·steps, which does not depend on D) for each N;
  emergence time t_ICL: the first time the loss is ≤ ``emergence_loss`` (half the loss
  at initialisation, ½); rise times of γ₃, β₂, α₃: the first time each reaches
  ``rise_level``.

Part 3 — Olsson et al.'s tests of the mechanism on the standard model: every trained
model is evaluated with all heads of layer 2 (the induction head) and of layer 1 (the
previous-token head) zero-ablated, and a one-layer control (the first layer alone, trained
the same way) is trained at ``control_n``; both are compared with the best accuracy
without an induction circuit, predicting the most frequent context label (E[max count]/N,
``solvers.context_mode_accuracy``, exact).

Part 4 — Olsson et al.'s in-context-learning score on a language. Attention-only
transformers of 2 layers and, as the control, 1 layer (``language.heads`` heads each,
learned positions) are trained on next-token prediction over a corpus in which copying
pays: uniform random blocks of 8–32 tokens tiled to 64 (``RepeatedTokensTask`` with
``min_length``; the period varies, so only an induction circuit predicts the repeats).
Measured every ``language.train.eval_every`` steps on Olsson et al.'s repeated random
tokens [BOS, r_1 … r_L, r_1 … r_L] (L = ``language.probe_length``): the ICL score (the
loss on the second copy minus the first at the same offset, ``repeat_icl_score``) and
the prefix-matching score of the last layer's best head (``head_scores``, "induction");
at the end, the per-position losses of the 2-layer model whole and with every head of
layer 2 or of layer 1 zero-ablated.

Checks (hold by the symmetry of the population): the disentangled model stays in the
subspace (residual ≤ 1e-6) and its 19 coordinates follow the reduced dynamics. Claims: an
induction head forms in the standard model (final induction score ≥ 0.5 for every N); its
loss drop coincides with the score's rise; the emergence time grows quadratically with N
(log-log slope in [1.6, 2.4] over the largest ``slope_points`` values of N — the law is
asymptotic; the fit over all N is reported); γ₃ rises before β₂, and β₂ before α₃;
ablating layer 2 leaves no accuracy above the no-circuit optimum (≤ 0.05 above it), nor
does the one-layer control reach more; on the language, the 2-layer model's ICL score
is ≤ −½ ln V (the repeat costs less than half the loss of a guess), its prefix-matching
score ≥ 0.5, both cross those levels at the same time (relative gap ≤ 0.2), ablating
layer 2 raises the second copy's loss by ≥ ½ ln V, and the 1-layer control's ICL score
is at most a third of the 2-layer model's. The
standard model's emergence slope (Adam, cross-entropy: outside the theorem's assumptions)
is reported, not claimed.
"""

import dataclasses
import math
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jaxtyping import Array

from iclab.config import ConfigError, check_positive, check_positive_int
from iclab.engine import OptimConfig, Problem, TrainConfig, next_token_losses
from iclab.framework import Claim, Figure, Job, Recipe, Section, matrix_table, paper
from iclab.instruments import (
    first_crossing,
    head_scores,
    induction_progress,
    query_row_scores,
    repeat_icl_score,
)
from iclab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    DisentangledCoordinates,
    pairs_population_loss,
    subspace_check,
)
from iclab.recipes.analysis.induction_heads import (
    PROGRESS,
    dis_slope,
    disentangled_text,
    drop_gap,
    excess_accuracy,
    language_gap,
    language_rows_of,
    language_text,
    order_margin,
    per_n_table,
    plot_attention,
    plot_disentangled_dynamics,
    plot_disentangled_emergence,
    plot_emergence_time,
    plot_language,
    plot_language_losses,
    plot_phase_change,
    plot_progress,
    plot_subspace,
    standard_slope_text,
    subspace_max,
    subspace_text,
)
from iclab.solvers import context_mode_accuracy
from iclab.tasks import ItemLabelTask, OrthonormalPairsTask, RepeatedTokensTask, one_hot_tokens

PAPER = ("Olsson et al. 2022, 'In-context Learning and Induction Heads'; Musat, Pimentel, Noci, "
         "Stolfo, Sachan, Hofmann 2025, 'On the Emergence of Induction Heads for In-Context "
         "Learning' (arXiv 2511.01033)")


# -- spec: claims, checks, figures and report sections ----------------------------
def claims(config) -> list[Claim]:
    dis = config.disentangled
    fit_n = ", ".join(map(str, dis.n_values[-dis.slope_points:]))
    return [
        Claim("induction_head_forms", "an induction head forms: final layer-2 induction score "
              "at the query (mean over seeds), minimum over N",
              lambda r: r["standard"].groupby("n").final_induction.mean().min(), ">=", 0.5,
              paper=paper("≈ 1 after the phase change", "Olsson et al. 2022")),
        Claim("drop_coincides", "the loss drop coincides with the induction score's rise: "
              "mean |t_score − t_acc| / t_acc over N and seeds", drop_gap, "<=", 0.2,
              paper=paper("same time", "Olsson et al. 2022")),
        Claim("quadratic_emergence", "disentangled model, population gradient descent: log-log "
              f"slope of t_ICL over the largest N = {fit_n}",
              lambda r: dis_slope(r, dis.slope_points), ">=", 1.6,
              paper=paper("2 (t_ICL = Θ(N²))", "Musat et al. 2025, Theorem 2")),
        Claim("quadratic_emergence_upper", "… and the slope is at most 2.4",
              lambda r: dis_slope(r, dis.slope_points), "<=", 2.4,
              paper=paper(2, "Musat et al. 2025, Theorem 2")),
        Claim("ablation_removes_icl", "zero-ablating layer 2's heads (the induction head) "
              "removes in-context learning: max over N and seeds of the query accuracy minus "
              "the best accuracy without an induction circuit (predict the most frequent "
              "context label)", lambda r: excess_accuracy(r["ablation"].query(
                  "model == 'layer 2 ablated'")), "<=", 0.05,
              paper=paper("in-context learning removed", "Olsson et al. 2022, ablations")),
        *([Claim("one_layer_control", "a 1-layer control trained the same way "
                 f"(N = {', '.join(map(str, config.control_n))}) does not learn the task: "
                 "max over seeds of its final accuracy minus that bound",
                 lambda r: excess_accuracy(r["control"]), "<=", 0.05,
                 paper=paper("no induction head in 1-layer models", "Olsson et al. 2022"))]
          if config.control_n else []),
        Claim("emergence_order", "γ₃ rises before β₂ and β₂ before α₃ (rise level "
              f"{dis.rise_level:g}), for every N: min gap / t_ICL (negative: wrong order)",
              order_margin, ">", 0.0, paper=paper("γ₃ → β₂ → α₃", "Musat et al. 2025")),
        *(language_claims(config.language) if config.language.enabled else []),
    ]


def language_claims(lang) -> list[Claim]:
    half = 0.5 * math.log(lang.corpus.vocab)
    probe = f"repeated random tokens (L = {lang.probe_length}, V = {lang.corpus.vocab})"
    return [
        Claim("lm_icl_score", f"language: the 2-layer model's ICL score on {probe}, the loss "
              "on the second copy minus on the first (nats), is at most −½ ln V",
              lambda r: language_rows_of(r, "2-layer").icl_score.to_numpy(), "<=", -half,
              paper=paper("ICL score: loss of the 500th token minus the 50th, falls at the "
                          "phase change", "Olsson et al. 2022, Argument 1")),
        Claim("lm_prefix_matching", "… its last layer's best head has a prefix-matching "
              "(induction) score of at least 0.5 on them",
              lambda r: language_rows_of(r, "2-layer").prefix_matching.to_numpy(), ">=",
              0.5, paper=paper("induction heads: prefix matching and copying",
                               "Olsson et al. 2022")),
        Claim("lm_phase_change", "… and both cross those levels together: mean over seeds "
              "of |t_prefix − t_icl| / t_icl", language_gap, "<=", 0.2,
              paper=paper("induction heads form at the same time as the ICL score jumps",
                          "Olsson et al. 2022, Argument 1")),
        Claim("lm_ablation", "zero-ablating layer 2's heads raises the 2-layer model's loss "
              "on the second copy by at least ½ ln V (min over seeds, nats)",
              lambda r: language_rows_of(r, "2-layer").ablation_rise.to_numpy(), ">=", half,
              reduce="min", paper=paper("ablating induction heads removes in-context "
                                        "learning", "Olsson et al. 2022, Argument 3")),
        Claim("lm_one_layer", "a 1-layer control trained the same way: its ICL score over "
              "the 2-layer model's (means over seeds) is at most 1/3",
              lambda r: (language_rows_of(r, "1-layer").icl_score.mean()
                         / language_rows_of(r, "2-layer").icl_score.mean()), "<=", 1 / 3,
              paper=paper("1-layer attention-only models: no phase change, little ICL",
                          "Olsson et al. 2022, Argument 1")),
    ]


def checks(config) -> list[Claim]:
    dis = config.disentangled
    return [
        Claim("stays_in_subspace", "the disentangled model (float64, zero init, GD on a "
              f"symmetry-closed population, N = {dis.subspace_pairs}, D = "
              f"{2 * dis.subspace_pairs + 2}) stays in the 19-dimensional subspace: max "
              f"relative residual ‖W − PW‖/‖W‖ over {dis.subspace_steps} steps",
              lambda r: subspace_max(r, "symmetric", "residual"), "<=", 1e-6,
              paper=paper("stays in the subspace", "Musat et al. 2025, Theorem 1")),
        Claim("reduced_dynamics_exact", "its 19 coordinates follow the reduced (α, β, γ) "
              "dynamics: max |Δ coordinate| over training",
              lambda r: subspace_max(r, "symmetric", "deviation"), "<=", 1e-8,
              paper=paper("exact", "Musat et al. 2025, Theorem 1")),
    ]


FIGURES = [
    Figure("phase_change", "Plateau, then an abrupt drop of the loss; the accuracy and the "
           "induction score rise together (thin: seeds, thick: mean; grey: the emergence "
           "threshold).", plot_phase_change),
    Figure("emergence_time", "Emergence time against N on log-log axes (dots: seeds).",
           plot_emergence_time),
    Figure("attention_patterns", lambda r: "Attention patterns of the trained model (N = "
           f"{r.config.n_values[-1]}, seed 0) on one evaluation sequence: layer 1 attends to "
           "the previous token, layer 2 from the query to the label after the matching item.",
           plot_attention),
    Figure("disentangled_dynamics", "Disentangled model, population gradient descent from zero: "
           "plateau then abrupt drop for every N (grey: the emergence threshold); right: the 19 "
           "coordinates for the largest N — γ₃, β₂ and α₃ grow in that order, the other 16 "
           "(grey) stay small.", plot_disentangled_dynamics),
    Figure("disentangled_emergence", "Emergence time of the disentangled model against N "
           "(log-log), with the rise times of γ₃, β₂, α₃; one deterministic run per N (zero "
           "initialisation, exact population loss).", plot_disentangled_emergence),
    Figure("subspace_residual", "Relative weight residual outside the 19-dimensional subspace "
           "during full-model training in float64 (grey: the 1e-6 criterion).", plot_subspace),
    Figure("language_phase_change", "Language: the ICL score on repeated random tokens "
           "(loss on the second copy minus the first) and the last layer's best "
           "prefix-matching score over training, for 2 layers and the 1-layer control "
           "(thin: seeds, thick: mean; grey: the claims' levels).", plot_language,
           when=lambda r: r.config.language.enabled),
    Figure("language_per_position", "Language: next-token loss at each position of the "
           "repeated random tokens (mean over sequences and seeds), for the 2-layer model, "
           "the same with layer 2's or layer 1's heads zero-ablated, and the 1-layer control "
           "(grey: ln V, a guess; dotted: the second copy's start).", plot_language_losses,
           when=lambda r: r.config.language.enabled),
    Figure("progress_measures", "Progress measures α̃₃, β̃₂, γ̃₃ of the standard transformer "
           "(seed 0, each divided by its largest magnitude) with the query accuracy.",
           plot_progress),
]


SECTIONS = [
    Section("Standard model, per N", standard_slope_text, per_n_table),
    Section("Disentangled model, population gradient descent", disentangled_text, "dis_times"),
    Section("Subspace check", subspace_text),
    Section("Standard model, per seed", table="standard"),
    Section("Ablations and a one-layer control (Olsson et al.)", "Query accuracy and loss of "
            "each trained model whole and with every head of layer 2 (the induction head) or "
            "of layer 1 (the previous-token head) zero-ablated; no_circuit_accuracy is the "
            "best a learner can do that reads the context's labels but not which item each "
            "follows (predict the most frequent one: E[max count] / N, exact).",
            table="ablation"),
    Section("One-layer control", "The first layer alone, trained with the same optimiser "
            "for train.steps steps (no early stopping), final evaluation.", table="control"),
    Section("Language: the ICL score (Olsson et al.)", language_text, table="language",
            when=lambda r: r.config.language.enabled),
]


def check_n_values(key: str, values) -> None:
    """At least two integers ≥ 2."""
    if len(values) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 2
                              for n in values):
        raise ConfigError(key, values, "a comma-separated list of at least two integers >= 2")


@dataclass(frozen=True)
class DisentangledConfig:
    """The disentangled model of Musat et al. (part 2 of the recipe).

    Args:
        n_values: context sizes N for the emergence law.
        slope_points: the log-log slope is fitted over this many largest N (≥ 2).
        lr: gradient-descent step on the 19 coordinates (time = lr · steps).
        max_steps: steps per N at most.
        eval_every: steps between logged evaluations (the time resolution).
        emergence_loss: t_ICL is the first time the population loss is ≤ this (½ L(0)).
        stop_loss: stop an N once its loss is ≤ this.
        rise_level: the rise time of γ₃, β₂, α₃ is the first time each is ≥ this.
        subspace_pairs: N of the subspace check (D = 2N + 2 must be a power of 2).
        subspace_steps: gradient-descent steps of the full model in the subspace check.
        subspace_lr: their learning rate (on W¹, W², W³).
    """

    n_values: tuple[int, ...] = (4, 8, 16, 32, 64)
    slope_points: int = 4
    lr: float = 1.0
    max_steps: int = 60_000
    eval_every: int = 10
    emergence_loss: float = 0.25
    stop_loss: float = 0.05
    rise_level: float = 0.25
    subspace_pairs: int = 3
    subspace_steps: int = 400
    subspace_lr: float = 1.0

    def __post_init__(self):
        check_n_values("disentangled.n_values", self.n_values)
        if list(self.n_values) != sorted(set(self.n_values)):
            raise ConfigError("disentangled.n_values", self.n_values,
                              "strictly increasing values")
        if not 2 <= self.slope_points <= len(self.n_values):
            raise ConfigError("disentangled.slope_points", self.slope_points,
                              f"an integer in [2, len(n_values) = {len(self.n_values)}]")
        for key in ("lr", "emergence_loss", "stop_loss", "rise_level", "subspace_lr"):
            check_positive(f"disentangled.{key}", getattr(self, key))
        for key in ("max_steps", "eval_every", "subspace_steps"):
            check_positive_int(f"disentangled.{key}", getattr(self, key))
        width = 2 * self.subspace_pairs + 2
        if self.subspace_pairs < 1 or width & (width - 1):
            raise ConfigError("disentangled.subspace_pairs", self.subspace_pairs,
                              "N >= 1 with 2 N + 2 a power of 2 (1, 3, 7, ...)")


@dataclass(frozen=True)
class LanguageConfig:
    """Part 4: next-token language models on a corpus where copying pays, probed with
    Olsson et al.'s repeated random tokens.

    Args:
        enabled: train this part.
        corpus: the training corpus (a ``RepeatedTokensTask`` whose block length varies
            from ``min_length`` to ``length``, tiled to ``length`` × ``repeats`` tokens).
        probe_length: L of the probe [BOS, r_1 … r_L, r_1 … r_L] (2 L ≤ the corpus's
            tokens, which the learned positions cover).
        heads: attention heads per layer (the rest of the model is ``model``'s).
        eval_sequences: probe and held-out corpus sequences per evaluation.
        optim, train: the optimiser and the budget (both depths alike).
    """

    enabled: bool = True
    corpus: RepeatedTokensTask = field(default_factory=lambda: RepeatedTokensTask(
        vocab=64, length=32, repeats=2, min_length=8))
    probe_length: int = 25
    heads: int = 2
    eval_sequences: int = 256
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=3e-3,
                                                                   b2=0.999))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=4000, batch_size=64, eval_every=50, seeds=3))

    def __post_init__(self):
        check_positive_int("language.probe_length", self.probe_length)
        check_positive_int("language.heads", self.heads)
        check_positive_int("language.eval_sequences", self.eval_sequences)
        if not 2 <= self.probe_length <= self.corpus.length * self.corpus.repeats // 2:
            raise ConfigError("language.probe_length", self.probe_length, "an integer in [2, "
                              f"{self.corpus.length * self.corpus.repeats // 2}] (two copies "
                              "fit the corpus's positions)")

    @property
    def probe(self) -> RepeatedTokensTask:
        return RepeatedTokensTask(vocab=self.corpus.vocab, length=self.probe_length,
                                  repeats=2)


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
        control_n: the N at which a one-layer control (the same model but its first
            layer, the same optimiser and ``train.steps`` without early stopping) is
            trained; () for none.
        language: part 4, the ICL score of next-token language models.
    """

    n_values: tuple[int, ...] = (4, 8, 16, 32)
    items: int = 64
    labels: int = 32
    threshold: float = 0.5
    stop_accuracy: float = 0.95
    eval_sequences: int = 512
    eval_seed: int = 5
    model: CausalTransformerConfig = field(default_factory=CausalTransformerConfig.attention_only)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=3e-3,
                                                                   b2=0.999))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=60_000, batch_size=128, eval_every=100, seeds=3))
    disentangled: DisentangledConfig = field(default_factory=DisentangledConfig)
    control_n: tuple[int, ...] = (4,)
    language: LanguageConfig = field(default_factory=LanguageConfig)

    def __post_init__(self):
        check_n_values("n_values", self.n_values)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 2 for n in self.control_n):
            raise ConfigError("control_n", self.control_n, "integers >= 2 (or none)")
        if self.control_n:
            if self.items < max(self.control_n):
                raise ConfigError("control_n", self.control_n,
                                  f"values <= items = {self.items}")
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

    def model_for(self, n: int, layers: int | None = None) -> CausalTransformerConfig:
        """The model for N (its first ``layers`` layers if given: the control)."""
        task = self.task(n)
        return dataclasses.replace(self.model, mlp=False, readout="linear",
                                   max_len=task.length,
                                   layers=self.model.layers[:layers]).resolve(
            task.vocab_size, task.vocab_size)


    def language_model(self, layers: int) -> CausalTransformerConfig:
        """The language part's attention-only model of ``layers`` layers."""
        corpus = self.language.corpus
        return dataclasses.replace(self.model, mlp=False, readout="linear",
                                   heads=self.language.heads,
                                   max_len=corpus.length * corpus.repeats,
                                   layers=("softmax",) * layers).resolve(
            corpus.vocab_size, corpus.vocab_size)


def full_config() -> InductionConfig:
    """N = 4, 8, 16, 32; 3 seeds; up to 60k steps per N; language: 3 seeds, 4000 steps."""
    return InductionConfig()


def quick_config() -> InductionConfig:
    """Standard model: N = 4, 6, 8, 12; 2 seeds; up to 20k steps per N. Disentangled:
    N = 8, 16, 32, 64. Language: 2 seeds, 2000 steps (4000 and 3 seeds in full)."""
    return InductionConfig(n_values=(4, 6, 8, 12),
                           train=TrainConfig(steps=20_000, batch_size=128, eval_every=100,
                                             seeds=2),
                           disentangled=DisentangledConfig(n_values=(8, 16, 32, 64)),
                           language=LanguageConfig(train=TrainConfig(
                               steps=2000, batch_size=64, eval_every=50, seeds=2)))


def query_logits(model, tokens, vocab_size: int):
    return jax.vmap(lambda t: model(one_hot_tokens(t, vocab_size))[-1])(tokens)


def make_problem(config: InductionConfig, n: int) -> Problem:
    task, model_config = config.task(n), config.model_for(n)
    vocab = task.vocab_size

    def loss(model, batch):
        return optax.softmax_cross_entropy_with_integer_labels(
            query_logits(model, batch.tokens, vocab), batch.target).mean()

    items = jnp.arange(task.items)
    labels = task.items + jnp.arange(task.labels)

    def evaluate(model, batch):
        logits = query_logits(model, batch.tokens, vocab)
        ind, prev = jax.vmap(lambda t: query_row_scores(
            model.attention_patterns(one_hot_tokens(t, vocab)), t))(batch.tokens)
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits,
                                                                        batch.target).mean(),
                "accuracy": (logits.argmax(-1) == batch.target).mean(),
                "induction_score": ind.mean(), "previous_token_score": prev.mean(),
                **induction_progress(model, items, labels, task.length)}

    return Problem(init_model=lambda key: CausalTransformer(model_config, key=key),
                   sample_batch=task.sample_batch, loss=loss, evaluate=evaluate,
                   inputs=lambda batch: jax.vmap(lambda t: one_hot_tokens(t, vocab))(
                       batch.tokens))


def query_metrics(model, batch, vocab: int) -> dict:
    """Query loss (cross-entropy) and accuracy of a model on a batch of sequences."""
    logits = query_logits(model, batch.tokens, vocab)
    return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits,
                                                                    batch.target).mean(),
            "accuracy": (logits.argmax(-1) == batch.target).mean()}


def control_problem(config: InductionConfig, n: int) -> Problem:
    """The one-layer control: the standard model's first layer alone, trained the same."""
    task, model_config = config.task(n), config.model_for(n, layers=1)
    vocab = task.vocab_size
    return Problem(init_model=lambda key: CausalTransformer(model_config, key=key),
                   sample_batch=task.sample_batch,
                   loss=lambda model, batch: query_metrics(model, batch, vocab)["loss"],
                   evaluate=lambda model, batch: query_metrics(model, batch, vocab))


def ablation_rows(config: InductionConfig, n: int, job) -> list[dict]:
    """Query accuracy and loss of every seed's model, whole and with all heads of layer 2
    (the induction head) or of layer 1 (the previous-token head) zero-ablated, against
    the best accuracy without an induction circuit (``context_mode_accuracy``)."""
    vocab, heads = config.task(n).vocab_size, range(config.model.heads)
    metrics = eqx.filter_jit(lambda m, b: query_metrics(m, b, vocab))
    bound = context_mode_accuracy(n, config.labels)
    rows = []
    for model, seed in zip(job.models, job.seeds, strict=True):
        for name, m in (("trained", model), ("layer 2 ablated", model.without_heads(1, heads)),
                        ("layer 1 ablated", model.without_heads(0, heads))):
            out = metrics(m, job.eval_data)
            rows.append({"n": n, "seed": seed, "model": name, "loss": float(out["loss"]),
                         "accuracy": float(out["accuracy"]), "no_circuit_accuracy": bound})
    return rows


class LanguageEval(eqx.Module):
    """The language part's evaluation data: held-out corpus and probe sequences."""

    corpus: Array
    probe: Array


def language_metrics(model, data: LanguageEval, lang: LanguageConfig) -> dict:
    """Held-out corpus loss; on the probe, the ICL score, the two copies' mean losses, and
    the last layer's best prefix-matching score (mean over sequences)."""
    vocab, length = lang.corpus.vocab_size, lang.probe_length
    losses = next_token_losses(model, data.probe, vocab)
    prefix = jax.vmap(lambda t: head_scores(model.attention_patterns(
        one_hot_tokens(t[:-1], vocab)), t[:-1])["induction"][-1].max())(data.probe)
    return {"loss": next_token_losses(model, data.corpus, vocab).mean(),
            "icl_score": jax.vmap(lambda row: repeat_icl_score(row, length))(losses).mean(),
            "first_copy_loss": losses[:, 1:length].mean(),
            "second_copy_loss": losses[:, length + 1:].mean(),
            "prefix_matching": prefix.mean()}


def language_problem(config: InductionConfig, layers: int) -> Problem:
    lang, model_config = config.language, config.language_model(layers)
    vocab = lang.corpus.vocab_size
    return Problem(init_model=lambda key: CausalTransformer(model_config, key=key),
                   sample_batch=lang.corpus.sample_batch,
                   loss=lambda model, batch: next_token_losses(model, batch.tokens,
                                                               vocab).mean(),
                   evaluate=lambda model, data: language_metrics(model, data, lang))


def disentangled_problem(n: int) -> Problem:
    """Full-batch gradient descent on the exact population loss of the 19 coordinates from
    zero (the batch is unused); evaluates the loss and the coordinates."""
    task = OrthonormalPairsTask(n_pairs=n)

    def evaluate(model, batch):
        out = {"loss": pairs_population_loss(model, task)}
        for name in ("alpha", "beta", "gamma"):
            values = getattr(model, name)
            out.update({f"{name}{i + 1}": values[i] for i in range(values.shape[0])})
        return out

    return Problem(init_model=lambda key: DisentangledCoordinates(task.width),
                   sample_batch=lambda key, batch_size: jnp.zeros(()),
                   loss=lambda model, batch: pairs_population_loss(model, task),
                   evaluate=evaluate)


# -- experiment ---------------------------------------------------------------------
def experiment(config: InductionConfig) -> list[Job]:
    """The standard model for every N and the disentangled model for every N, side by side."""
    jobs = []
    for n in config.n_values:
        eval_batch = config.task(n).sample_batch(jax.random.key(config.eval_seed),
                                                 config.eval_sequences)
        stop = lambda step, m: bool(np.all(np.asarray(m["accuracy"]) >= config.stop_accuracy))
        jobs.append(Job(f"N{n}", make_problem(config, n), config.optim, config.train,
                        eval_data=eval_batch, label=f"N = {n}", stop=stop,
                        cost=5.0 * n))  # rough CPU seconds (emergence step ∝ N)
    for n in config.control_n:
        eval_batch = config.task(n).sample_batch(jax.random.key(config.eval_seed),
                                                 config.eval_sequences)
        jobs.append(Job(f"control_N{n}", control_problem(config, n), config.optim,
                        config.train, eval_data=eval_batch, label=f"1-layer control N = {n}",
                        cost=2.0 * n))
    lang = config.language
    if lang.enabled:
        data = LanguageEval(
            lang.corpus.sample_batch(jax.random.key(config.eval_seed), lang.eval_sequences
                                     ).tokens,
            lang.probe.sample_batch(jax.random.key(config.eval_seed + 1),
                                    lang.eval_sequences).tokens)
        for layers in (2, 1):
            jobs.append(Job(f"lm_L{layers}", language_problem(config, layers), lang.optim,
                            lang.train, eval_data=data, label=f"language, {layers} layer(s)",
                            cost=30.0 * layers))
    dis = config.disentangled
    for n in dis.n_values:
        stop = lambda step, m: bool(np.all(np.asarray(m["loss"]) <= dis.stop_loss))
        # Rough cost in CPU seconds, for the start order only: t_ICL ∝ N^1.7 steps of
        # ∝ N^1.8 each (benchmarks/bench_disentangled.py), about 100 s at N = 64.
        jobs.append(Job(f"dis_N{n}", disentangled_problem(n), OptimConfig(name="sgd", lr=dis.lr),
                        TrainConfig(steps=dis.max_steps, batch_size=1,
                                    eval_every=dis.eval_every, seeds=1),
                        eval_data=jnp.zeros(()), label=f"disentangled N = {n}", stop=stop,
                        cost=100.0 * (n / 64) ** 3.5))
    return jobs


# -- measurement --------------------------------------------------------------------


def standard_rows(config, n: int, job) -> list[dict]:
    """Per seed: emergence step (accuracy ≥ threshold), the induction score's rise, final
    values at the stopping step, and each progress measure's half-rise step."""
    curves = {name: job.curves(name) for name in
              ("accuracy", "induction_score", "previous_token_score", *PROGRESS)}
    steps = curves["accuracy"].index.to_numpy()
    rows = []
    for seed in job.seeds:
        row = {"n": n, "seed": seed, "stopped_at": job.step,
               "t_acc": first_crossing(steps, curves["accuracy"][seed], config.threshold),
               "t_score": first_crossing(steps, curves["induction_score"][seed],
                                         config.threshold),
               "final_accuracy": float(curves["accuracy"][seed].iloc[-1]),
               "final_induction": float(curves["induction_score"][seed].iloc[-1]),
               "final_previous": float(curves["previous_token_score"][seed].iloc[-1])}
        for name in PROGRESS:
            values = np.abs(curves[name][seed].to_numpy())
            row[f"half_rise_{name}"] = first_crossing(steps, values, 0.5 * float(values.max()))
        rows.append(row)
    return rows


def disentangled_row(dis, n: int, job) -> dict:
    """t_ICL and the rise times of γ₃, β₂, α₃ in coordinate time (lr · step)."""
    def first_time(name, mask_of):
        rows = job.history[job.history.metric == name].sort_values("step")
        return dis.lr * first_crossing(rows.step, mask_of(rows.value.to_numpy()).astype(float),
                                       1.0), rows

    t_icl, loss = first_time("loss", lambda v: v <= dis.emergence_loss)
    row = {"n": n, "t_icl": t_icl, "final_loss": float(loss.value.iloc[-1]),
           "steps": int(loss.step.iloc[-1])}
    for name in ("gamma3", "beta2", "alpha3"):
        row[f"t_{name}"] = first_time(name, lambda v: v >= dis.rise_level)[0]
    return row


def language_rows(config: InductionConfig, trained) -> tuple[list[dict], list[dict]]:
    """Per depth and seed: the final probe metrics, when the ICL score and the
    prefix-matching score first reach the claims' levels, and (2 layers) the second
    copy's loss with layer 2's heads ablated. Also the per-position probe losses of every
    model (and of the 2-layer model's ablations)."""
    lang = config.language
    half, vocab = 0.5 * math.log(lang.corpus.vocab), lang.corpus.vocab_size
    heads = range(lang.heads)
    metrics = eqx.filter_jit(lambda m, d: language_metrics(m, d, lang))
    per_position = eqx.filter_jit(lambda m, d: next_token_losses(m, d.probe, vocab).mean(0))
    rows, positions = [], []
    for layers in (2, 1):
        job = trained[f"lm_L{layers}"]
        icl, prefix = job.curves("icl_score"), job.curves("prefix_matching")
        steps = icl.index.to_numpy()
        for model, seed in zip(job.models, job.seeds, strict=True):
            variants = [("trained", model)]
            if layers == 2:
                variants += [("layer 2 ablated", model.without_heads(1, heads)),
                             ("layer 1 ablated", model.without_heads(0, heads))]
            outs = {name: metrics(m, job.eval_data) for name, m in variants}
            out = outs["trained"]
            row = {"model": f"{layers}-layer", "seed": seed,
                   **{k: float(v) for k, v in out.items()},
                   "t_icl": first_crossing(steps, -icl[seed].to_numpy(), half),
                   "t_prefix": first_crossing(steps, prefix[seed].to_numpy(), 0.5)}
            if layers == 2:
                for name in ("layer 2 ablated", "layer 1 ablated"):
                    short = name.split()[1]
                    row[f"second_copy_loss_l{short}_ablated"] = float(
                        outs[name]["second_copy_loss"])
                    row[f"icl_score_l{short}_ablated"] = float(outs[name]["icl_score"])
                row["ablation_rise"] = (row["second_copy_loss_l2_ablated"]
                                        - row["second_copy_loss"])
            rows.append(row)
            for name, m in variants:
                label = f"{layers}-layer" + ("" if name == "trained" else f", {name}")
                positions += [{"model": label, "seed": seed, "position": t, "loss": float(v)}
                              for t, v in enumerate(np.asarray(per_position(m,
                                                                            job.eval_data)))]
    return rows, positions


def measure(config: InductionConfig, trained) -> dict[str, pd.DataFrame]:
    dis = config.disentangled
    standard = [row for n in config.n_values for row in standard_rows(config, n,
                                                                        trained[f"N{n}"])]
    times = [disentangled_row(dis, n, trained[f"dis_N{n}"]) for n in dis.n_values]
    subspace = []
    for population, control in (("symmetric", False), ("haar", True)):
        out = subspace_check(dis.subspace_pairs, dis.subspace_steps, dis.subspace_lr, control)
        subspace += [{"population": population, "step": i + 1, "loss": float(a),
                      "residual": float(b), "deviation": float(c), "sequences": out["sequences"]}
                     for i, (a, b, c) in enumerate(zip(out["loss"], out["residual"],
                                                       out["deviation"], strict=True))]
    last = trained[f"N{config.n_values[-1]}"]
    tokens = last.eval_data.tokens[0]
    vocab = config.task(config.n_values[-1]).vocab_size
    patterns = np.asarray(last.models[0].attention_patterns(one_hot_tokens(tokens, vocab)))
    ablation = [row for n in config.n_values for row in ablation_rows(config, n,
                                                                        trained[f"N{n}"])]
    control = [{"n": n, "seed": seed, "accuracy": float(acc), "loss": float(loss),
                "no_circuit_accuracy": context_mode_accuracy(n, config.labels)}
               for n in config.control_n
               for seed, acc, loss in zip(trained[f"control_N{n}"].seeds,
                                          trained[f"control_N{n}"].final["accuracy"],
                                          trained[f"control_N{n}"].final["loss"], strict=True)]
    language, positions = (language_rows(config, trained) if config.language.enabled
                           else ([], []))
    return {"standard": pd.DataFrame(standard), "dis_times": pd.DataFrame(times),
            "language": pd.DataFrame(language), "language_positions": pd.DataFrame(positions),
            "ablation": pd.DataFrame(ablation), "control": pd.DataFrame(control),
            "subspace": pd.DataFrame(subspace),
            "attention": matrix_table({f"layer{i + 1}": patterns[i, 0]
                                       for i in range(patterns.shape[0])})}


RECIPE = Recipe(
    name="induction-heads", title="Induction-head emergence",
    description="Induction heads form abruptly on the minimal in-context task; the disentangled "
                "model stays in a 19-dim subspace and emerges in Θ(N²) (Olsson et al. 2022; "
                "Musat et al. 2025)",
    paper=PAPER, config_type=InductionConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=claims, checks=checks, figures=FIGURES,
    sections=SECTIONS)
