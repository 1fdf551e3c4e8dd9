"""mesa: Transformers trained on sequences implement a mesa-optimizer (von Oswald et al. 2023,
"Uncovering mesa-optimization algorithms in Transformers", arXiv 2309.05858, Fig. 4, SI E.2).

Setting (the paper's constructed-token experiments): each sequence is a random fully
observed linear system s_{t+1} = W* s_t + ε (W* orthogonal, n_s = 10, T = 50, σ = 0.01,
s_1 ~ U(−1, 1)); the model reads constructed tokens e_t = [0, s_t, s_t, s_{t−1}]
(1-layer models: [0, 0, s_t, s_{t−1}]) and predicts s_{t+1} at every t from the first
slot. Trained: a 1-layer linear self-attention (LSA, 2 heads), one mesa layer
(2 heads), K-layer LSAs (4 heads) for K in ``depths``, and a 1-layer LSA on the
fixed-teacher control. Baselines: the oracle (knows W*), AR ridge with tuned λ,
Proposition 1 (one GD step from a fitted Φ₀ with a fitted η), K steps of Proposition 2
(preconditioning) for the deepest LSA of K layers, and softmax kernel regression with
tuned β. K Richardson steps take K linear-attention layers: the first,
x¹ = α₀ s_t from x⁰ = 0, needs no attention, each further step one (H̃ x), and the
read-out G x one more; so Proposition 2 with K steps is the K-layer construction (with
K = 1 it is one GD step from zero).
Probes: one linear probe per (layer, t) of the deepest LSA for the next state s_{t+1}
and for the preconditioned input (S Sᵀ + I/λ)⁻¹ s_t, fitted on half of the probe
sequences and scored (R²) on the other half.

Weight structure: the share of each layer's head-summed tensor Σ_h (W_O W_V)_h ⊗ (W_Kᵀ W_Q)_h
made of block-scaled identities (``identity_block_share``), and CompressedAlg-K: the
deepest LSA with every n × n block of its products replaced by its identity part
(``compressed_products``), evaluated without retraining.

Checks (by construction of the generator): the t = 1 loss and the noise floor equal
their analytic values. Claims: the trained 1-layer LSA converges to the Proposition-1
loss and its weights are the construction's block identities; one mesa layer is far
better than a 1-layer LSA and tracks AR ridge; deeper LSAs approach the mesa layer, and
their per-t curve is matched by Proposition 2 (same number of layers) and by
CompressedAlg; probe error falls with depth and with t; on the fixed-teacher control the
1-layer LSA beats one GD step (no in-context optimization is needed there) and its
weights lose the block-identity structure (the paper's SI E.2: "unstructured").

Plain tokens (``plain``, a stated mode: ``--set plain.enabled=true``; the paper's Fig. 7,
2A, 6 and 8A): a 7-layer softmax Transformer and the 2-layer hybrid softmax + mesa model
read s_t through a linear embedding, on ``plain.task`` — which, unlike the constructed-token
task, may be partially observed (``plain.task.hidden_dim``) or nonlinear. Claims: hybrid ≤
softmax; the softmax model's per-t curve matched by Proposition 2 with as many layers; its
first layer binds the previous token (probe R² of s_{t−1}); probe errors fall with depth.
Then the frozen softmax Transformer reads few-shot regression [x_1, y_1, …] (y = W* x):
the loss falls with the pairs, a tuned EOS token lowers it, a tuned prefix lowers it
further for early pairs; least squares on the clean pairs and on D_mesa (the spurious
pairs (y_j, x_{j+1}) of the token stream included) are its controls.

Deviations, stated: the full mode uses the paper's optimiser (AdamW, lr 1e-4, weight
decay 0.1, gradient clip 1, batch 256, 10k steps, init N(0, 0.0002²), activation clip
4); the quick mode raises the learning rate to 1e-3 and uses batch 128, 1500 steps and
K ≤ 3 to fit in minutes. The probe's
λ is 1 (the reference code uses 0.001 and drops outlier sequences; a regulariser of 1
keeps the target bounded for t < n_s without filtering).

Concurrency: the models train side by side, as in the other recipes. They hung doing so
until the task's random orthogonal matrices stopped using LAPACK's batched QR, whose CPU
kernel blocks XLA's intra-op threads (``iclab.tasks.haar_orthogonal``).
"""

import dataclasses
import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.config import (
    ConfigError,
    check_choice,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from iclab.engine import (
    OptimConfig,
    TrainConfig,
    Trainer,
    dynamics_problem,
    few_shot_loss_per_pair,
    few_shot_problem,
    sequence_loss_per_step,
)
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.instruments import compressed_products, identity_block_share, probe_grid
from iclab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    ResidualStreamModel,
    require,
)
from iclab.recipes.analysis.mesa import (
    FEW_SHOT,
    FEW_SHOT_EOS,
    FEW_SHOT_PREFIX,
    GD0,
    LSQ_CLEAN,
    LSQ_MESA,
    NEXT,
    PAST,
    PRECOND,
    PROP1,
    PROP2,
    RIDGE,
    first_step_loss,
    gap_per_t,
    loss_table,
    mean_loss,
    pair_loss,
    plot_few_shot,
    plot_fixed_teacher,
    plot_learning_curves,
    plot_loss_per_t,
    plot_plain,
    plot_probes,
    probe_error,
    ratio_over_depth,
    structure_share,
)
from iclab.solvers import (
    PRECONDITIONER_NORMS,
    ARGradientStep,
    ARPreconditionedGD,
    ar_gd_from_zero_lr,
    ar_gd_predictions,
    ar_oracle_loss_per_step,
    ar_preconditioned_inputs,
    ar_ridge_predictions,
    fit_gd_step,
    pair_ridge_predictions,
    softmax_kernel_predictions,
    tune_ar_ridge,
    tune_softmax_kernel,
)
from iclab.tasks import (
    DynamicsTask,
    FewShotRegressionTask,
    constructed_tokens,
    few_shot_tokens,
    past_states,
)

