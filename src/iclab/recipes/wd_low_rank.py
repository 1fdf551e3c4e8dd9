"""wd-low-rank: "Weight decay induces low-rank attention layers" (Kobayashi, Akram,
von Oswald, NeurIPS 2024).

What is trained:

1. The factorised toy (the paper's Fig. 1 setting): A, B ∈ R^{5×5} from N(0, 0.5²) by
   plain gradient descent (η = 0.05, 20,000 steps) on ½‖ABᵀ − D‖_F² + (λ/2)(‖A‖_F² +
   ‖B‖_F²), D = diag(0.2, 0.4, 0.6, 0.8, 1.0), λ ∈ {0, 0.1, 0.3, 0.5} (coupled L2 decay).
2. A 2-layer softmax transformer (4 heads of 16, width 64, MLPs, pre-LayerNorm) on
   in-context associative recall (8 item–label pairs, then a query item; the answer is
   its label), AdamW (lr 1e-3), weight decay 0.1 on everything but attention and
   λ_attn on W_Q, W_K, W_V, W_O (``optim.attention_weight_decay``).

What is measured: for the toy, the singular values of ABᵀ against max(d_i − λ, 0) (the
nuclear-norm solution: singular values of D soft-thresholded at λ), the ratio
‖ABᵀ‖_* / ½(‖A‖² + ‖B‖²) (1 when the factors are balanced, where L2 on the factors is
the nuclear norm of the product), and the decay of the imbalance ‖AᵀA − BᵀB‖_F against
gradient flow's e^{−2λt} (t = η × steps); for the transformer, per head, the ranks of
W_Kᵀ W_Q and W_O W_V (``instruments.head_spectra``) against λ_attn.
"""

import dataclasses
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.engine import OptimConfig, Problem, TrainConfig, query_token_problem
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.instruments import factor_metrics, head_spectra
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes.analysis.wd_low_rank import plot_imbalance, plot_ranks, plot_singular_values
from iclab.tasks import ItemLabelTask

PAPER = ("Kobayashi, Akram, von Oswald: Weight decay induces low-rank attention layers, "
         "NeurIPS 2024 (arXiv 2410.23819).")
TOY_D = (0.2, 0.4, 0.6, 0.8, 1.0)

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("toy_singular_values", "GD with L2 on the factors reaches the nuclear-norm "
          "solution: max_i |s_i(ABᵀ) − max(d_i − λ, 0)| over λ > 0 and seeds",
          lambda r: r["toy"].query("lam > 0").max_sv_error, "<=", 1e-3, reduce="max",
          note="closed form: the singular values of D soft-thresholded at λ"),
    Claim("toy_gap_closes", "the L2 penalty becomes the nuclear norm: min over λ > 0 and "
          "seeds of ‖ABᵀ‖_* / ½(‖A‖² + ‖B‖²) at the end",
          lambda r: r["toy"].query("lam > 0").nuclear_over_l2, ">=", 0.999, reduce="min"),
    Claim("toy_balance_rate", "the imbalance ‖AᵀA − BᵀB‖ decays as e^{−2ηλ·step}: "
          "max over λ > 0 and seeds of |fitted rate / 2ηλ − 1|",
          lambda r: (r["toy"].query("lam > 0").decay_rate
                     / r["toy"].query("lam > 0").predicted_rate - 1).abs(), "<=", 0.25,
          reduce="max"),
    Claim("toy_no_decay_no_balance", "without weight decay the factors stay unbalanced "
          "(the loss alone conserves AᵀA − BᵀB): min over seeds of imbalance(end) / "
          "imbalance(0) at λ = 0", lambda r: r["toy"].query("lam == 0").imbalance_kept,
          ">=", 0.5, reduce="min"),
    Claim("qk_rank_falls", "the effective rank of the heads' W_Kᵀ W_Q falls with the "
          "attention weight decay: the largest step up between consecutive λ_attn "
          "(mean over layers, heads and seeds)",
          lambda r: np.diff(_by_lambda(r, "qk_effective_rank")).max(), "<", 0.0,
          note="the paper: lower rank at larger λ (2-layer Transformer, figure caption)"),
    Claim("ov_rank_falls", "the same for W_O W_V",
          lambda r: np.diff(_by_lambda(r, "ov_effective_rank")).max(), "<", 0.0),
    Claim("qk_balanced_by_decay", "attention weight decay balances the key–query factors: "
          "‖W_Kᵀ W_Q‖_* / ½(‖W_K‖² + ‖W_Q‖²) at the largest λ_attn minus at λ_attn = 0",
          lambda r: _by_lambda(r, "qk_nuclear_over_l2")[-1]
          - _by_lambda(r, "qk_nuclear_over_l2")[0], ">", 0.0),
]

