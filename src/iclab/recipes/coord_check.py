"""coord-check: coordinate checks over width (SP against μP) and over depth (μP without
depth scaling against depth-μP and CompleteP) (Yang et al. 2022, Tensor Programs V;
Yang et al. 2024, Tensor Programs VI; Bordelon et al. 2024; Dey et al. 2025).

What is trained: a Pre-LN GPT language model (causal softmax attention, GELU MLPs) on a
synthetic language (``MarkovLanguageTask``), for a few Adam steps on one fixed batch
(``mup``'s ``fix_data``), at several widths (fixed depth) and at several depths (fixed
width), each under a parametrisation (``iclab.parametrisation``) against one base shape.

What is measured: the coordinate check, mean |x| of the activations at every site (the
residual stream after the read-in and after every block, and the output logits) at
initialisation and after each step, on the same batch; per site and step, the slope of
log₂(size) against log₂(width) (or log₂(depth)); 0 is flat, 1 doubles with each doubling.
For depth, the site read is the last residual stream (after the last block).
"""

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

from iclab.config import ConfigError
from iclab.engine import (
    OptimConfig,
    TrainConfig,
    coordinate_frame,
    coordinate_setup,
    language_problem,
    parametrised,
)
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.instruments import coordinate_slopes
from iclab.models import GPT, GPTConfig
from iclab.parametrisation import Parametrisation, check_sweep
from iclab.recipes.analysis.coord_check import plot_depth, plot_width
from iclab.tasks import MarkovLanguageTask

PAPER = ("Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen, Gao: Tensor "
         "Programs V: Tuning large neural networks via zero-shot hyperparameter transfer "
         "(arXiv 2203.03466); Yang, Yu, Zhu, Hayou: Tensor Programs VI: Feature learning in "
         "infinite-depth neural networks (ICLR 2024); Dey et al.: Don't be lazy: CompleteP "
         "enables compute-efficient deep transformers (arXiv 2505.01618).")
FLAT = 0.25
WIDTH_NOTE = ("the mup coordinate-check criterion (curves flat in width at every step t ≥ 1; "
              "the output may shrink at initialisation only), as summarised in our notes; "
              "the tolerance is ours")
DEPTH_NOTE = ("the nanoGPT-mup completep depth coordinate check (last-layer |h| flat in depth "
              "with 1/√L or 1/L branches, growing without), as summarised in our notes; the "
              "tolerance is ours")

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("mup_flat_in_width", "under μP every site's coordinate size is flat in width "
          "after every step: the largest |slope| of log₂ size against log₂ width over the "
          "residual-stream sites and the output, steps 1…k",
          lambda r: _largest(r, "width", "mup", first_step=1), "<=", FLAT, note=WIDTH_NOTE),
    Claim("sp_adam_grows_with_width", "under SP with Adam the hidden coordinates grow with "
          "width after training starts: the mean slope over the blocks' sites at the last "
          "step", lambda r: _blocks_last(r), ">", 0.5, note=WIDTH_NOTE),
    Claim("depth_mup_flat_in_depth", "with 1/√L branches (depth-μP) the last residual "
          "stream's size is flat in depth: its largest |slope| against log₂ depth over "
          "steps 0…k", lambda r: _largest(r, "depth", "depth_mup", site="last"), "<=", FLAT,
          note=DEPTH_NOTE),
    Claim("completep_flat_in_depth", "with 1/L branches (CompleteP) the last residual "
          "stream's size is flat in depth: its largest |slope| over steps 0…k",
          lambda r: _largest(r, "depth", "completep", site="last"), "<=", FLAT,
          note=DEPTH_NOTE),
    Claim("unscaled_grows_with_depth", "without branch scaling (μP over width only) the "
          "last residual stream grows with depth: its slope against log₂ depth at the last "
          "step", lambda r: _slope(r, "depth", "mup", "last", "last"), ">", FLAT,
          note=DEPTH_NOTE),
]
CHECKS = [
    Claim("schemes_agree_at_the_base", "at the base shape every scheme is SP: the largest "
          "difference between the coordinate sizes of the runs at the base width (SP and "
          "μP) and at the base depth (all depth schemes)", lambda r: _base_gap(r), "<=",
          1e-6),
]
FIGURES = [
    Figure("width", "Coordinate check over width: mean |x| per site against width (log₂), "
           "at initialisation, after one step and at the last step; SP (top) and μP "
           "(bottom). Mean over seeds.", plot_width),
    Figure("depth", "Coordinate check over depth: the last residual stream's mean |x| "
           "against depth (log₂) at every step, without depth scaling, with 1/√L and with "
           "1/L branches.", plot_depth),
]
SECTIONS = [
    Section("Slopes of log₂ size against log₂ width (or depth), per site and step",
            table="slopes"),
]


