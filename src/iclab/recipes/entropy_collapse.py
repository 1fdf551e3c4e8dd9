"""entropy-collapse: "Stabilizing Transformer Training by Preventing Attention Entropy
Collapse" (Zhai, Likhomanenko, Littwin, Busbridge, Ramapuram, Zhang, Gu, Susskind, ICML
2023).

What is checked: the attention-entropy lower bound Ent(A_i) ≥ log(1 + (T−1)e^{−β}) +
β(T−1)e^{−β}/(1 + (T−1)e^{−β}), β = ‖W‖₂ ‖X Xᵀ‖₂ √(T/(T−1)), on random draws of tokens
X and logit matrices W over a range of scales, and its equality at the extremal logit
vector (a, b, …, b) — a theorem, so a check.

What is trained: a Post-LN causal transformer language model on a synthetic language
(``MarkovLanguageTask``), with Adam and no warm-up, at a low and a high learning rate,
without and with σReparam on every linear map (``model.sigma_reparam``).

What is measured, every ``train.probes.every`` steps: the attention entropy of every head
normalised by log(#keys) (``train.probes.entropy``: each sequence's, averaged over the
probe batch), the held-out loss above the chain's entropy rate, and divergence.
"""

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.config import ConfigError, check_positive_int
from iclab.engine import OptimConfig, ProbeConfig, TrainConfig, language_problem
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.instruments import entropy_bound_beta, entropy_lower_bound
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes.analysis.entropy_collapse import plot_bound, plot_entropy, plot_losses
from iclab.tasks import MarkovLanguageTask

PAPER = ("Zhai, Likhomanenko, Littwin, Busbridge, Ramapuram, Zhang, Gu, Susskind: "
         "Stabilizing Transformer training by preventing attention entropy collapse, "
         "ICML 2023 (arXiv 2303.06296).")
COLLAPSED = 0.1
"""A head has collapsed when its normalised entropy is below this (0.1 · log #keys)."""

# -- spec -------------------------------------------------------------------------------
CHECKS = [
    Claim("bound_holds", "the entropy lower bound holds: min over random draws of (row "
          "entropy − bound)", lambda r: r["bound"].slack.min(), ">=", -1e-5,
          paper=paper("a lower bound", "Theorem 3.1")),
    Claim("bound_tight", "the bound is attained by the extremal logit vector (a, b, …, b): "
          "max over β of |its entropy − bound|", lambda r: r["extremal"].gap.abs().max(),
          "<=", 1e-5, paper=paper("tight", "Theorem 3.1")),
]

CLAIMS = [
    Claim("baseline_collapses", "without σReparam at the high learning rate some head's "
          "attention entropy collapses: the lowest normalised entropy over heads and probes "
          "(min over seeds; a diverged seed counts as 0)",
          lambda r: _runs(r, "off", "high").min_entropy, "<", COLLAPSED, reduce="min",
          paper=paper("entropy collapse at high learning rate without warm-up",
                      "abstract; Fig. 1")),
    Claim("baseline_fails_at_high_lr", "without σReparam the high learning rate breaks "
          "training: final excess loss at the high rate over that at the low rate (means "
          "over seeds; a diverged seed counts as its last finite loss)",
          lambda r: _runs(r, "off", "high").final_excess.mean()
          / _runs(r, "off", "low").final_excess.mean(), ">=", 10.0,
          paper=paper("loss spikes / divergence with collapse", "Fig. 1")),
    Claim("sigma_reparam_bounded_entropy", "with σReparam at the high learning rate the "
          "entropy stays away from 0: the lowest normalised entropy over heads, probes and "
          "seeds", lambda r: _runs(r, "sigma", "high").min_entropy, ">=", COLLAPSED,
          reduce="min", paper=paper("prevents entropy collapse", "abstract")),
    Claim("sigma_reparam_trains_at_high_lr", "σReparam trains where the baseline fails: "
          "its final excess loss at the high rate over the baseline's (means over seeds)",
          lambda r: _runs(r, "sigma", "high").final_excess.mean()
          / _runs(r, "off", "high").final_excess.mean(), "<=", 0.5,
          paper=paper("stable training without warm-up", "abstract")),
]

