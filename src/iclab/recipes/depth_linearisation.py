"""depth-linearisation: lazy (α = ½) against complete (α = 1) feature learning over depth,
read from how far one block moves from its linearisation after one optimiser step (Dey et
al. 2025, the CompleteP code's ``relative_distance_from_linearization`` toy; Yang et al.
2024, TP-VI).

What is computed (one step, no training loop): residual MLPs (``iclab.models.ResidualMLP``,
K = 2 linear maps per branch, ReLU) at several depths L, each parametrised against the
base depth L₀ (same width) by depth-μP with branches (L/L₀)^(−α), α = ½, and by CompleteP,
α = 1 (``iclab.parametrisation``, whose depth rules set the hidden learning rate: Adam
η·(L/L₀)^(α−1) and ε·(L/L₀)^(−α); SGD η·(L/L₀)^(2α−1)). One step of Adam or of SGD on a
fixed regression batch updates only the first map W of one block's branch; the other
arrays stay at initialisation.

What is measured: that block's branch output f(W) on the batch, against its first-order
model f(W₀) + ⟨W₁ − W₀, ∇f(W₀)⟩ (``iclab.instruments.linearisation_distance``):
Δ = ‖f(W₁) − lin‖ / ‖lin‖ (Frobenius over the batch and the width), per initialisation;
and the slope of log₂ Δ against log₂ L.

Why the slopes (our derivation, to be read against the measurement): the step moves the
map's pre-activations by δz ∝ (L/L₀)^(α−1) under both optimisers' rules (Adam: a
sign-like step η(L/L₀)^(α−1) per entry; SGD: the gradient carries the branch's
(L/L₀)^(−α), the learning rate (L/L₀)^(2α−1)). A ReLU branch leaves its linearisation only
through the units whose pre-activation changes sign: a fraction ∝ δz of them, each off by
at most δz, so ‖f(W₁) − lin‖² ∝ δz³ and Δ ∝ (L/L₀)^(3(α−1)/2): slope −¾ for α = ½ (the
block becomes linear in its weights: lazy), 0 for α = 1 (it keeps learning features at any
depth). The recipe tables δz ("preactivation_change") so that the two steps of the
argument can be read apart.
"""

import dataclasses
import math
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.config import ConfigError, check_positive, check_positive_int
from iclab.engine import OptimConfig, make_optimizer
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.instruments import linearisation_distance
from iclab.models import ResidualMLP, ResidualMLPConfig
from iclab.parametrisation import Parametrisation
from iclab.recipes.analysis.depth_linearisation import plot_distance

PAPER = ("Dey, Zhang, Anthony, Hestness et al.: Don't be lazy: CompleteP enables "
         "compute-efficient deep transformers (arXiv 2505.01618), Fig. 6 and the "
         "completep_examples linearisation notebook; Yang, Yu, Zhu, Hayou: Tensor Programs "
         "VI: Feature learning in infinite-depth neural networks (ICLR 2024).")
OPTIMIZERS = ("adam", "sgd")
NOTE = ("the paper's finding as summarised in our notes (α = ½: the distance from the "
        "linearisation decays with depth, lazy blocks; α = 1: about constant, complete "
        "feature learning); the thresholds are ours, our derivation gives slopes −¾ and 0")


def _slopes(r, optimizer: str, alpha: float) -> np.ndarray:
    s = r["slopes"]
    s = s[(s.optimizer == optimizer) & np.isclose(s.alpha, alpha)]
    return s.slope.to_numpy()


# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim(f"{kind}_{opt}", f"{text} under {opt.upper() if opt == 'sgd' else 'Adam'}: the "
          "slope of log₂ Δ against log₂ L per initialisation (mean over initialisations)",
          (lambda a, o: lambda r: _slopes(r, o, a))(alpha, opt), op, threshold,
          transform=transform, note=NOTE)
    for opt in OPTIMIZERS
    for kind, text, alpha, op, threshold, transform in (
        ("lazy_at_half", "with α = ½ (depth-μP) the updated block becomes linear in its "
         "weights as the depth grows", 0.5, "<=", -0.5, None),
        ("complete_at_one", "with α = 1 (CompleteP) the block's distance from its "
         "linearisation does not change with depth: |slope|", 1.0, "<=", 0.2, abs))
]
CHECKS = [
    Claim("same_at_base_depth", "at the base depth both α are the same parametrisation "
          "(every scheme is SP at the base shape): the largest relative difference of Δ "
          "between α = ½ and α = 1 there", lambda r: _base_gap(r), "<=", 1e-5),
]
FIGURES = [
    Figure("distance", "Distance of the updated block's output from its linearisation "
           "after one step, Δ, against depth (log–log, mean of log₂ Δ over "
           "initialisations, band: ± one standard deviation), per optimiser; dashed: our "
           "derived slopes 3(α − 1)/2 through the base depth.", plot_distance),
]
SECTIONS = [
    Section("Per optimiser, α and depth: Δ (geometric mean and the spread of log₂ Δ over "
            "initialisations), Δ relative to the first-order change, and the relative change "
            "of the map's pre-activations", table="summary"),
    Section("Fitted slopes of log₂ Δ against log₂ L, per initialisation", table="slopes"),
]