def _slopes(r, axis: str, scheme: str) -> pd.DataFrame:
    s = r["slopes"]
    return s[(s.axis == axis) & (s.scheme == scheme)]


def _largest(r, axis: str, scheme: str, first_step: int = 0, site: str | None = None):
    s = _slopes(r, axis, scheme)
    s = s[(s.step >= first_step) & ~s.site.str.startswith("delta_")]
    if site is not None:
        s = s[s.site == site]
    return float(s.slope.abs().max())


def _slope(r, axis: str, scheme: str, site: str, step: str):
    s = _slopes(r, axis, scheme)
    s = s[s.site == site]
    return float(s[s.step == s.step.max()].slope.iloc[0])


def _blocks_last(r):
    s = _slopes(r, "width", "sp")
    s = s[(s.step == s.step.max()) & s.site.str.match(r"block\d+$")]
    return float(s.slope.mean())


def _base_gap(r):
    c = r["coords"]
    gaps = []
    for axis, size in (("width", r.config.base_width), ("depth", r.config.base_layers)):
        rows = c[(c.axis == axis) & (c["size"] == size)]
        if axis == "depth":
            rows = rows[~rows.site.str.endswith("last")]
        table = rows.pivot_table(index=["seed", "step", "site"], columns="scheme",
                                 values="value")
        gaps.append(float((table.max(axis=1) - table.min(axis=1)).max()))
    return max(gaps)


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CoordCheckConfig:
    """Args:
        task: the synthetic language (its vocabulary is the model's input and output).
        model: the GPT (width and layers are replaced by each run's).
        widths: the widths of the width check (at ``base_layers`` blocks).
        depths: the depths of the depth check (at ``depth_width``).
        base_width, base_layers: the base shape of every parametrisation.
        depth_width: the width of the depth check.
        width_schemes, depth_schemes: the parametrisations of each check.
        optim: Adam for the width check (its lr is the base learning rate).
        depth_lr: the base learning rate of the depth check.
        train: optimiser steps after initialisation (k), seeds per run and the sequences
            in the fixed batch (its evaluation interval and probes are the check's own:
            every step).
    """

    task: MarkovLanguageTask = field(default_factory=lambda: MarkovLanguageTask(
        vocab=32, length=32, branching=3, concentration=0.5))
    model: GPTConfig = field(default_factory=lambda: GPTConfig(width=64, layers=2, heads=4,
                                                               max_len=32))
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    depths: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    base_width: int = 64
    base_layers: int = 2
    depth_width: int = 128
    width_schemes: tuple[str, ...] = ("sp", "mup")
    depth_schemes: tuple[str, ...] = ("mup", "depth_mup", "completep")
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adam", lr=1e-2, b1=0.9, b2=0.95))
    depth_lr: float = 1e-3
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=10, batch_size=8, eval_every=1, seeds=3))

    def __post_init__(self):
        check_sweep(self.widths, self.depths, self.base_width, self.base_layers,
                    self.depth_width, self.model.heads,
                    {"width_schemes": self.width_schemes,
                     "depth_schemes": self.depth_schemes})
        if self.model.max_len < self.task.length:
            raise ConfigError("model.max_len", self.model.max_len,
                              f"at least task.length ({self.task.length})")
        if self.optim.name == "sgd":
            raise ConfigError("optim.name", self.optim.name, "adam or adamw (the check is "
                              "of Adam's rules)")


