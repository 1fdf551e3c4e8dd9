"""super-consistency: the sharpness along training at several widths under μP and under
the NTK parametrisation, in units of the base learning rate, and the empirical NTK's
distance from initialisation (Noci, Meterez, Hofmann, Orvieto, "Super consistency of
neural network landscapes and learning rate transfer", NeurIPS 2024).

What is trained: a Pre-LN GPT language model (``iclab.models.GPT``) on a synthetic
language (``MarkovLanguageTask``), by SGD at one base learning rate, at several widths,
under μP and under NTK (``iclab.parametrisation``, SGD's rules, one base shape).

What is measured, every ``train.probes.every`` steps on one fixed batch: the top
eigenvalue of D^{1/2} H D^{1/2} with D the per-array learning-rate multipliers
(``probe/scaled_sharpness``; its edge of stability is 2/η), and the distance
‖Θ_t − Θ₀‖_F/‖Θ₀‖_F of the empirical NTK Θ = J D Jᵀ from its value at initialisation.
"""

import dataclasses
from dataclasses import dataclass, field

import jax
import numpy as np
import pandas as pd

from iclab.config import ConfigError, check_choice
from iclab.engine import OptimConfig, ProbeConfig, TrainConfig, language_problem, parametrised
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.instruments import transfer_exponent
from iclab.models import GPT, GPTConfig
from iclab.parametrisation import SCHEMES, Parametrisation
from iclab.recipes.analysis.super_consistency import plot_kernel, plot_sharpness
from iclab.tasks import MarkovLanguageTask

PAPER = ("Noci, Meterez, Hofmann, Orvieto: Super consistency of neural network landscapes "
         "and learning rate transfer (NeurIPS 2024); Yang & Hu: Tensor Programs IV (ICML "
         "2021) for μP and NTK.")
NOTE = ("the paper's abstract and reference code as summarised in our notes (μP curves "
        "overlap and approach 2/η; NTK curves differ across widths; NTK kernels freeze as "
        "width grows); the thresholds are ours")

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("mup_sharpness_consistent", "under μP the sharpness curves overlap across widths: "
          "the mean over the probes of the second half of training of max/min across widths "
          "of the scaled sharpness", lambda r: _spread(r, "mup", "mean"), "<=", 1.5,
          note=NOTE),
    Claim("mup_approaches_edge", "under μP the sharpness rises towards the edge of "
          "stability: the widest run's largest scaled sharpness × η / 2",
          lambda r: _edge(r, "mup"), ">=", 0.5, note=NOTE),
    Claim("ntk_sharpness_separates", "under NTK the sharpness curves separate with width: "
          "max/min across widths of the scaled sharpness at the end",
          lambda r: _spread(r, "ntk", "end"), ">=", 1.5, note=NOTE),
    Claim("ntk_kernel_freezes_with_width", "under NTK the empirical NTK moves less from "
          "initialisation as width grows: the exponent of its final distance against width",
          lambda r: _kernel_exponent(r, "ntk"), "<", -0.2, note=NOTE),
    Claim("mup_kernel_keeps_moving", "under μP the kernel keeps moving at every width: "
          "the exponent of its final distance against width",
          lambda r: _kernel_exponent(r, "mup"), ">=", -0.2, note=NOTE),
]
FIGURES = [
    Figure("sharpness", "Scaled sharpness λ_max(D^{1/2} H D^{1/2}) along training, one curve "
           "per width, μP (left) and NTK (right); dashed: the edge of stability 2/η.",
           plot_sharpness),
    Figure("kernel", "Distance of the empirical NTK (J D Jᵀ) from initialisation along "
           "training, per width and parametrisation.", plot_kernel),
]
SECTIONS = [
    Section("Per parametrisation and width: scaled sharpness (largest, mean over the "
            "second half, at the end) and the kernel's final distance", table="summary"),
]


def _rows(r, scheme: str) -> pd.DataFrame:
    s = r["summary"]
    return s[s.scheme == scheme].sort_values("width")


def _spread(r, scheme: str, which: str) -> float:
    curves = r["curves"]
    c = curves[curves.scheme == scheme]
    if which == "end":
        c = c[c.step == c.step.max()]
    else:
        c = c[c.step >= c.step.max() / 2]
    by_step = c.groupby(["step", "width"]).sharpness.mean().unstack()
    ratio = by_step.max(axis=1) / by_step.min(axis=1)
    return float(ratio.mean())


def _edge(r, scheme: str) -> float:
    rows = _rows(r, scheme)
    return float(rows.sharpness_max.iloc[-1] * r.config.optim.lr / 2)