FIGURES = [
    Figure("bound", "Entropy bound: the lowest row entropy of each random draw against β "
           "(dots), the bound (line), and the extremal vectors (crosses).", plot_bound),
    Figure("entropy", "Lowest normalised head entropy along training per learning rate, "
           "without (solid) and with σReparam (dashed); dotted: the collapse level.",
           plot_entropy),
    Figure("losses", "Held-out excess loss (log) along training, per learning rate and "
           "variant.", plot_losses),
]
SECTIONS = [
    Section("Per variant, learning rate and seed", table="runs"),
]


def _runs(r, variant: str, rate: str) -> pd.DataFrame:
    table = r["runs"]
    lr = table.lr.max() if rate == "high" else table.lr.min()
    return table[(table.variant == variant) & (table.lr == lr)]


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BoundConfig:
    """Args:
        tokens: T, keys per row.
        dim: token width d.
        draws: random (X, W) draws.
        scales: the draws' W is N(0, 1/d) times a scale spread log-uniformly over
            [10^low, 10^high].
        low, high: the exponents of that range.
        seed: key of the draws.
    """

    tokens: int = 16
    dim: int = 32
    draws: int = 2000
    low: float = -2.0
    high: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_positive_int("bound.draws", self.draws)
        check_positive_int("bound.dim", self.dim)
        if not isinstance(self.tokens, int) or isinstance(self.tokens, bool) \
                or self.tokens < 2:
            raise ConfigError("bound.tokens", self.tokens, "an integer >= 2")
        if not self.low < self.high:
            raise ConfigError("bound.high", self.high, f"a number > bound.low ({self.low})")


@dataclass(frozen=True)
class EntropyCollapseConfig:
    """Args:
        bound: the random draws of the bound check.
        task: the synthetic language.
        model: the Post-LN causal transformer (resolved to the task's vocabulary; its
            ``sigma_reparam`` is replaced by "off" and by ``sigma_reparam``).
        sigma_reparam: γ's initialisation of the σReparam variant ("one" or "sigma0").
        lrs: the learning rates (the lowest and the highest are compared).
        optim: Adam without warm-up (its lr is replaced by each of ``lrs``).
        train: steps, batch, seeds and the entropy probes.
        eval_sequences: held-out sequences for the excess loss.
    """

    bound: BoundConfig = field(default_factory=BoundConfig)
    task: MarkovLanguageTask = field(default_factory=lambda: MarkovLanguageTask(
        vocab=32, length=32, branching=3, concentration=0.5))
    model: CausalTransformerConfig = field(default_factory=lambda: CausalTransformerConfig(
        layers=("softmax", "softmax"), heads=4, key_size=16, dim=64, readout="linear",
        mlp=True, layer_norm=True, norm_position="post", init_std=0.02, max_len=32))
    sigma_reparam: str = "sigma0"
    lrs: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3,
                                                                   b1=0.9, b2=0.98))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=5000, batch_size=32, eval_every=50, seeds=3, probes=ProbeConfig(
            every=50, batch_size=32, norms=False, entropy=True)))
    eval_sequences: int = 256

    def __post_init__(self):
        if self.sigma_reparam not in ("one", "sigma0"):
            raise ConfigError("sigma_reparam", self.sigma_reparam, "one or sigma0")
        if len(self.lrs) < 2 or any(not lr > 0 for lr in self.lrs):
            raise ConfigError("lrs", self.lrs, "at least two learning rates > 0")
        if not self.train.probes.every or not self.train.probes.entropy:
            raise ConfigError("train.probes.every", self.train.probes.every,
                              "a multiple of train.eval_every with train.probes.entropy="
                              "true (the entropies are probes)")
        if self.model.max_len and self.model.max_len < self.task.length:
            raise ConfigError("model.max_len", self.model.max_len,
                              f"0 or at least task.length ({self.task.length})")
        check_positive_int("eval_sequences", self.eval_sequences)


def full_config() -> EntropyCollapseConfig:
    return EntropyCollapseConfig()


def quick_config() -> EntropyCollapseConfig:
    return EntropyCollapseConfig(lrs=(1e-2, 1e-1), train=TrainConfig(
        steps=1500, batch_size=32, eval_every=50, seeds=2, probes=ProbeConfig(
            every=50, batch_size=32, norms=False, entropy=True)))


# -- experiment -------------------------------------------------------------------------
VARIANTS = {"off": "off", "sigma": None}  # None: config.sigma_reparam