def full_config() -> CoordCheckConfig:
    return CoordCheckConfig()


def quick_config() -> CoordCheckConfig:
    return CoordCheckConfig(widths=(32, 64, 128, 256, 512), depths=(2, 4, 8, 16),
                            base_width=32, depth_width=64, train=TrainConfig(
                                steps=5, batch_size=8, eval_every=1, seeds=2))


# -- experiment -------------------------------------------------------------------------
def _gpt(config: CoordCheckConfig, width: int, layers: int):
    model = dataclasses.replace(config.model, dim_in=config.task.vocab,
                                dim_out=config.task.vocab, width=width, layers=layers)
    return lambda key: GPT(model, key=key)


def _job(config: CoordCheckConfig, axis: str, scheme: str, width: int, layers: int) -> Job:
    base = _gpt(config, config.base_width, config.base_layers)
    problem = parametrised(language_problem(config.task, _gpt(config, width, layers)),
                           Parametrisation(scheme), base)
    problem, train, batch = coordinate_setup(problem, config.train.steps, config.train.seeds,
                                             config.train.batch_size, seed=config.train.seed)
    size = width if axis == "width" else layers
    optim = config.optim if axis == "width" else dataclasses.replace(config.optim,
                                                                     lr=config.depth_lr)
    return Job(f"{axis}-{scheme}-{size}", problem, optim, train, eval_data=batch,
               label=f"{scheme} {axis} {size}", cost=width * width * layers,
               info={"axis": axis, "scheme": scheme, "size": size})


def experiment(config: CoordCheckConfig) -> list[Job]:
    jobs = [_job(config, "width", s, w, config.base_layers)
            for s in config.width_schemes for w in config.widths]
    jobs += [_job(config, "depth", s, config.depth_width, d)
             for s in config.depth_schemes for d in config.depths]
    return jobs


# -- measurement ------------------------------------------------------------------------
def measure(config: CoordCheckConfig, trained) -> dict[str, pd.DataFrame]:
    frames = []
    for job in trained.values():
        info = job.info
        frame = coordinate_frame(job.history, axis=info["axis"], scheme=info["scheme"],
                                 size=info["size"])
        if info["axis"] == "depth":  # the last residual stream, whatever the depth
            last = [frame[frame.site == f"{prefix}block{info['size']}"].assign(
                site=f"{prefix}last") for prefix in ("", "delta_")]
            frame = pd.concat([frame, *last], ignore_index=True)
        frames.append(frame)
    coords = pd.concat(frames, ignore_index=True)
    slopes = []
    for (axis, scheme), group in coords.groupby(["axis", "scheme"], sort=False):
        if axis == "depth":  # only the sites every depth has
            group = group[group.site.isin(["embedding", "last", "output", "delta_last",
                                           "delta_output"])]
        s = coordinate_slopes(group, size="size")
        s.insert(0, "scheme", scheme)
        s.insert(0, "axis", axis)
        slopes.append(s)
    return {"coords": coords, "slopes": pd.concat(slopes, ignore_index=True)}


RECIPE = Recipe(
    name="coord-check", title="Coordinate checks over width and depth",
    description="Activation sizes per site after a few Adam steps: flat in width under μP "
                "and growing under SP; flat in depth with 1/√L or 1/L branches and growing "
                "without (Yang et al. 2022; Yang et al. 2024; Dey et al. 2025)",
    paper=PAPER, config_type=CoordCheckConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, checks=CHECKS, figures=FIGURES,
    sections=SECTIONS)