def _kernel_exponent(r, scheme: str) -> float:
    rows = _rows(r, scheme)
    return transfer_exponent(rows.width, rows.kernel_distance_end)


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SuperConsistencyConfig:
    """Args:
        task: the synthetic language (its vocabulary is the model's input and output).
        model: the GPT (its width is each run's; ``max_len`` at least the task's length).
        widths: the widths (the first is the base width).
        schemes: the parametrisations (μP and NTK, with SGD's rules).
        optim: SGD at the base learning rate η (0.3: of a pilot at the base width over
            0.1 … 10, 600 steps, 0.1 and 0.3 were best and 3 diverged; the larger).
        train: steps, batch, seeds and the probes (``sharpness`` power iterations and
            ``ntk`` prompts on the probe batch).
    """

    task: MarkovLanguageTask = field(default_factory=lambda: MarkovLanguageTask(
        vocab=16, length=16, branching=3, concentration=0.5))
    model: GPTConfig = field(default_factory=lambda: GPTConfig(width=32, layers=2, heads=4,
                                                               max_len=16))
    widths: tuple[int, ...] = (32, 128, 512)
    schemes: tuple[str, ...] = ("mup", "ntk")
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="sgd", lr=0.3))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2000, batch_size=64, eval_every=50, seeds=3, probes=ProbeConfig(
            every=50, batch_size=64, norms=False, entropy=False, sharpness=20, ntk=2)))

    def __post_init__(self):
        if len(self.widths) < 2 or any(not isinstance(w, int) or w < 1 or w % self.model.heads
                                       for w in self.widths):
            raise ConfigError("widths", self.widths, "at least two positive multiples of "
                              f"model.heads ({self.model.heads}); the first is the base")
        for scheme in self.schemes:
            check_choice("schemes", scheme, SCHEMES)
        if self.optim.name != "sgd":
            raise ConfigError("optim.name", self.optim.name, "sgd (the sharpness is read "
                              "against gradient descent's edge of stability 2/η)")
        probes = self.train.probes
        if not probes.every or not probes.sharpness or not probes.ntk:
            raise ConfigError("train.probes.every", probes.every, "a multiple of "
                              "train.eval_every with train.probes.sharpness > 0 and "
                              "train.probes.ntk > 0 (the curves are probes)")
        if self.model.max_len < self.task.length:
            raise ConfigError("model.max_len", self.model.max_len,
                              f"at least task.length ({self.task.length})")


def full_config() -> SuperConsistencyConfig:
    return SuperConsistencyConfig()


def quick_config() -> SuperConsistencyConfig:
    return SuperConsistencyConfig(widths=(32, 64, 128), train=TrainConfig(
        steps=600, batch_size=64, eval_every=50, seeds=1, probes=ProbeConfig(
            every=50, batch_size=64, norms=False, entropy=False, sharpness=20, ntk=2)))


# -- experiment -------------------------------------------------------------------------
def _gpt(config: SuperConsistencyConfig, width: int):
    model = dataclasses.replace(config.model, width=width, dim_in=config.task.vocab,
                                dim_out=config.task.vocab)
    return lambda key: GPT(model, key=key)


def experiment(config: SuperConsistencyConfig) -> list[Job]:
    eval_batch = config.task.sample_batch(jax.random.key(99), 256)
    base = _gpt(config, config.widths[0])
    jobs = []
    for scheme in config.schemes:
        for width in config.widths:
            problem = parametrised(language_problem(config.task, _gpt(config, width),
                                                    floor=config.task.entropy_rate),
                                   Parametrisation(scheme, "sgd"), base)
            jobs.append(Job(f"{scheme}-{width}", problem, config.optim, config.train,
                            eval_data=eval_batch, label=f"{scheme} width {width}",
                            cost=width * width, info={"scheme": scheme, "width": width}))
    return jobs


# -- measurement ------------------------------------------------------------------------
def measure(config: SuperConsistencyConfig, trained) -> dict[str, pd.DataFrame]:
    curves, summary = [], []
    for job in trained.values():
        scheme, width = job.info["scheme"], job.info["width"]
        sharp = job.curves("probe/scaled_sharpness")
        kernel = job.curves("probe/ntk/distance")
        loss = job.curves("excess_loss")
        for seed in sharp.columns:
            for step in sharp.index:
                curves.append({"scheme": scheme, "width": width, "seed": seed,
                               "step": int(step), "sharpness": float(sharp.at[step, seed]),
                               "kernel_distance": float(kernel.at[step, seed]),
                               "excess_loss": float(loss.at[step, seed])
                               if step in loss.index else float("nan")})
        half = sharp[sharp.index >= sharp.index.max() / 2]
        summary.append({"scheme": scheme, "width": width,
                        "sharpness_max": float(np.nanmax(sharp.to_numpy())),
                        "sharpness_late": float(np.nanmean(half.to_numpy())),
                        "sharpness_end": float(np.nanmean(sharp.iloc[-1].to_numpy())),
                        "kernel_distance_end": float(np.nanmean(kernel.iloc[-1].to_numpy())),
                        "excess_loss_end": float(np.nanmean(loss.iloc[-1].to_numpy())),
                        "edge": 2 / config.optim.lr})
    return {"curves": pd.DataFrame(curves), "summary": pd.DataFrame(summary)}


RECIPE = Recipe(
    name="super-consistency", title="Super consistency of the sharpness across widths",
    description="The sharpness along training in units of the base learning rate: under μP "
                "the widths' curves overlap and rise towards 2/η, under NTK they separate "
                "and the kernel freezes as width grows (Noci et al. 2024)",
    paper=PAPER, config_type=SuperConsistencyConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, figures=FIGURES,
    sections=SECTIONS)