def experiment(config: EntropyCollapseConfig) -> list[Job]:
    eval_batch = config.task.sample_batch(jax.random.key(99), config.eval_sequences)
    jobs = []
    for variant, reparam in VARIANTS.items():
        model = dataclasses.replace(config.model, sigma_reparam=reparam or
                                    config.sigma_reparam).resolve(config.task.vocab,
                                                                  config.task.vocab)
        problem = language_problem(config.task, lambda key, m=model: CausalTransformer(
            m, key=key), floor=config.task.entropy_rate)
        for lr in config.lrs:
            jobs.append(Job(f"{variant}_lr{lr:g}", problem,
                            dataclasses.replace(config.optim, lr=lr), config.train,
                            eval_data=eval_batch,
                            label=f"{'σReparam' if reparam is None else 'baseline'} "
                                  f"lr={lr:g}"))
    return jobs


# -- measurement ------------------------------------------------------------------------
def bound_tables(config: BoundConfig) -> dict[str, pd.DataFrame]:
    """Random draws: each draw's lowest row entropy against the bound at its β; and the
    extremal logit vectors (a, b, …, b), whose entropy is the bound."""
    t, d = config.tokens, config.dim
    keys = jax.random.split(jax.random.key(config.seed), config.draws)
    scales = jnp.logspace(config.low, config.high, config.draws)

    def draw(key, scale):
        kx, kw = jax.random.split(key)
        x = jax.random.normal(kx, (t, d)) / jnp.sqrt(d)
        w = scale * jax.random.normal(kw, (d, d)) / jnp.sqrt(d)
        patterns = jax.nn.softmax(x @ w @ x.T, axis=-1)
        rows = -jnp.sum(jax.scipy.special.xlogy(patterns, patterns), axis=-1)
        beta = entropy_bound_beta(x, w)
        return beta, rows.min(), entropy_lower_bound(beta, t)

    beta, lowest, bound = (np.asarray(a, np.float64) for a in jax.vmap(draw)(keys, scales))
    gaps = np.linspace(0.0, 20.0, 21)
    extremal = []
    for gap in gaps:
        logits = np.zeros(t)
        logits[0] = gap
        p = np.exp(logits - logits.max())
        p /= p.sum()
        entropy = float(-(p * np.log(p)).sum())
        extremal.append({"beta": gap, "entropy": entropy,
                         "bound": float(entropy_lower_bound(gap, t)),
                         "gap": entropy - float(entropy_lower_bound(gap, t))})
    return {"bound": pd.DataFrame({"beta": beta, "lowest_entropy": lowest, "bound": bound,
                                   "slack": lowest - bound}),
            "extremal": pd.DataFrame(extremal)}


def measure(config: EntropyCollapseConfig, trained) -> dict[str, pd.DataFrame]:
    rows = []
    for variant in VARIANTS:
        for lr in config.lrs:
            job = trained[f"{variant}_lr{lr:g}"]
            history = job.history
            entropy = history[history.metric.str.startswith("probe/entropy_norm/")]
            lowest = entropy.groupby(["seed", "step"]).value.min()
            diverged = history[history.metric == "diverged_step"].set_index("seed").value
            excess = job.curves("excess_loss")
            for seed in job.seeds:
                finite = excess[seed].dropna()
                seed_entropy = lowest.loc[seed].dropna() if seed in lowest.index else None
                rows.append({
                    "variant": variant, "lr": lr, "seed": seed,
                    "diverged_step": float(diverged.get(seed, np.nan)),
                    "min_entropy": 0.0 if seed in diverged.index else float(
                        seed_entropy.min()),
                    "final_min_entropy": float(seed_entropy.iloc[-1]),
                    "collapsed_heads_end": int((entropy[(entropy.seed == seed) & (
                        entropy.step == entropy.step.max())].value < COLLAPSED).sum()),
                    "final_excess": float(finite.iloc[-1]),
                    "best_excess": float(finite.min())})
    return {**bound_tables(config.bound), "runs": pd.DataFrame(rows)}


RECIPE = Recipe(
    name="entropy-collapse", title="Attention entropy collapse and σReparam",
    description="The attention-entropy lower bound (a check); a Post-LN transformer at a "
                "high learning rate collapses and fails, with σReparam it trains with "
                "bounded entropy (Zhai et al. 2023)",
    paper=PAPER, config_type=EntropyCollapseConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, checks=CHECKS, figures=FIGURES,
    sections=SECTIONS)