def _base_gap(r) -> float:
    d = r["distances"]
    d = d[d.depth == d.depth.min()]
    half = d[np.isclose(d.alpha, 0.5)].sort_values(["optimizer", "init"]).distance.to_numpy()
    one = d[np.isclose(d.alpha, 1.0)].sort_values(["optimizer", "init"]).distance.to_numpy()
    return float(np.max(np.abs(half - one) / np.abs(one)))


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DepthLinearisationConfig:
    """Args:
        model: the residual MLP (its blocks are each depth).
        depths: the depths L (blocks); the smallest is the base depth L₀.
        alphas: branch exponents α (½: depth-μP, 1: CompleteP; any in [½, 1]).
        optimizers: "adam" and/or "sgd" (one step each).
        block: the block whose branch is updated and read (0-based; the notes'
            ``branches.1``).
        layer: the map of that branch that is updated (0: the first; the last map enters
            the branch linearly, so its Δ is 0 up to rounding).
        preactivation_change: the base learning rate per optimiser is set so that, at the
            base depth, the step moves that map's pre-activations by this relative RMS
            (mean over initialisations; the step is linear in η, so this is exact).
        batch: regression examples x ~ N(0, I_D), y = w·x/√D with w ~ N(0, I_D).
        inits: initialisations per optimiser, α and depth (the same keys across α).
        eps: Adam's ε at the base (times (L/L₀)^(−α) by the parametrisation).
    """

    model: ResidualMLPConfig = field(default_factory=lambda: ResidualMLPConfig(
        dim_in=64, width=128, block_layers=2))
    depths: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256)
    alphas: tuple[float, ...] = (0.5, 1.0)
    optimizers: tuple[str, ...] = OPTIMIZERS
    block: int = 1
    layer: int = 0
    preactivation_change: float = 0.5
    batch: int = 16
    inits: int = 50
    eps: float = 1e-8

    def __post_init__(self):
        check_positive_int("inits", self.inits)
        check_positive_int("batch", self.batch)
        check_positive("preactivation_change", self.preactivation_change)
        check_positive("eps", self.eps)
        if len(self.depths) < 2 or any(not isinstance(d, int) or d < 1 for d in self.depths):
            raise ConfigError("depths", self.depths, "at least two positive integers")
        if self.block < 0 or self.block >= min(self.depths):
            raise ConfigError("block", self.block,
                              f"a block index below the smallest depth ({min(self.depths)})")
        if not 0 <= self.layer < self.model.block_layers:
            raise ConfigError("layer", self.layer,
                              f"0 … {self.model.block_layers - 1} (model.block_layers)")
        for a in self.alphas:
            if not 0.5 <= a <= 1.0:
                raise ConfigError("alphas", a, "numbers in [0.5, 1]")
        for o in self.optimizers:
            if o not in OPTIMIZERS:
                raise ConfigError("optimizers", o, ", ".join(OPTIMIZERS))


def full_config() -> DepthLinearisationConfig:
    return DepthLinearisationConfig(alphas=(0.5, 0.75, 1.0))


def quick_config() -> DepthLinearisationConfig:
    return DepthLinearisationConfig(depths=(2, 4, 8, 16, 32, 64, 128), inits=16)


# -- experiment -------------------------------------------------------------------------
def experiment(config: DepthLinearisationConfig) -> list[Job]:
    return []  # one optimiser step per model: the measurement computes it


def _scheme(alpha: float, optimizer: str) -> Parametrisation:
    return Parametrisation("completep" if alpha == 1.0 else "depth_mup", optimizer=optimizer,
                           alpha=alpha)


