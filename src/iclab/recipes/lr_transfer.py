"""lr-transfer: the optimal Adam learning rate across width (SP against μP) and across depth
(μP without depth scaling against CompleteP) (Yang et al. 2022, Tensor Programs V; Dey et
al. 2025, CompleteP; Bordelon et al. 2024).

What is trained: a Pre-LN GPT language model on a synthetic language
(``MarkovLanguageTask``) with Adam at a constant learning rate and no warm-up (as the
nanoGPT-mup transfer runs), the same number of steps for every shape, over a grid of
learning rates, at several widths (fixed depth) and several depths (fixed width), each
under a parametrisation against one base shape. Each shape's whole grid (× seeds) trains
as one vmapped program (``train.lr_grid``): one compilation per shape, none per learning
rate.

What is measured: the held-out loss at the end for every learning rate; each shape's
optimum η* (``grid_optimum``: a parabola in log₂ η through the best grid point and its
neighbours) and the exponent p of η* ∝ size^p (``transfer_exponent``).
"""

import dataclasses
import math
from dataclasses import dataclass, field

import jax
import numpy as np
import pandas as pd

from iclab.config import ConfigError, check_positive_int
from iclab.engine import OptimConfig, TrainConfig, language_problem, parametrised
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.instruments import grid_optimum, transfer_exponent
from iclab.models import GPT, GPTConfig
from iclab.parametrisation import Parametrisation, check_sweep
from iclab.recipes.analysis.lr_transfer import plot_depth, plot_width
from iclab.tasks import MarkovLanguageTask

PAPER = ("Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen, Gao: Tensor "
         "Programs V: Tuning large neural networks via zero-shot hyperparameter transfer "
         "(arXiv 2203.03466); Dey et al.: Don't be lazy: CompleteP enables compute-efficient "
         "deep transformers (arXiv 2505.01618); Bordelon, Noci, Li, Hanin, Pehlevan: "
         "Depthwise hyperparameter transfer in residual networks (ICLR 2024).")
NOTE = ("the μP / CompleteP transfer figures as summarised in our notes (optimum fixed under "
        "μP, moving to smaller η with width under SP); the one-grid-step tolerance is the "
        "issue's, the SP exponent bound ours")

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("mup_optimum_stays_in_width", "under μP the optimal learning rate stays within "
          "one grid step across widths: the largest |log₂ η*(width) − log₂ η*(base)| in "
          "grid steps", lambda r: _spread(r, "width", "mup"), "<=", 1.0, note=NOTE),
    Claim("sp_optimum_drifts_in_width", "under SP the optimum drifts to smaller learning "
          "rates with width: the exponent p of η* ∝ width^p",
          lambda r: _exponent(r, "width", "sp"), "<", -0.5, note=NOTE),
    Claim("completep_optimum_stays_in_depth", "under CompleteP the optimum stays within one "
          "grid step across depths: the largest |log₂ η*(depth) − log₂ η*(base)| in grid "
          "steps", lambda r: _spread(r, "depth", "completep"), "<=", 1.0, note=NOTE),
    Claim("unscaled_optimum_drifts_in_depth", "without depth scaling (μP over width only) "
          "the optimum moves with depth by more than one grid step: the largest |log₂ "
          "η*(depth) − log₂ η*(base)| in grid steps",
          lambda r: _spread(r, "depth", "mup"), ">", 1.0, note=NOTE),
]
FIGURES = [
    Figure("width", "Held-out loss at the end against the learning rate (log₂), one curve "
           "per width; SP (left) and μP (right); dots: each width's fitted optimum.",
           plot_width),
    Figure("depth", "The same over depth: μP without depth scaling (left) and CompleteP "
           "(right).", plot_depth),
]
SECTIONS = [
    Section("Optimal learning rate per shape (fitted; 'inside': not at the grid's edge) and "
            "the transfer exponent", table="optima"),
]


def _optima(r, axis: str, scheme: str) -> pd.DataFrame:
    o = r["optima"]
    return o[(o.axis == axis) & (o.scheme == scheme)].sort_values("size")


def _spread(r, axis: str, scheme: str) -> float:
    o = _optima(r, axis, scheme)
    base = r.config.base_width if axis == "width" else r.config.base_layers
    log = np.log2(o.lr_star.to_numpy(float))
    at_base = log[o["size"].to_numpy() == base][0]
    return float(np.max(np.abs(log - at_base)) / _grid_step(r.config))


def _exponent(r, axis: str, scheme: str) -> float:
    o = _optima(r, axis, scheme)
    return transfer_exponent(o["size"], o.lr_star)


