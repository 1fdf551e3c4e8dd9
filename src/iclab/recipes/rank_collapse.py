"""rank-collapse: token alignment and the attention projections' gradients at
initialisation against depth, with and without residual scaling (Noci et al. 2022; the
shaped attention of Noci et al. 2023).

What is computed (no training): GPT language models (``iclab.models.GPT``: causal softmax
attention and GELU MLPs) at initialisation, at several depths, in five variants — no
residual connections, Post-LN, Pre-LN, Pre-LN with 1/√L residual branches, and Pre-LN with
shaped attention (softmax centred at the identity, logits divided by τ₀√W) — over many
initialisations, on one batch of sequences of a synthetic language.

What is measured: the mean token cosine ρ (``token_cosine``) of the residual stream after
every block (before the final LayerNorm), and the Frobenius norms of the next-token loss's
gradients with respect to W_Q, W_K and W_V of every layer
(``projection_gradient_norms``).
"""

import dataclasses
import math
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.config import ConfigError, check_positive_int
from iclab.engine import next_token_loss
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.instruments import projection_gradient_norms, stream_cosines
from iclab.models import GPT, ForwardMultipliers, GPTConfig
from iclab.recipes.analysis.rank_collapse import plot_cosine, plot_gradients
from iclab.tasks import MarkovLanguageTask, one_hot_tokens

PAPER = ("Noci, Anagnostidis, Biggio, Orvieto, Singh, Lucchi: Signal propagation in "
         "transformers: theoretical perspectives and the role of rank collapse (NeurIPS "
         "2022); Noci, Li, Li, He, Hofmann, Maddison, Roy: The shaped transformer: attention "
         "models in the infinite depth-and-width limit (NeurIPS 2023).")
VARIANTS = ("no_residual", "post_ln", "pre_ln", "pre_ln_sqrt_depth", "shaped")
NOTE = ("the papers' findings as summarised in our notes (ρ → 1 without residual scaling, "
        "vanishing query/key gradients, bounded ρ with 1/√L branches or shaped attention); "
        "the thresholds are ours")

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("no_residual_collapses", "without residual connections the tokens align: ρ of "
          "the last block's output at the largest depth (mean over initialisations)",
          lambda r: _rho(r, "no_residual", "max"), ">=", 0.9, note=NOTE),
    Claim("post_ln_collapses", "Post-LN without residual scaling aligns the tokens with "
          "depth: ρ at the largest depth", lambda r: _rho(r, "post_ln", "max"), ">=", 0.9,
          note=NOTE),
    Claim("qk_gradients_vanish", "with rank collapse the queries' and keys' gradients "
          "vanish: without residuals, the last layer's (‖∇W_Q‖ + ‖∇W_K‖) / (2‖∇W_V‖) at "
          "the largest depth over the same at the smallest depth",
          lambda r: _qk_ratio(r, "no_residual", "max") / _qk_ratio(r, "no_residual", "min"),
          "<", 0.1, note=NOTE),
    Claim("sqrt_depth_bounded", "with 1/√L residual branches ρ stays near its starting "
          "value: ρ at the largest depth minus ρ at the smallest (Pre-LN)",
          lambda r: _rho(r, "pre_ln_sqrt_depth", "max") - _rho(r, "pre_ln_sqrt_depth",
                                                                 "min"), "<=", 0.2, note=NOTE),
    Claim("shaped_bounded", "with shaped attention ρ stays near its starting value: ρ at "
          "the largest depth minus ρ at the smallest (Pre-LN)",
          lambda r: _rho(r, "shaped", "max") - _rho(r, "shaped", "min"), "<=", 0.2,
          note=NOTE),
]
FIGURES = [
    Figure("cosine", "Mean token cosine ρ of the last block's output against depth (log₂), "
           "per variant (mean over initialisations, band: ± one standard deviation); right: "
           "ρ after every block of the deepest models.", plot_cosine),
    Figure("gradients", "Gradient norms of W_Q, W_K (solid, dashed) and W_V (dotted) of the "
           "last layer against depth, per variant (mean over initialisations).",
           plot_gradients),
]
SECTIONS = [
    Section("Per variant and depth: ρ of the last block's output and the last layer's "
            "gradient norms (mean and standard deviation over initialisations)",
            table="summary"),
]


def _at(r, variant: str, which: str) -> pd.Series:
    s = r["summary"]
    s = s[s.variant == variant]
    depth = s.depth.max() if which == "max" else s.depth.min()
    return s[s.depth == depth].iloc[0]


def _rho(r, variant: str, which: str) -> float:
    return float(_at(r, variant, which).rho)