def _one_step(config: DepthLinearisationConfig, depth: int, alpha: float, optimizer: str,
              lr, batch):
    """init key → the distance from the linearisation (and the relative pre-activation
    change) after one step that updates only the target map."""
    model_config = dataclasses.replace(config.model, blocks=depth)
    base = eqx.filter_eval_shape(ResidualMLP, dataclasses.replace(
        config.model, blocks=min(config.depths)), key=jax.random.key(0))
    shapes = eqx.filter_eval_shape(ResidualMLP, model_config, key=jax.random.key(0))
    scaling = _scheme(alpha, optimizer).scale(shapes, base)
    opt = make_optimizer(OptimConfig(name=optimizer, lr=lr, eps=config.eps), 1,
                         scaling=scaling)
    x, y = batch
    target = lambda m: m.blocks[config.block].weights[config.layer]

    def run(key):
        model = scaling.initialise(ResidualMLP(model_config, key=key))
        params, static = eqx.partition(model, eqx.is_array)
        loss = lambda p: 0.5 * jnp.mean((eqx.combine(p, static)(x) - y) ** 2)
        grads = jax.grad(loss)(params)
        only = jax.tree.map(jnp.zeros_like, grads)
        only = eqx.tree_at(target, only, target(grads))
        updates, _ = opt.update(only, opt.init(params), params)
        new = eqx.apply_updates(params, updates)
        h = model.residual_stream(x)[config.block]           # the block's input (fixed)
        branch = model.blocks[config.block]
        f = lambda w: jax.vmap(eqx.tree_at(lambda b: b.weights[config.layer], branch, w))(h)
        out = linearisation_distance(f, target(params), target(new))
        w0, w1 = target(params), target(new)
        inner = h if config.layer == 0 else None
        if inner is None:   # the map's input inside the branch: the earlier maps' output
            sub = eqx.tree_at(lambda b: b.weights, branch, branch.weights[:config.layer])
            inner = jax.nn.relu(jax.vmap(sub)(h))
        z = inner @ w0.T
        out["preactivation_change"] = jnp.linalg.norm(inner @ (w1 - w0).T) / jnp.linalg.norm(z)
        return out

    return run


def _batch(config: DepthLinearisationConfig):
    kx, kw = jax.random.split(jax.random.key(11))
    d = config.model.dim_in
    x = jax.random.normal(kx, (config.batch, d))
    return x, x @ jax.random.normal(kw, (d,)) / math.sqrt(d)


def _measure_all(config, depth, alpha, optimizer, lr, batch) -> dict[str, np.ndarray]:
    keys = jax.random.split(jax.random.key(depth), config.inits)
    run = _one_step(config, depth, alpha, optimizer, lr, batch)
    out = jax.jit(lambda ks: jax.lax.map(run, ks, batch_size=8))(keys)
    return {k: np.asarray(v) for k, v in out.items()}


def measure(config: DepthLinearisationConfig, trained) -> dict[str, pd.DataFrame]:
    del trained
    batch = _batch(config)
    base_depth = min(config.depths)
    rows, lrs = [], {}
    for optimizer in config.optimizers:
        # the base learning rate: the step is linear in η (SGD exactly; Adam's first step
        # is g/(|g| + ε)), so one unit-η step at the base depth calibrates it
        unit = _measure_all(config, base_depth, config.alphas[0], optimizer, 1.0, batch)
        lrs[optimizer] = config.preactivation_change / float(unit["preactivation_change"].mean())
        for alpha in config.alphas:
            for depth in config.depths:
                out = _measure_all(config, depth, alpha, optimizer, lrs[optimizer], batch)
                rows += [{"optimizer": optimizer, "alpha": alpha, "depth": depth, "init": i,
                          "lr": lrs[optimizer],
                          **{k: float(v[i]) for k, v in out.items()}}
                         for i in range(config.inits)]
    distances = pd.DataFrame(rows)
    distances["log2_distance"] = np.log2(distances.distance)
    summary = (distances.groupby(["optimizer", "alpha", "depth"], sort=False)
               .agg(lr=("lr", "first"), log2_distance=("log2_distance", "mean"),
                    log2_distance_std=("log2_distance", "std"),
                    relative_to_change=("relative_to_change", "median"),
                    preactivation_change=("preactivation_change", "mean"))
               .reset_index())
    summary["distance"] = 2.0 ** summary.log2_distance
    slopes = []
    for (optimizer, alpha, init), rows_ in distances.groupby(["optimizer", "alpha", "init"]):
        slope = np.polyfit(np.log2(rows_.depth), rows_.log2_distance, 1)[0]
        slopes.append({"optimizer": optimizer, "alpha": alpha, "init": init,
                       "slope": float(slope), "derived": 1.5 * (alpha - 1)})
    return {"distances": distances, "summary": summary, "slopes": pd.DataFrame(slopes)}


RECIPE = Recipe(
    name="depth-linearisation", title="Lazy versus complete feature learning over depth",
    description="One optimiser step on one block of deep residual MLPs: with 1/√L branches "
                "(depth-μP) the block's distance from its linearisation decays with depth "
                "(lazy), with 1/L branches (CompleteP) it does not (Dey et al. 2025)",
    paper=PAPER, config_type=DepthLinearisationConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, checks=CHECKS, figures=FIGURES,
    sections=SECTIONS)