PAPER = ("von Oswald, Schlegel, Meulemans, Kobayashi, Niklasson, Zucchet, Scherrer, Miller, "
         "Vladymyrov, Pascanu, Sacramento 2023, 'Uncovering mesa-optimization algorithms in "
         "Transformers' (arXiv 2309.05858)")


# -- spec: claims, checks, figures and report sections ----------------------------
CHECKS = [
    Claim("t1_loss", "the loss at t = 1 equals ½ n_s (Var s_1 + σ²) (nothing to learn from "
          "yet; a property of the generator): |L_LSA-1(1) / analytic − 1|",
          lambda r: abs(first_step_loss(r) / r.config.task.first_step_loss() - 1), "<=", 0.05),
    Claim("noise_floor", "the oracle's loss equals the noise floor ½ n_s σ²: "
          "|L_oracle / floor − 1|", lambda r: abs(float(mean_loss(r, "oracle (knows W*)").mean())
                                                  / r.config.task.noise_floor() - 1),
          "<=", 0.05),
]


def claims(config) -> list[Claim]:
    """Ratios of mean losses (over t, then over seeds: the seeds of two models are not
    paired), except where a single model's per-seed values are compared with a baseline."""
    mean = lambda r, name: float(mean_loss(r, name).mean())
    rows = [
        Claim("lsa1_is_prop1", "a trained 1-layer LSA converges to the Proposition-1 loss (one "
              "GD step): |L̄_LSA-1 / L̄_Prop1 − 1|",
              lambda r: mean_loss(r, "LSA-1") / mean(r, PROP1), "<=", 0.05,
              transform=lambda m: abs(m - 1), paper=paper("≈ 0", "Fig. 4A")),
        Claim("lsa1_structured", "the trained 1-layer LSA's weights are Proposition 1's "
              "construction: share of its read-out tensor Σ_h (W_O W_V)_h ⊗ (W_Kᵀ W_Q)_h made "
              "of block-scaled identities (what CompressedAlg keeps; random weights: ≈ 1/n⁴)",
              lambda r: structure_share(r, "LSA-1"), ">=", 0.9,
              paper=paper("block-scaled identities", "Prop. 1")),
        Claim("mesa_beats_lsa1", "one mesa layer is far better than a 1-layer LSA: "
              "L̄_mesa / L̄_LSA-1", lambda r: mean(r, "mesa-1") / mean(r, "LSA-1"), "<=", 0.5,
              paper=paper("far below", "Fig. 4A")),
        Claim("mesa_tracks_ridge", "one mesa layer tracks AR least squares (ridge, tuned λ): "
              "L̄_mesa / L̄_ridge", lambda r: mean_loss(r, "mesa-1") / mean(r, RIDGE), "<=",
              1.10, paper=paper("≈ 1", "Fig. 4A")),
    ]
    if len(config.depths) > 1:
        deepest = max(config.depths)
        layer_ratio = lambda e: float(e[-1, 1:].mean() / e[1, 1:].mean())
        rows += [
            Claim("depth_helps", "the LSA loss falls with every added depth: "
                  "max_K L̄_{next K} / L̄_K", ratio_over_depth, "<", 1.0,
                  paper=paper("decreasing", "Fig. 4B")),
            Claim("deep_approaches_mesa", f"the deepest LSA (K = {deepest}) approaches the mesa "
                  "layer: L̄_LSA-K / L̄_mesa",
                  lambda r: mean(r, f"LSA-{deepest}") / mean(r, "mesa-1"), "<=", 1.5,
                  paper=paper("approaches, does not match", "Fig. 4B")),
            Claim("prop2_matches_lsa", f"the deepest LSA's per-t curve is matched by "
                  f"Proposition 2 with as many layers ({deepest} steps, its parameters fitted "
                  "for the best loss, not to the LSA): mean over t of "
                  "|ln L_Prop2(t) / L_LSA-K(t)|",
                  lambda r: gap_per_t(r, PROP2.format(deepest), f"LSA-{deepest}"), "<=",
                  0.2, paper=paper("matched", "Fig. 4B/D")),
            Claim("compressed_matches_lsa", f"CompressedAlg-{deepest} (every n × n block of "
                  "the trained W_O W_V and W_Kᵀ W_Q replaced by its identity part, no "
                  "retraining) matches the deepest LSA per t: mean over t of "
                  "|ln L_Compressed(t) / L_LSA-K(t)|, per seed",
                  lambda r: gap_per_t(r, f"CompressedAlg-{deepest}", f"LSA-{deepest}",
                                      "compressed_per_t"), "<=", 0.2,
                  paper=paper("matched", "Fig. 4B/D")),
            Claim("probe_depth", "next-state probe error (1 − R², mean over t) falls with "
                  "depth: last layer / first layer", lambda r: layer_ratio(probe_error(r, NEXT)),
                  "<", 1.0, paper=paper("decreasing", "Fig. 4E")),
            Claim("probe_time", "next-state probe error at the last layer falls with t: mean "
                  "over the second half of t / first half",
                  lambda r: (lambda e, h: float(e[-1, h:].mean() / e[-1, 1:h].mean()))(
                      probe_error(r, NEXT), probe_error(r, NEXT).shape[1] // 2), "<", 1.0,
                  paper=paper("decreasing", "Fig. 4E")),
            Claim("precond_probe_depth", "preconditioned-input probe error falls with depth: "
                  "last layer / first layer", lambda r: layer_ratio(probe_error(r, PRECOND)),
                  "<", 1.0, paper=paper("decreasing", "Fig. 4F")),
        ]
    if config.plain.enabled:
        rows += plain_claims(config.plain)
    if config.fixed_teacher:
        rows.append(Claim(
            "fixed_teacher_beats_gd", "fixed-teacher control: the 1-layer LSA beats one GD step "
            "(it need not optimise in context): L̄_LSA-1 / L̄_GD",
            lambda r: mean_loss(r, "LSA-1", "fixed_teacher")
            / float(mean_loss(r, GD0, "fixed_teacher").mean()), "<", 1.0,
            paper=paper("beats", "SI E.2")))
        rows.append(Claim(
            "fixed_teacher_unstructured", "fixed-teacher control: its weights are not the "
            "GD construction: block-identity share of the fixed-teacher LSA-1 / that of the "
            "LSA-1 trained on random systems (mean over seeds)",
            lambda r: float(structure_share(r, "LSA-1-fixed-teacher").mean())
            / float(structure_share(r, "LSA-1").mean()), "<", 0.5,
            paper=paper("unstructured weights", "SI E.2")))
    return rows


def plain_claims(plain: "PlainTokenConfig") -> list[Claim]:
    """The plain-token models on ``plain.task`` (Fig. 7, Fig. 2A, Fig. 6A/B)."""
    softmax = f"plain-softmax-{plain.softmax_layers}"
    mean = lambda r, name: float(mean_loss(r, name, "plain_per_t").mean())
    layer_ratio = lambda e: float(e[-1, 1:].mean() / e[1, 1:].mean())
    return [
        Claim("plain_hybrid_beats_softmax", "plain tokens: the 2-layer hybrid-mesa model is "
              f"at least as good as the {plain.softmax_layers}-layer softmax Transformer: "
              "L̄_hybrid / L̄_softmax",
              lambda r: mean(r, "plain-hybrid-mesa") / mean(r, softmax), "<=", 1.0,
              paper=paper("hybrid-mesa ≤ softmax", "Fig. 7")),
        Claim("plain_softmax_matches_prop2", "plain tokens: the softmax Transformer's per-t "
              f"curve is matched by Proposition 2 with as many layers "
              f"({plain.softmax_layers} steps): mean over t of "
              "|ln L_Prop2(t) / L_softmax(t)|",
              lambda r: gap_per_t(r, PROP2.format(plain.softmax_layers), softmax,
                                  "plain_per_t", "plain_per_t"), "<=", 0.2,
              paper=paper("≈ Prop. 2", "Fig. 7")),
        Claim("plain_binds_tokens", "plain tokens: the first softmax layer binds the previous "
              "token: probe R² of s_{t−1} after layer 1 minus from the tokens, mean over t ≥ 2",
              lambda r: float(np.mean((1 - probe_error(r, PAST, "plain_probes"))[1, 1:]
                                      - (1 - probe_error(r, PAST, "plain_probes"))[0, 1:])),
              ">=", 0.5, paper=paper("past tokens decodable after layer 1", "Fig. 2A")),
        Claim("plain_probe_depth", "plain tokens: next-state probe error falls with depth: "
              "last layer / first layer",
              lambda r: layer_ratio(probe_error(r, NEXT, "plain_probes")), "<", 1.0,
              paper=paper("decreasing", "Fig. 6A")),
        Claim("plain_precond_probe_depth", "plain tokens: preconditioned-input probe error "
              "falls with depth: last layer / first layer",
              lambda r: layer_ratio(probe_error(r, PRECOND, "plain_probes")), "<", 1.0,
              paper=paper("decreasing", "Fig. 6B")),
    ] + ([] if not plain.few_shot_pairs else [
        Claim("few_shot_learns", "few-shot regression read by the AR-trained softmax "
              "Transformer: the loss falls with the number of pairs: L(last pair) / "
              "L(first pair), per seed", lambda r: pair_loss(r, FEW_SHOT, -1)
              / pair_loss(r, FEW_SHOT, 0), "<", 1.0,
              paper=paper("decreases with pairs", "Fig. 8A")),
        Claim("eos_helps", "few-shot: a tuned EOS token lowers the loss: mean over pairs, "
              "with EOS / without, per seed", lambda r: pair_loss(r, FEW_SHOT_EOS)
              / pair_loss(r, FEW_SHOT), "<", 1.0, paper=paper("lower", "Fig. 8A")),
        Claim("prefix_helps_early", "few-shot: a tuned prefix prompt lowers it further for "
              "early pairs: mean over the first half of the pairs, EOS + prefix / EOS, per "
              "seed", lambda r: pair_loss(r, FEW_SHOT_PREFIX, "early")
              / pair_loss(r, FEW_SHOT_EOS, "early"), "<", 1.0,
              paper=paper("lower for early pairs", "Fig. 8A")),
    ])


FIGURES = [
    Figure("loss_per_t", "Per-time-step test loss of the trained models (mean ± std over "
           "seeds) and of the baselines; grey lines: the analytic t = 1 loss and the noise "
           "floor.", plot_loss_per_t),
    Figure("learning_curves", "Test loss (mean over t) during training, per seed and mean.",
           plot_learning_curves),
    Figure("probes", lambda r: "Linear-probe R² (held-out) per layer and time step of the "
           f"deepest LSA (K = {max(r.config.depths)}, seed 0).", plot_probes),
    Figure("plain_tokens", lambda r: "Plain tokens on plain.task: per-t test loss of the "
           "softmax Transformer and the hybrid-mesa model (mean ± std over seeds) against AR "
           "ridge and Proposition 2; right: probe R² of the softmax Transformer (seed 0).",
           plot_plain, when=lambda r: "plain_per_t" in r.tables),
    Figure("few_shot", "Few-shot regression read by the AR-trained softmax Transformer "
           "(mean over seeds): plain tokens, a tuned EOS token, EOS + a tuned prefix, and "
           "least squares on the clean pairs and on D_mesa (spurious pairs included).",
           plot_few_shot, when=lambda r: "few_shot" in r.tables),
    Figure("fixed_teacher", "Fixed-teacher control (one W* for all sequences): the 1-layer LSA "
           "no longer tracks one GD step.", plot_fixed_teacher,
           when=lambda r: "fixed_teacher" in r.tables),
]
SECTIONS = [
    Section("Losses", "Mean over t = 1..T, at t = 1 and at t = T, on the evaluation "
            "sequences.", loss_table),
    Section("Baselines' tuned parameters", table="baseline_params"),
    Section("Mesa layer: mean |λ| per seed", table="mesa_lambda"),
    Section("Weight structure", "Per model, seed and layer: the share of the layer's tensor "
            "Σ_h (W_O W_V)_h ⊗ (W_Kᵀ W_Q)_h made of block-scaled n × n identities "
            "(``iclab.instruments.identity_block_share``; 1-layer models: the first slot's "
            "output and the data-carrying input blocks s_t, s_{t−1} only).", table="structure"),
]


@dataclass(frozen=True)
class BaselineConfig:
    """Fitting of the learners with parameters.

    Proposition 1's (Φ₀, η) is fitted exactly (alternating least squares, ``fit_gd_step``)
    on ``fit_sequences`` fresh sequences; Proposition 2's (α_k, β_k, η, λ) by Adam.

    Args:
        fit_sequences: sequences for the Proposition-1 fit.
        seed: key of those sequences.
        steps: Adam steps on fresh sequences (Proposition 2).
        batch_size: sequences per Adam step.
        lr: Adam learning rate (cosine-decayed to 0).
        prop2_norm: Proposition 2's scale c_t of H̃_t = (H_t + λI)/c_t: "frobenius"
            (‖·‖_F, the reference code's; H̃'s spectrum in (0, 1], so fitted steps stay
            stable at every t) or "trace" (tr/n; diverged late in the sequence with 7 steps).
    """

    fit_sequences: int = 4096
    seed: int = 7
    steps: int = 2000
    batch_size: int = 256
    lr: float = 3e-3
    prop2_norm: str = "frobenius"

    def __post_init__(self):
        check_positive_int("baselines.fit_sequences", self.fit_sequences)
        check_choice("baselines.prop2_norm", self.prop2_norm, PRECONDITIONER_NORMS)
        check_positive_int("baselines.steps", self.steps)
        check_positive_int("baselines.batch_size", self.batch_size)
        check_positive("baselines.lr", self.lr)


@dataclass(frozen=True)
class ProbeConfig:
    """Linear probes of the deepest LSA.

    Args:
        sequences: probe sequences (half fit the probes, half score them).
        lam: λ of the preconditioning target (S Sᵀ + I/λ)⁻¹ s_t.
        seed: key of the probe sequences.
    """

    sequences: int = 2048
    lam: float = 1.0
    seed: int = 11

    def __post_init__(self):
        check_positive_int("probe.sequences", self.sequences)
        if self.sequences < 4:
            raise ConfigError("probe.sequences", self.sequences, "an integer >= 4")
        check_positive("probe.lam", self.lam)


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation sequences.

    Args:
        sequences: number of evaluation sequences.
        seed: key of the evaluation sequences.
    """

    sequences: int = 2048
    seed: int = 5

    def __post_init__(self):
        check_positive_int("eval.sequences", self.sequences)


@dataclass(frozen=True)
class PlainTokenConfig:
    """Plain tokens (the paper's Fig. 7, SI Table 1): e_t = s_t, a linear embedding to
    ``dim``, sinusoidal positions (``positions`` wide) concatenated to the first layer's
    queries and keys, pre-LayerNorm blocks with GELU MLPs, a linear read-out. Trained: a
    ``softmax_layers``-layer softmax Transformer and the hybrid-mesa model (one softmax
    layer, then one mesa layer, the same blocks). Baseline: Proposition 2 with as many
    layers (``softmax_layers`` steps), fitted by Adam.

    Args:
        enabled: train them (off in both modes: ``--set plain.enabled=true``).
        task: the system the plain-token models learn; unlike the constructed-token
            experiments it may be partially observed (``task.hidden_dim``) or nonlinear.
        softmax_layers: depth of the softmax Transformer (paper: 7).
        heads, key_size, dim, positions: per SI Table 1 (4, 20, 40, 40).
        init_std: weight initialisation (paper: 0.05 without constructed tokens).
        optim, train: the paper's AdamW (wd 0.05, clip 1) with 1000 warm-up steps to
            7e-4, then cosine decay (here to 0 over the run; the paper decays to 1e-5
            over 30k steps and stops at about 10k).
        few_shot_pairs: N of the few-shot regression read by the trained softmax
            Transformer (Fig. 8A; 0 = off): W* orthogonal, x_i ~ N(0, I), y_i = W* x_i, as
            [x_1, y_1, …]; with an EOS token after each pair and with EOS + ``prompt_tokens``
            soft prefix tokens, each tuned on the frozen model. 3N + prompt_tokens should
            stay within the training length T (50 = 3·10 + 20).
        prompt_tokens: soft prefix tokens (paper: 20).
        prompt_steps, prompt_batch: Adam steps and batch of the tuning (paper: 5000, 256).
        prompt_lr: its learning rate, cosine-decayed to 0 (not given in the paper).
    """

    enabled: bool = False
    task: DynamicsTask = field(default_factory=DynamicsTask)
    softmax_layers: int = 7
    heads: int = 4
    key_size: int = 20
    dim: int = 40
    positions: int = 40
    init_std: float = 0.05
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adamw", lr=7e-4, b2=0.999, weight_decay=0.05, clip_norm=1.0,
        schedule="warmup_cosine", warmup_steps=1000))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=10_000, batch_size=256, eval_every=500, seeds=3))
    few_shot_pairs: int = 10
    prompt_tokens: int = 20
    prompt_steps: int = 5000
    prompt_batch: int = 256
    prompt_lr: float = 1e-2

    def __post_init__(self):
        check_nonnegative("plain.few_shot_pairs", self.few_shot_pairs)
        check_nonnegative("plain.prompt_tokens", self.prompt_tokens)
        check_positive_int("plain.prompt_steps", self.prompt_steps)
        check_positive_int("plain.prompt_batch", self.prompt_batch)
        check_positive("plain.prompt_lr", self.prompt_lr)
        for key in ("softmax_layers", "heads", "key_size", "dim"):
            check_positive_int(f"plain.{key}", getattr(self, key))
        if self.softmax_layers < 2:
            raise ConfigError("plain.softmax_layers", self.softmax_layers, "an integer >= 2")

    def model_config(self, layers: tuple[str, ...]) -> CausalTransformerConfig:
        return CausalTransformerConfig(
            layers=layers, heads=self.heads, key_size=self.key_size, dim=self.dim,
            readout="linear", mlp=True, layer_norm=True, positions=self.positions,
            init_std=self.init_std).resolve(self.task.state_dim, self.task.state_dim)

    def models(self) -> dict[str, tuple[str, ...]]:
        return {f"plain-softmax-{self.softmax_layers}": ("softmax",) * self.softmax_layers,
                "plain-hybrid-mesa": ("softmax", "mesa")}


@dataclass(frozen=True)
class MesaConfig:
    """Models, task and training of the mesa-optimization recipe.

    Args:
        depths: LSA depths K on constructed tokens (1 = the 2-head masked-query model;
            K > 1: ``heads`` heads each). Must include 1.
        heads: heads of the K > 1 layer LSAs (paper: 4).
        heads_one_layer: heads of the 1-layer LSA and of the mesa layer (paper: 2).
        key_size: per-head key size (paper: 20).
        clip: activation clip of the linear models (paper: 4; code: 1.5).
        init_std: weight initialisation standard deviation (code: 0.0002).
        fixed_teacher: also train the 1-layer LSA on the fixed-teacher control.
    """

    depths: tuple[int, ...] = (1, 2, 4, 6)
    heads: int = 4
    heads_one_layer: int = 2
    key_size: int = 20
    clip: float = 4.0
    init_std: float = 0.0002
    fixed_teacher: bool = True
    task: DynamicsTask = field(default_factory=DynamicsTask)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adamw", lr=1e-4, b2=0.999, weight_decay=0.1, clip_norm=1.0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=10_000, batch_size=256, eval_every=500, seeds=3))
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plain: PlainTokenConfig = field(default_factory=PlainTokenConfig)

    def __post_init__(self):
        if (not self.depths or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                                   for k in self.depths) or 1 not in self.depths):
            raise ConfigError("depths", self.depths,
                              "a comma-separated list of integers >= 1 that includes 1")
        for key in ("heads", "heads_one_layer", "key_size"):
            check_positive_int(key, getattr(self, key))
        if self.task.hidden_dim or self.task.dynamics != "linear":
            raise ConfigError("task.dynamics", self.task.dynamics,
                              "'linear' with task.hidden_dim = 0 (the constructed-token "
                              "claims are about fully observed linear systems; other systems "
                              "go to plain.task)")

    def model_config(self, kind: str, layers: int) -> CausalTransformerConfig:
        n = self.task.state_dim
        heads = self.heads_one_layer if layers == 1 else self.heads
        return CausalTransformerConfig(layers=(kind,) * layers, heads=heads,
                                       key_size=self.key_size, clip=self.clip,
                                       init_std=self.init_std).resolve(4 * n, n)


def full_config() -> MesaConfig:
    """The paper's constructed-token setting: K = 1, 2, 4, 6; 10k steps, 3 seeds."""
    return MesaConfig()


def quick_config() -> MesaConfig:
    """K = 1, 2, 3; 1500 steps of batch 128 at lr 1e-3, 2 seeds; a smaller probe and
    evaluation budget. Proposition 2 is fitted as in the full mode (2000 Adam steps: with
    500, its 3-step loss was 3.6 % above the value 4000 steps reach)."""
    return MesaConfig(
        depths=(1, 2, 3),
        optim=OptimConfig(name="adamw", lr=1e-3, b2=0.999, weight_decay=0.1, clip_norm=1.0),
        train=TrainConfig(steps=1500, batch_size=128, eval_every=250, seeds=2),
        probe=ProbeConfig(sequences=1024),
        eval=EvalConfig(sequences=1024))


def identity(states):
    return states


def transformer(model_config: CausalTransformerConfig):
    return lambda key: CausalTransformer(model_config, key=key)


# -- experiment ---------------------------------------------------------------------
def experiment(config: MesaConfig) -> list[Job]:
    """The trained models (LSA-K, mesa-1, the fixed-teacher LSA-1) and the learner with
    parameters among the baselines (Proposition 2, fitted by Adam), one job each."""
    task = config.task
    eval_batch = task.sample_batch(jax.random.key(config.eval.seed), config.eval.sequences)
    masked = functools.partial(constructed_tokens, mask_query=True)

    def job(name, kind, depth, tokens, on_task=task, data=eval_batch):
        init = transformer(config.model_config(kind, depth))
        return Job(name, dynamics_problem(on_task, init, tokens=tokens), config.optim,
                   config.train, eval_data=data, info={"tokens": tokens})

    jobs = [job(f"LSA-{k}", "linear", k, masked if k == 1 else constructed_tokens)
            for k in sorted(config.depths)]
    jobs.append(job("mesa-1", "mesa", 1, masked))
    if config.fixed_teacher:
        fixed_task = dataclasses.replace(task, fixed_teacher=True)
        fixed_batch = fixed_task.sample_batch(jax.random.key(config.eval.seed),
                                              config.eval.sequences)
        jobs.append(job("LSA-1-fixed-teacher", "linear", 1, masked, fixed_task, fixed_batch))
    deepest = max(config.depths)
    if deepest > 1:
        jobs.append(prop2_job(config, "prop2", task, deepest, eval_batch))
    if config.plain.enabled:
        jobs += plain_jobs(config)
    return jobs


def prop2_job(config: MesaConfig, name: str, task: DynamicsTask, steps: int, batch,
              where: str = "") -> Job:
    """Proposition 2 with ``steps`` steps on ``task``, its parameters fitted by Adam."""
    b = config.baselines
    init = lambda key: ARPreconditionedGD(steps, norm=b.prop2_norm)
    return Job(name, dynamics_problem(task, init, tokens=identity),
               OptimConfig(name="adam", lr=b.lr, b2=0.999, schedule="cosine"),
               TrainConfig(steps=b.steps, batch_size=b.batch_size, eval_every=b.steps, seeds=1,
                           seed=config.train.seed), eval_data=batch,
               label=f"Prop. 2 ({steps} steps){where}, fitted by Adam", info={"tokens": identity})


def plain_jobs(config: MesaConfig) -> list[Job]:
    """The plain-token models on ``plain.task`` and their Proposition-2 baseline."""
    plain = config.plain
    batch = plain.task.sample_batch(jax.random.key(config.eval.seed + 1), config.eval.sequences)
    jobs = [Job(name, dynamics_problem(plain.task, transformer(plain.model_config(layers)),
                                       tokens=identity), plain.optim, plain.train,
                eval_data=batch, info={"tokens": identity})
            for name, layers in plain.models().items()]
    jobs.append(prop2_job(config, "plain-prop2", plain.task, plain.softmax_layers, batch,
                          " on plain.task"))
    return jobs


# -- measurement --------------------------------------------------------------------
def per_step_loss(model, batch, tokens=constructed_tokens) -> np.ndarray:
    return np.asarray(sequence_loss_per_step(model, batch, tokens))


def curve_rows(learner: str, seed: int, curve) -> list[dict]:
    return [{"learner": learner, "seed": seed, "t": t + 1, "loss": float(v)}
            for t, v in enumerate(curve)]


def measure(config: MesaConfig, trained) -> dict[str, pd.DataFrame]:
    task, deepest = config.task, max(config.depths)
    eval_batch = trained["mesa-1"].eval_data
    ridge_lam, _ = tune_ar_ridge(eval_batch.inputs, eval_batch.targets)
    eta0 = ar_gd_from_zero_lr(eval_batch.inputs, eval_batch.targets)
    fit_batch = task.sample_batch(jax.random.key(config.baselines.seed),
                                  config.baselines.fit_sequences)
    phi0, eta1 = fit_gd_step(fit_batch.states)
    prop1 = ARGradientStep(task.state_dim, eta1, phi0)
    beta = tune_softmax_kernel(eval_batch.inputs, eval_batch.targets)
    zero = jnp.zeros((task.state_dim,) * 2)
    baselines = {"oracle (knows W*)": ar_oracle_loss_per_step(eval_batch.w, eval_batch.inputs,
                                                              eval_batch.targets),
                 RIDGE: per_step_loss(lambda s: ar_ridge_predictions(s, ridge_lam), eval_batch,
                                      identity),
                 GD0: per_step_loss(lambda s: ar_gd_predictions(s, zero, eta0), eval_batch,
                                    identity),
                 PROP1: per_step_loss(prop1, eval_batch, identity)}
    if deepest > 1:
        baselines[PROP2.format(deepest)] = per_step_loss(
            trained["prop2"].models[0], eval_batch, identity)
    baselines["softmax kernel regression"] = per_step_loss(
        lambda s: softmax_kernel_predictions(s, beta), eval_batch, identity)
    rows = [row for name, c in baselines.items() for row in curve_rows(name, -1, c)]
    models = [f"LSA-{k}" for k in sorted(config.depths)] + ["mesa-1"]
    for name in models:
        job = trained[name]
        for seed, m in zip(job.seeds, job.models, strict=True):
            rows += curve_rows(name, seed, per_step_loss(m, eval_batch, job.info["tokens"]))
    mesa = trained["mesa-1"]
    tables = {"per_t": pd.DataFrame(rows),
              "mesa_lambda": pd.DataFrame({"seed": mesa.seeds, "lambda_mean": [
                  float(jnp.abs(m.layers[0].lam).mean()) for m in mesa.models]}),
              "baseline_params": pd.DataFrame([{
                  "ridge_lambda": ridge_lam, "gd_from_zero_eta": eta0,
                  "prop1_eta": float(prop1.eta), "softmax_beta": beta,
                  "prop1_phi0_norm": float(jnp.linalg.norm(prop1.phi0))}])}
    if config.fixed_teacher:
        fixed = trained["LSA-1-fixed-teacher"]
        batch = fixed.eval_data
        eta = ar_gd_from_zero_lr(batch.inputs, batch.targets)
        rows = curve_rows(GD0, -1, per_step_loss(lambda s: ar_gd_predictions(s, zero, eta),
                                                 batch, identity))
        rows += curve_rows("oracle", -1, ar_oracle_loss_per_step(batch.w, batch.inputs,
                                                                 batch.targets))
        for seed, m in zip(fixed.seeds, fixed.models, strict=True):
            rows += curve_rows("LSA-1", seed, per_step_loss(m, batch, fixed.info["tokens"]))
        tables["fixed_teacher"] = pd.DataFrame(rows)
    tables["probes"] = probes(config, trained[f"LSA-{deepest}"])
    tables["structure"] = structure(config, trained)
    if config.plain.enabled:
        tables.update(measure_plain(config, trained))
    if deepest > 1:
        job = trained[f"LSA-{deepest}"]
        n = task.state_dim
        tables["compressed_per_t"] = pd.DataFrame([
            row for seed, m in zip(job.seeds, job.models, strict=True)
            for row in curve_rows(f"CompressedAlg-{deepest}", seed, per_step_loss(
                m.with_head_products(compressed_products(m, n)), eval_batch,
                job.info["tokens"]))])
    return tables


def measure_plain(config: MesaConfig, trained) -> dict[str, pd.DataFrame]:
    """Per-t losses of the plain-token models and their baselines on ``plain.task``, and
    the probes of the softmax Transformer (seed 0)."""
    plain = config.plain
    names = list(plain.models())
    batch = trained[names[0]].eval_data
    lam, _ = tune_ar_ridge(batch.inputs, batch.targets)
    rows = curve_rows(RIDGE, -1, per_step_loss(lambda s: ar_ridge_predictions(s, lam), batch,
                                               identity))
    rows += curve_rows(PROP2.format(plain.softmax_layers), -1, per_step_loss(
        trained["plain-prop2"].models[0], batch, identity))
    if not plain.task.hidden_dim and plain.task.dynamics == "linear":
        rows += curve_rows("oracle (knows W*)", -1, ar_oracle_loss_per_step(
            batch.w, batch.inputs, batch.targets))
    for name in names:
        job = trained[name]
        for seed, m in zip(job.seeds, job.models, strict=True):
            rows += curve_rows(name, seed, per_step_loss(m, batch, identity))
    tables = {"plain_per_t": pd.DataFrame(rows),
              "plain_probes": probes(config, trained[names[0]], plain.task, past=True)}
    if plain.few_shot_pairs:
        tables["few_shot"] = few_shot(config, trained[names[0]])
    return tables


def few_shot(config: MesaConfig, job) -> pd.DataFrame:
    """Per-pair loss of few-shot regression read by each seed's softmax Transformer:
    plain tokens, with a tuned EOS token, with EOS + tuned prefix; and least squares on
    the clean pairs and on D_mesa (the spurious pairs (y_j, x_{j+1}) included)."""
    plain = config.plain
    task = FewShotRegressionTask(state_dim=plain.task.state_dim, pairs=plain.few_shot_pairs)
    batch = task.sample_batch(jax.random.key(config.eval.seed + 2), config.eval.sequences)
    curve = lambda name, seed, losses: [{"learner": name, "seed": seed, "pair": i + 1,
                                         "loss": float(v)} for i, v in enumerate(losses)]
    lsq = lambda predict: 0.5 * jnp.sum((jax.vmap(predict)(batch.x, batch.y) - batch.y) ** 2,
                                        -1).mean(0)
    rows = curve(LSQ_CLEAN, -1, lsq(lambda x, y: pair_ridge_predictions(x, y, 1e-4)))
    rows += curve(LSQ_MESA, -1, lsq(lambda x, y: (lambda tokens, at: ar_ridge_predictions(
        tokens, 1e-4)[at])(*few_shot_tokens(x, y))))
    tune = OptimConfig(name="adam", lr=plain.prompt_lr, b2=0.999, schedule="cosine")
    steps = TrainConfig(steps=plain.prompt_steps, batch_size=plain.prompt_batch,
                        eval_every=plain.prompt_steps, seeds=1)
    for seed, model in zip(job.seeds, job.models, strict=True):
        rows += curve(FEW_SHOT, seed, few_shot_loss_per_pair(model, batch))
        for name, prefix in ((FEW_SHOT_EOS, 0), (FEW_SHOT_PREFIX, plain.prompt_tokens)):
            trainer = Trainer(few_shot_problem(model, task, eos=True, prefix_tokens=prefix),
                              tune, dataclasses.replace(steps, seed=seed))
            prompt = trainer.models(trainer.fit(batch))[0]
            rows += curve(name, seed, few_shot_loss_per_pair(model, batch, prompt))
    return pd.DataFrame(rows)


def structure(config: MesaConfig, trained) -> pd.DataFrame:
    """Block-identity share per (model, seed, layer); the 1-layer models (masked tokens
    [0, 0, s_t, s_{t−1}], read from slot 0) on the blocks that act only."""
    n, rows = config.task.state_dim, []
    names = [f"LSA-{k}" for k in sorted(config.depths)]
    names += ["LSA-1-fixed-teacher"] if config.fixed_teacher else []
    for name in names:
        job = trained[name]
        one_layer = len(job.models[0].layers) == 1
        for seed, m in zip(job.seeds, job.models, strict=True):
            shares = (identity_block_share(m, n, out_blocks=(0,), in_blocks=(2, 3))
                      if one_layer else identity_block_share(m, n))
            rows += [{"model": name, "seed": seed, "layer": i + 1, "share": v}
                     for i, v in enumerate(shares)]
    return pd.DataFrame(rows)


def probes(config: MesaConfig, job, task: DynamicsTask | None = None,
           past: bool = False) -> pd.DataFrame:
    """R² of linear probes per (layer, t) of the first seed's model (held-out half):
    the next state, the preconditioned input and, with ``past``, the previous state
    s_{t−1} (token binding)."""
    task = task or config.task
    batch = task.sample_batch(jax.random.key(config.probe.seed), config.probe.sequences)
    tokens = job.info["tokens"]
    require(job.models[0], ResidualStreamModel, "mesa's linear probes")
    features = jax.vmap(lambda s: job.models[0].residual_stream(tokens(s)))(batch.inputs)
    targets = {NEXT: batch.targets, PRECOND: jax.vmap(
        lambda s: ar_preconditioned_inputs(s, config.probe.lam))(batch.inputs)}
    if past:
        targets[PAST] = jax.vmap(lambda s: past_states(s, 1))(batch.inputs)
    rows = []
    for target, values in targets.items():
        r2 = np.asarray(probe_grid(features, values)["r2"])
        rows += [{"target": target, "layer": layer, "t": t + 1, "r2": float(r2[layer, t])}
                 for layer in range(r2.shape[0]) for t in range(r2.shape[1])]
    return pd.DataFrame(rows)


RECIPE = Recipe(
    name="mesa", title="Mesa-optimization in Transformers trained on sequences",
    description="Linear attention on sequences implements GD, the mesa layer ridge regression; "
                "deeper models approach it (von Oswald et al. 2023)",
    paper=PAPER, config_type=MesaConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=claims, checks=CHECKS, figures=FIGURES,
    sections=SECTIONS)
