"""wsd: warmup–stable–decay against cosine at an equal budget, with sharpness and the
fixed-batch loss (Belloni, Orvieto, Noci, "Universal dynamics of warmup stable decay",
2026; Sandler et al. 2023 for the fixed-batch view).

What is trained: a small causal transformer language model on a synthetic language (a
seeded sparse Markov chain, ``MarkovLanguageTask``, whose entropy rate is the least
possible loss), with Adam, under two learning-rate schedules of the same peak, warm-up and
number of steps: warmup–stable–decay (constant after the warm-up, then a linear decay to 0
over the last ``decay_fraction`` of the steps) and warm-up + cosine decay to 0.

What is measured, along training: the held-out loss above the entropy rate (the excess
loss), the loss on one fixed batch (``probe/loss``, Sandler et al.'s fixed-batch
trajectory), the Hessian's top eigenvalue and Adam's preconditioned sharpness
λ_max(P^{-1/2} H P^{-1/2}) on that batch (``train.probes``), against the edge-of-stability
level 38/η of Adam with β₁ = 0.9 at the step's learning rate η.
"""

import dataclasses
from dataclasses import dataclass, field

import jax
import pandas as pd

from iclab.config import ConfigError, check_positive_int
from iclab.engine import OptimConfig, ProbeConfig, TrainConfig, language_problem
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes.analysis.wsd import plot_fixed_batch, plot_losses, plot_sharpness
from iclab.tasks import MarkovLanguageTask

PAPER = ("Belloni, Orvieto, Noci: Universal dynamics of warmup stable decay: understanding "
         "WSD beyond Transformers (arXiv 2601.09000); Sandler, Zhmoginov, Vladymyrov, "
         "Miller: Training trajectories, mini-batch losses and the curious role of the "
         "learning rate (arXiv 2301.02312).")
SCHEDULES = ("wsd", "cosine")
NOTE = ("expected from the WSD literature as summarised in our notes, not a number from the "
        "paper")

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("wsd_above_in_stable_phase", "during the stable phase WSD's held-out loss is "
          "above cosine's: excess loss of WSD minus cosine at the start of WSD's decay "
          "(mean over seeds)", lambda r: _at(r, "decay_start", "wsd") - _at(
              r, "decay_start", "cosine"), ">", 0.0, note=NOTE),
    Claim("wsd_drops_in_decay", "WSD's loss drops sharply when its learning rate decays: "
          "its drop in excess loss over the decay phase over cosine's drop over the same "
          "steps (mean over seeds)", lambda r: _drop(r, "wsd") / _drop(r, "cosine"), ">",
          1.0, note=NOTE),
    Claim("wsd_matches_cosine", "at the end WSD matches or beats cosine: final excess loss "
          "of WSD over cosine's (mean over seeds)",
          lambda r: _at(r, "end", "wsd") / _at(r, "end", "cosine"), "<=", 1.05, note=NOTE),
    Claim("sharpness_rises_in_decay", "Adam's preconditioned sharpness rises as the "
          "learning rate decays: WSD's at the end over at the start of its decay (mean "
          "over seeds)", lambda r: _sharpness(r, "end") / _sharpness(r, "decay_start"), ">",
          1.0, note=NOTE),
]

FIGURES = [
    Figure("losses", "Held-out excess loss (loss − entropy rate; log) of WSD and cosine "
           "(seeds thin, mean thick), with each schedule's learning rate (right axis, "
           "dashed); dotted: WSD's decay start.", plot_losses),
    Figure("sharpness", "Adam's preconditioned sharpness × η / 38 (1 = the edge of "
           "stability) and the Hessian's top eigenvalue, per schedule.", plot_sharpness),
    Figure("fixed_batch", "The fixed-batch view (Sandler et al.): the loss on one fixed "
           "batch along training, per schedule, with the held-out loss (dashed).",
           plot_fixed_batch),
]
SECTIONS = [
    Section("Per schedule and seed: excess loss and sharpness at WSD's decay start and at "
            "the end", table="summary"),
]


def _at(r, when: str, schedule: str) -> float:
    table = r["summary"]
    return float(table[table.schedule == schedule][f"excess_{when}"].mean())


def _drop(r, schedule: str) -> float:
    return _at(r, "decay_start", schedule) - _at(r, "end", schedule)