def _grid_step(config) -> float:
    """One grid step in log₂ η."""
    return float(np.diff(np.log2(config.lrs)).mean())


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LrTransferConfig:
    """Args:
        task: the synthetic language.
        model: the GPT (width and layers are replaced by each run's).
        lrs: the learning-rate grid (increasing, log-spaced).
        widths: the widths of the width sweep (at ``base_layers`` blocks).
        depths: the depths of the depth sweep (at ``depth_width``).
        base_width, base_layers: the base shape of every parametrisation.
        depth_width: the width of the depth sweep.
        width_schemes, depth_schemes: the parametrisations of each sweep.
        optim: Adam at a constant learning rate (its lr is replaced by the grid's).
        train: steps (the same horizon for every shape), batch and seeds per learning rate.
        eval_sequences: held-out sequences for the final loss.
    """

    task: MarkovLanguageTask = field(default_factory=lambda: MarkovLanguageTask(
        vocab=32, length=32, branching=3, concentration=0.5))
    model: GPTConfig = field(default_factory=lambda: GPTConfig(width=64, layers=2, heads=4,
                                                               max_len=32))
    lrs: tuple[float, ...] = tuple(2.0 ** -k for k in range(14, 3, -1))
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    depths: tuple[int, ...] = (2, 4, 8, 16)
    base_width: int = 32
    base_layers: int = 2
    depth_width: int = 64
    width_schemes: tuple[str, ...] = ("sp", "mup")
    depth_schemes: tuple[str, ...] = ("mup", "depth_mup", "completep")
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adam", lr=1e-3, b1=0.9, b2=0.95))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=1000, batch_size=32, eval_every=250, seeds=3))
    eval_sequences: int = 512

    def __post_init__(self):
        check_positive_int("eval_sequences", self.eval_sequences)
        if len(self.lrs) < 3 or any(not (lr > 0) for lr in self.lrs) or any(
                b <= a for a, b in zip(self.lrs, self.lrs[1:], strict=False)):
            raise ConfigError("lrs", self.lrs, "at least three increasing positive numbers")
        check_sweep(self.widths, self.depths, self.base_width, self.base_layers,
                    self.depth_width, self.model.heads,
                    {"width_schemes": self.width_schemes,
                     "depth_schemes": self.depth_schemes})
        if self.model.max_len < self.task.length:
            raise ConfigError("model.max_len", self.model.max_len,
                              f"at least task.length ({self.task.length})")
        if self.optim.name == "sgd" or self.optim.schedule != "constant":
            raise ConfigError("optim.schedule" if self.optim.name != "sgd" else "optim.name",
                              self.optim.schedule if self.optim.name != "sgd"
                              else self.optim.name, "adam or adamw at a constant learning "
                              "rate (the transfer runs have no warm-up or decay)")


def full_config() -> LrTransferConfig:
    return LrTransferConfig()


def quick_config() -> LrTransferConfig:
    return LrTransferConfig(
        lrs=tuple(2.0 ** -k for k in range(12, 3, -1)), widths=(32, 64, 128),
        depths=(2, 4, 8), depth_width=32, depth_schemes=("mup", "completep"),
        train=TrainConfig(steps=200, batch_size=16, eval_every=100, seeds=1),
        eval_sequences=256)


# -- experiment -------------------------------------------------------------------------
def _gpt(config: LrTransferConfig, width: int, layers: int):
    model = dataclasses.replace(config.model, dim_in=config.task.vocab,
                                dim_out=config.task.vocab, width=width, layers=layers)
    return lambda key: GPT(model, key=key)


def experiment(config: LrTransferConfig) -> list[Job]:
    eval_batch = config.task.sample_batch(jax.random.key(99), config.eval_sequences)
    train = dataclasses.replace(config.train, lr_grid=tuple(config.lrs))
    base = _gpt(config, config.base_width, config.base_layers)
    shapes = [("width", s, w, config.base_layers) for s in config.width_schemes
              for w in config.widths]
    shapes += [("depth", s, config.depth_width, d) for s in config.depth_schemes
               for d in config.depths]
    jobs = []
    for axis, scheme, width, layers in shapes:
        problem = parametrised(language_problem(config.task, _gpt(config, width, layers)),
                               Parametrisation(scheme), base)
        size = width if axis == "width" else layers
        jobs.append(Job(f"{axis}-{scheme}-{size}", problem, config.optim, train,
                        eval_data=eval_batch, label=f"{scheme} {axis} {size}",
                        cost=width * width * layers,
                        info={"axis": axis, "scheme": scheme, "size": size}))
    return jobs


# -- measurement ------------------------------------------------------------------------
def measure(config: LrTransferConfig, trained) -> dict[str, pd.DataFrame]:
    train = dataclasses.replace(config.train, lr_grid=tuple(config.lrs))
    rows = []
    for job in trained.values():
        info = job.info
        h = job.history
        final = h[(h.metric == "loss") & (h.step == h.step.max())]
        for seed_column, loss in zip(final.seed, final.value, strict=True):
            k = int(seed_column) - train.seed
            rows.append({**info, "lr": train.member_lr(k), "seed": train.member_seed(k),
                         "loss": float(loss)})
    losses = pd.DataFrame(rows)
    optima = []
    for (axis, scheme, size), group in losses.groupby(["axis", "scheme", "size"],
                                                      sort=False):
        mean = group.groupby("lr").loss.mean().sort_index()
        lr_star, inside = grid_optimum(mean.index, mean.to_numpy())
        optima.append({"axis": axis, "scheme": scheme, "size": size, "lr_star": lr_star,
                       "log2_lr_star": math.log2(lr_star) if lr_star > 0 else float("nan"),
                       "inside": inside, "best_loss": float(np.nanmin(mean.to_numpy()))})
    optima = pd.DataFrame(optima)
    exponents = [{"axis": a, "scheme": s, "exponent": transfer_exponent(g["size"], g.lr_star)}
                 for (a, s), g in optima.groupby(["axis", "scheme"], sort=False)]
    optima = optima.merge(pd.DataFrame(exponents), on=["axis", "scheme"])
    return {"losses": losses, "optima": optima}


RECIPE = Recipe(
    name="lr-transfer", title="Learning-rate transfer over width and depth",
    description="The optimal Adam learning rate over width (SP drifts, μP stays) and over "
                "depth (CompleteP stays); each shape's grid trains as one vmapped program "
                "(Yang et al. 2022; Dey et al. 2025)",
    paper=PAPER, config_type=LrTransferConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, figures=FIGURES,
    sections=SECTIONS)