FIGURES = [
    Figure("toy_singular_values", "Factorised toy: singular values of ABᵀ during GD (one "
           "seed) against max(d_i − λ, 0) (dotted), per λ.", lambda r: plot_singular_values(
               r, TOY_D)),
    Figure("toy_imbalance", "Factorised toy: imbalance ‖AᵀA − BᵀB‖_F (log) with gradient "
           "flow's e^{−2ηλ·step} (dashed).", plot_imbalance),
    Figure("attention_ranks", "Transformer: effective rank and rank@0.01 of the heads' "
           "W_Kᵀ W_Q and W_O W_V against λ_attn (mean over layers and heads; dots: seeds).",
           plot_ranks),
]
SECTIONS = [
    Section("Factorised toy (final values per λ and seed)", table="toy"),
    Section("Transformer (final values per λ_attn and seed; means over layers and heads)",
            table="attention"),
]


def _by_lambda(r, column: str) -> np.ndarray:
    """A column of table "attention", mean over seeds, in increasing λ_attn."""
    return r["attention"].groupby("lam_attn")[column].mean().sort_index().to_numpy()


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ToyConfig:
    """Args:
        lambdas: the weight decays λ, one model each.
        lr: GD's step η.
        steps: GD steps.
        init_std: standard deviation of the factors' entries at initialisation.
    """

    lambdas: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5)
    lr: float = 0.05
    steps: int = 20_000
    init_std: float = 0.5


@dataclass(frozen=True)
class WdLowRankConfig:
    """Args:
        toy: the factorised toy.
        task: the associative-recall task of the transformer.
        attention_decays: the λ_attn compared, one transformer each.
        model: the transformer.
        optim: AdamW; its ``weight_decay`` is λ on the non-attention parameters.
        train: steps, batch and seeds (shared by the toy's seeds).
        eval_tasks: held-out sequences for the transformer's loss and accuracy.
    """

    toy: ToyConfig = field(default_factory=ToyConfig)
    task: ItemLabelTask = field(default_factory=lambda: ItemLabelTask(n_pairs=8, items=32,
                                                                      labels=32))
    attention_decays: tuple[float, ...] = (0.0, 0.01, 0.1, 0.3, 1.0)
    model: CausalTransformerConfig = field(default_factory=lambda: CausalTransformerConfig(
        layers=("softmax", "softmax"), heads=4, key_size=16, dim=64, readout="linear",
        mlp=True, layer_norm=True, init_std=0.05))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adamw", lr=1e-3, b2=0.98, weight_decay=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=5000, batch_size=128, eval_every=250, seeds=3))
    eval_tasks: int = 2048


def full_config() -> WdLowRankConfig:
    return WdLowRankConfig()


def quick_config() -> WdLowRankConfig:
    return WdLowRankConfig(attention_decays=(0.0, 0.1, 1.0), train=TrainConfig(
        steps=2000, batch_size=128, eval_every=250, seeds=2))


# -- experiment -------------------------------------------------------------------------
class Factorised(eqx.Module):
    """M = A Bᵀ with A, B ∈ R^{n×n}."""

    a: jax.Array
    b: jax.Array

    def __init__(self, n: int, std: float, key):
        ka, kb = jax.random.split(key)
        self.a = std * jax.random.normal(ka, (n, n))
        self.b = std * jax.random.normal(kb, (n, n))


def toy_problem(config: ToyConfig) -> Problem:
    target = jnp.diag(jnp.asarray(TOY_D))

    def evaluate(model, _):
        s = jnp.linalg.svd(model.a @ model.b.T, compute_uv=False)
        factors = factor_metrics(model.a, model.b)
        return {**{f"s{i + 1}": s[i] for i in range(len(TOY_D))},
                "nuclear_over_l2": factors["nuclear_over_l2"],
                "imbalance": factors["imbalance"]}

    return Problem(init_model=lambda key: Factorised(len(TOY_D), config.init_std, key),
                   sample_batch=lambda key, batch_size: jnp.zeros(()),
                   loss=lambda m, _: 0.5 * jnp.sum((m.a @ m.b.T - target) ** 2),
                   evaluate=evaluate)