def _sharpness(r, when: str) -> float:
    table = r["summary"]
    return float(table[table.schedule == "wsd"][f"preconditioned_{when}"].mean())


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class WsdConfig:
    """Args:
        task: the synthetic language.
        model: the causal transformer (resolved to the task's vocabulary; ``max_len`` at
            least the task's length).
        optim: Adam: peak learning rate, warm-up steps, WSD's ``decay_fraction`` and
            ``cooldown`` (its schedule is replaced by each of the two).
        train: steps (the equal budget), batch, seeds and the probes (sharpness on the
            fixed batch).
        eval_sequences: held-out sequences for the excess loss.
    """

    task: MarkovLanguageTask = field(default_factory=lambda: MarkovLanguageTask(
        vocab=32, length=32, branching=3, concentration=0.5))
    model: CausalTransformerConfig = field(default_factory=lambda: CausalTransformerConfig(
        layers=("softmax", "softmax"), heads=2, key_size=16, dim=32, readout="linear",
        mlp=True, layer_norm=True, init_std=0.02, max_len=32))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adam", lr=3e-3, b1=0.9, b2=0.98, warmup_steps=300, decay_fraction=0.2,
        cooldown="linear"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=6000, batch_size=64, eval_every=100, seeds=3, probes=ProbeConfig(
            every=100, batch_size=64, norms=False, entropy=False, sharpness=20,
            preconditioned=True)))
    eval_sequences: int = 512

    def __post_init__(self):
        check_positive_int("eval_sequences", self.eval_sequences)
        if not self.train.probes.every or not self.train.probes.sharpness \
                or not self.train.probes.preconditioned:
            raise ConfigError("train.probes.every", self.train.probes.every,
                              "a multiple of train.eval_every with train.probes.sharpness > "
                              "0 and train.probes.preconditioned=true (the sharpness "
                              "curves are probes)")
        if self.optim.name == "sgd":
            raise ConfigError("optim.name", self.optim.name, "adam or adamw (the "
                              "preconditioned sharpness reads Adam's state)")
        if self.model.max_len and self.model.max_len < self.task.length:
            raise ConfigError("model.max_len", self.model.max_len,
                              f"0 or at least task.length ({self.task.length})")
        start = decay_start(self)
        if not self.optim.warmup_steps < start:
            raise ConfigError("optim.warmup_steps", self.optim.warmup_steps,
                              f"fewer than the steps before WSD's decay ({start})")


def full_config() -> WsdConfig:
    return WsdConfig()


def quick_config() -> WsdConfig:
    return WsdConfig(train=TrainConfig(
        steps=3000, batch_size=64, eval_every=100, seeds=2, probes=ProbeConfig(
            every=100, batch_size=64, norms=False, entropy=False, sharpness=20,
            preconditioned=True)), optim=OptimConfig(
        name="adam", lr=3e-3, b1=0.9, b2=0.98, warmup_steps=150, decay_fraction=0.2,
        cooldown="linear"))


def decay_start(config: WsdConfig) -> int:
    """The step at which WSD's decay begins (``wsd_schedule``'s S = T − ⌊f T⌋)."""
    return config.train.steps - int(config.optim.decay_fraction * config.train.steps)


# -- experiment -------------------------------------------------------------------------
def experiment(config: WsdConfig) -> list[Job]:
    model = config.model.resolve(config.task.vocab, config.task.vocab)
    problem = language_problem(config.task, lambda key: CausalTransformer(model, key=key),
                               floor=config.task.entropy_rate)
    eval_batch = config.task.sample_batch(jax.random.key(99), config.eval_sequences)
    schedules = {"wsd": "wsd", "cosine": "warmup_cosine"}
    return [Job(name, problem, dataclasses.replace(config.optim, schedule=schedule),
                config.train, eval_data=eval_batch, label=f"{name} schedule")
            for name, schedule in schedules.items()]


# -- measurement ------------------------------------------------------------------------
def _value_at(curves: pd.DataFrame, step: int, seed: int) -> float:
    """The curve's value at the last logged step ≤ ``step``."""
    column = curves[seed]
    return float(column[column.index <= step].iloc[-1])


def measure(config: WsdConfig, trained) -> dict[str, pd.DataFrame]:
    start, end = decay_start(config), config.train.steps
    rows = []
    for name in SCHEDULES:
        job = trained[name]
        excess, sharp = job.curves("excess_loss"), job.curves("probe/preconditioned_sharpness")
        hessian, fixed = job.curves("probe/sharpness"), job.curves("probe/loss")
        for seed in job.seeds:
            rows.append({"schedule": name, "seed": seed,
                         "excess_decay_start": _value_at(excess, start, seed),
                         "excess_end": _value_at(excess, end, seed),
                         "preconditioned_decay_start": _value_at(sharp, start, seed),
                         "preconditioned_end": _value_at(sharp, end, seed),
                         "hessian_decay_start": _value_at(hessian, start, seed),
                         "hessian_end": _value_at(hessian, end, seed),
                         "fixed_batch_end": _value_at(fixed, end, seed),
                         "entropy_rate": config.task.entropy_rate})
    return {"summary": pd.DataFrame(rows)}


RECIPE = Recipe(
    name="wsd", title="Warmup–stable–decay against cosine",
    description="WSD against cosine at an equal budget on a synthetic language: loss above "
                "cosine while stable, a sharp drop in the decay, sharpness rising as η "
                "decays; the fixed-batch view (Belloni et al.; Sandler et al.)",
    paper=PAPER, config_type=WsdConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, figures=FIGURES,
    sections=SECTIONS)