def _qk_ratio(r, variant: str, which: str) -> float:
    row = _at(r, variant, which)
    return float((row.grad_q + row.grad_k) / (2 * row.grad_v))


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RankCollapseConfig:
    """Args:
        task: the synthetic language (sequences and next-token targets).
        model: the GPT (its layers are each depth; norm_position, residual, attention and
            the branch multiplier are set per variant).
        depths: the depths (blocks).
        variants: which of no_residual, post_ln, pre_ln, pre_ln_sqrt_depth, shaped.
        shaped_tau: τ₀ of the shaped attention.
        inits: initialisations per variant and depth.
        sequences: sequences in the batch.
    """

    task: MarkovLanguageTask = field(default_factory=lambda: MarkovLanguageTask(
        vocab=32, length=32, branching=3, concentration=0.5))
    model: GPTConfig = field(default_factory=lambda: GPTConfig(width=128, heads=4,
                                                               max_len=32))
    depths: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    variants: tuple[str, ...] = VARIANTS
    shaped_tau: float = 1.0
    inits: int = 32
    sequences: int = 32

    def __post_init__(self):
        check_positive_int("inits", self.inits)
        check_positive_int("sequences", self.sequences)
        if len(self.depths) < 2 or any(not isinstance(d, int) or d < 1 for d in self.depths):
            raise ConfigError("depths", self.depths, "at least two positive integers")
        for v in self.variants:
            if v not in VARIANTS:
                raise ConfigError("variants", v, ", ".join(VARIANTS))
        if not self.shaped_tau > 0:
            raise ConfigError("shaped_tau", self.shaped_tau, "a positive number")
        if self.model.max_len < self.task.length:
            raise ConfigError("model.max_len", self.model.max_len,
                              f"at least task.length ({self.task.length})")


def full_config() -> RankCollapseConfig:
    return RankCollapseConfig()


def quick_config() -> RankCollapseConfig:
    return RankCollapseConfig(model=GPTConfig(width=64, heads=4, max_len=32),
                              depths=(1, 2, 4, 8, 16, 32, 64), inits=8, sequences=16)


# -- experiment -------------------------------------------------------------------------
def experiment(config: RankCollapseConfig) -> list[Job]:
    return []  # nothing is trained: the measurement computes at initialisation


def _variant_model(config: RankCollapseConfig, variant: str, depth: int):
    model = dataclasses.replace(
        config.model, dim_in=config.task.vocab, dim_out=config.task.vocab, layers=depth,
        norm_position="post" if variant == "post_ln" else "pre",
        residual=variant != "no_residual",
        attention="shaped" if variant == "shaped" else "softmax",
        shaped_tau=config.shaped_tau)
    branch = 1 / math.sqrt(depth) if variant == "pre_ln_sqrt_depth" else 1.0
    return lambda key: GPT(model, key=key).with_multipliers(ForwardMultipliers(branch=branch))


def _at_init(config: RankCollapseConfig, variant: str, depth: int, batch) -> dict:
    vocab = config.task.vocab
    inputs = jax.vmap(lambda t: one_hot_tokens(t[:-1], vocab))(batch.tokens)
    build = _variant_model(config, variant, depth)

    def one(params, static):
        model = eqx.combine(params, static)
        grads = projection_gradient_norms(
            model, lambda m: next_token_loss(m, batch.tokens, vocab))
        return stream_cosines(model, inputs), grads

    # built eagerly, one model per initialisation (compiling a deep model's initialisation
    # costs far more than running it), then measured as one vmapped program
    keys = jax.random.split(jax.random.key(depth * 1009 + VARIANTS.index(variant)),
                            config.inits)
    models = [build(k) for k in keys]
    static = eqx.partition(models[0], eqx.is_array)[1]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs),
                           *[eqx.filter(m, eqx.is_array) for m in models])
    cosines, grads = eqx.filter_jit(jax.vmap(one, in_axes=(0, None)))(stacked, static)
    return {"cosines": np.asarray(cosines),
            **{k: np.asarray(v) for k, v in grads.items()}}


def measure(config: RankCollapseConfig, trained) -> dict[str, pd.DataFrame]:
    del trained
    batch = config.task.sample_batch(jax.random.key(7), config.sequences)
    summary, layers = [], []
    for variant in config.variants:
        for depth in config.depths:
            out = _at_init(config, variant, depth, batch)
            rho = out["cosines"][:, -1]
            row = {"variant": variant, "depth": depth, "rho": float(rho.mean()),
                   "rho_std": float(rho.std()), "rho_embedding": float(
                       out["cosines"][:, 0].mean())}
            for name in ("q", "k", "v"):
                last = out[name][:, -1]
                row[f"grad_{name}"] = float(last.mean())
                row[f"grad_{name}_std"] = float(last.std())
                row[f"grad_{name}_first"] = float(out[name][:, 0].mean())
            summary.append(row)
            if depth == max(config.depths):
                mean = out["cosines"].mean(0)
                layers += [{"variant": variant, "depth": depth, "layer": i,
                            "rho": float(mean[i])} for i in range(mean.size)]
    return {"summary": pd.DataFrame(summary), "layers": pd.DataFrame(layers)}


RECIPE = Recipe(
    name="rank-collapse", title="Rank collapse at initialisation",
    description="Token cosine and Q/K/V gradient norms at initialisation against depth: "
                "no residual and Post-LN collapse and lose their query/key gradients; "
                "1/√L branches and shaped attention keep ρ bounded (Noci et al. 2022, 2023)",
    paper=PAPER, config_type=RankCollapseConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, figures=FIGURES,
    sections=SECTIONS)