def recall_problem(config: WdLowRankConfig) -> Problem:
    model_config = config.model.resolve(config.task.vocab_size, config.task.vocab_size)
    return query_token_problem(config.task,
                               lambda key: CausalTransformer(model_config, key=key))


def experiment(config: WdLowRankConfig) -> list[Job]:
    toy = config.toy
    toy_train = TrainConfig(steps=toy.steps, batch_size=1, eval_every=20,
                            seeds=config.train.seeds, seed=config.train.seed)
    jobs = [Job(f"toy_l{lam:g}", toy_problem(toy),
                OptimConfig(name="sgd", lr=toy.lr, weight_decay=lam, decay_mode="coupled"),
                toy_train, label=f"toy λ={lam:g}", cost=0.1) for lam in toy.lambdas]
    eval_batch = config.task.sample_batch(jax.random.key(7), config.eval_tasks)
    for lam in config.attention_decays:
        optim = dataclasses.replace(config.optim, attention_weight_decay=lam)
        jobs.append(Job(f"attn_l{lam:g}", recall_problem(config), optim, config.train,
                        eval_data=eval_batch, label=f"transformer λ_attn={lam:g}"))
    return jobs


# -- measurement ------------------------------------------------------------------------
def _decay_rate(curve: pd.Series) -> float:
    """−d log(imbalance)/d step, fitted where the imbalance is above 1e-5 of its start
    (clear of the float32 floor)."""
    values = curve.to_numpy()
    keep = values > 1e-5 * values[0]
    if keep.sum() < 3:
        return float("nan")
    return float(-np.polyfit(curve.index.to_numpy()[keep], np.log(values[keep]), 1)[0])


def measure(config: WdLowRankConfig, trained) -> dict[str, pd.DataFrame]:
    toy_rows = []
    for lam in config.toy.lambdas:
        job = trained[f"toy_l{lam:g}"]
        imbalance = job.curves("imbalance")
        for s, seed in enumerate(job.seeds):
            values = np.array([float(job.final[f"s{i + 1}"][s]) for i in range(len(TOY_D))])
            target = np.sort(np.maximum(np.asarray(TOY_D) - lam, 0.0))[::-1]
            curve = imbalance[seed]
            toy_rows.append({
                "lam": lam, "seed": seed, **{f"s{i + 1}": v for i, v in enumerate(values)},
                "max_sv_error": float(np.abs(values - target).max()),
                "nuclear_over_l2": float(job.final["nuclear_over_l2"][s]),
                "imbalance_start": float(curve.iloc[0]), "imbalance_end": float(curve.iloc[-1]),
                "imbalance_kept": float(curve.iloc[-1] / curve.iloc[0]),
                "decay_rate": _decay_rate(curve) if lam > 0 else float("nan"),
                "predicted_rate": 2 * config.toy.lr * lam})
    attention_rows = []
    for lam in config.attention_decays:
        job = trained[f"attn_l{lam:g}"]
        for s, (seed, model) in enumerate(zip(job.seeds, job.models, strict=True)):
            spectra = head_spectra(model)
            attention_rows.append({
                "lam_attn": lam, "seed": seed,
                **{f"{p}_{m.replace('@0.01', '')}": float(spectra[f"{p}/{m}"].mean())
                   for p in ("qk", "ov")
                   for m in ("effective_rank", "rank@0.01", "stable_rank", "nuclear_over_l2")},
                "qk_sigma": float(spectra["qk/sigma"].mean()),
                "accuracy": float(job.final["accuracy"][s]),
                "loss": float(job.final["loss"][s])})
    return {"toy": pd.DataFrame(toy_rows), "attention": pd.DataFrame(attention_rows)}


RECIPE = Recipe(
    name="wd-low-rank", title="Weight decay induces low-rank attention layers",
    description="L2 on factors = nuclear norm of their product: the exact toy, and attention "
                "ranks falling with attention weight decay (Kobayashi et al. 2024)",
    paper=PAPER, config_type=WdLowRankConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, figures=FIGURES,
    sections=SECTIONS)
