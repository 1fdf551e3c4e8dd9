"""slingshot: "The Slingshot Mechanism: An Empirical Study of Adaptive Optimizers and the
Grokking Phenomenon" (Thilak, Littwin, Zhai, Saremi, Paiss, Susskind, 2022).

What is trained: a classifier of modular division, a / b = c (mod 97), on half of the
9,312 equations (Power et al.'s split, fixed), with Adam, no weight decay, minibatches of
512 in epochs, for many steps after the training set is fitted; one model per Adam ε.
Quick mode uses a small MLP on the two operands (embedding 128, one hidden layer of 256,
a linear read-out); full mode Power et al.'s 2-layer transformer.

What is measured, every ``train.eval_every`` steps: the last layer's weight norm ‖W_out‖
(``role_norms``: the "readout" arrays), the loss and accuracy on the whole training set
and on the held-out equations. Slingshots — a burst of last-layer norm growth ended by a
training-loss spike, then a norm plateau — are found by ``detect_slingshots``, a documented
rule of ours (the paper reads them off the curves).
"""

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from iclab.config import ConfigError, check_choice, check_positive, check_positive_int
from iclab.engine import OptimConfig, TrainConfig, finite_problem
from iclab.framework import Claim, Figure, Job, Recipe, Section, paper
from iclab.instruments import detect_slingshots, role_norms
from iclab.models import CausalTransformer, CausalTransformerConfig, TokenMLP, TokenMLPConfig
from iclab.recipes.analysis.slingshot import plot_curves, plot_detections
from iclab.tasks import ModularArithmetic

PAPER = ("Thilak, Littwin, Zhai, Saremi, Paiss, Susskind: The Slingshot Mechanism: an "
         "empirical study of adaptive optimizers and the grokking phenomenon, 2022 "
         "(arXiv 2206.04817; NeurIPS 2022 HITY workshop).")
ARCHITECTURES = ("mlp", "transformer")

# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("slingshots_cycle", "slingshots recur: detected slingshots per seed at the "
          "smallest ε (min over seeds)", lambda r: _smallest_eps(r).slingshots, ">=", 2,
          reduce="min", paper=paper("cyclic phase transitions", "abstract")),
    Claim("norm_grows_in_bursts", "the last-layer norm grows in bursts separated by "
          "plateaus: the share of its log-growth after the training set is fitted that "
          "falls inside slingshot bursts, at the smallest ε (mean over seeds)",
          lambda r: _smallest_eps(r).growth_in_bursts, ">=", 0.5,
          paper=paper("rapid norm growth, loss spike, norm plateau", "Fig. 1 caption")),
    Claim("larger_eps_suppresses", "a larger Adam ε suppresses slingshots: slingshots at "
          "the largest ε over those at the smallest (means over seeds; NaN without any at "
          "the smallest)", lambda r: _ratio(_per_eps(r, "slingshots")),
          "<=", 0.5, paper=paper("suppressed by a larger ε", "a secondary summary of the "
                                 "paper (sciencestack TL;DR); not checked in its text")),
    Claim("grokking_at_slingshot", "generalisation comes at a slingshot onset: steps from "
          "the latest slingshot onset to the first evaluation with test accuracy ≥ "
          "grok_accuracy, over detector.lag_steps, at the smallest ε (mean over seeds; "
          "NaN: test accuracy never got there)",
          lambda r: _smallest_eps(r).grok_lag / r.config.detector.lag_steps, "<=", 1.0,
          paper=paper("grokking almost exclusively at the onset of slingshots",
                      "abstract")),
]

FIGURES = [
    Figure("curves", "Per ε (columns; one seed): last-layer norm (top), training-set loss "
           "(log, middle) and training / test accuracy (bottom); dotted: detected slingshot "
           "onsets.", plot_curves),
    Figure("detections", "Detected slingshots per seed against Adam ε, and the norm ratio "
           "across each burst.", plot_detections),
]
SECTIONS = [
    Section("Per ε and seed", table="runs"),
    Section("Detected slingshots (every spike event; slingshot: its burst passed the rate "
            "test)", table="slingshots"),
]


def _per_eps(r, column: str) -> np.ndarray:
    """A column of table "runs", mean over seeds, in increasing ε."""
    return r["runs"].groupby("eps")[column].mean().sort_index().to_numpy()


def _ratio(values: np.ndarray) -> float:
    """values[-1] / values[0], NaN when values[0] is 0."""
    return float(values[-1] / values[0]) if values[0] > 0 else float("nan")


def _smallest_eps(r) -> pd.DataFrame:
    runs = r["runs"]
    return runs[runs.eps == runs.eps.min()]


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectorConfig:
    """``detect_slingshots``'s rule, in steps where it counts logs.

    Args:
        growth: a burst's peak norm growth rate exceeds this multiple of the run's median.
        spike: a loss spike is this multiple of the recent minimum training-set loss.
        lag_steps: look-back of a spike, merging of spikes, longest burst (a multiple of
            ``train.eval_every``).
        floor: training-set losses below it count as it (float32 underflows to 0).
    """

    growth: float = 5.0
    spike: float = 10.0
    lag_steps: int = 500
    floor: float = 1e-7

    def __post_init__(self):
        for key in ("growth", "spike", "floor"):
            check_positive(f"detector.{key}", getattr(self, key))
        check_positive_int("detector.lag_steps", self.lag_steps)


@dataclass(frozen=True)
class SlingshotConfig:
    """Args:
        task: the modular-arithmetic equations and their split.
        architecture: "mlp" (``mlp``) or "transformer" (``transformer``).
        mlp: the MLP on the two operands (tokens, vocab and out are set from the task).
        transformer: the transformer on [a, ∘, b, =] (resolved to the task's vocabulary).
        epsilons: Adam's ε, one model each.
        optim: Adam (its ε is replaced by each of ``epsilons``).
        train: steps, minibatch, evaluation interval (the curves' resolution) and seeds.
        detector: the slingshot rule.
        grok_accuracy: the test accuracy that counts as generalisation.
    """

    task: ModularArithmetic = field(default_factory=ModularArithmetic)
    architecture: str = "transformer"
    mlp: TokenMLPConfig = field(default_factory=lambda: TokenMLPConfig(embed=128,
                                                                       hidden=(256,)))
    transformer: CausalTransformerConfig = field(default_factory=lambda: (
        CausalTransformerConfig(layers=("softmax", "softmax"), heads=4, key_size=32, dim=128,
                                readout="linear", mlp=True, layer_norm=True, init_std=0.02,
                                max_len=4)))
    epsilons: tuple[float, ...] = (1e-8, 1e-6, 1e-4)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3,
                                                                   b1=0.9, b2=0.98))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=100_000, batch_size=512, eval_every=50, seeds=3))
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    grok_accuracy: float = 0.5

    def __post_init__(self):
        check_choice("architecture", self.architecture, ARCHITECTURES)
        if len(self.epsilons) < 2 or any(not e > 0 for e in self.epsilons) \
                or list(self.epsilons) != sorted(set(self.epsilons)):
            raise ConfigError("epsilons", self.epsilons, "at least two increasing values > 0")
        if self.detector.lag_steps % self.train.eval_every:
            raise ConfigError("detector.lag_steps", self.detector.lag_steps,
                              f"a multiple of train.eval_every ({self.train.eval_every})")
        if not 0 < self.grok_accuracy <= 1:
            raise ConfigError("grok_accuracy", self.grok_accuracy, "a number in (0, 1]")


def full_config() -> SlingshotConfig:
    return SlingshotConfig()


def quick_config() -> SlingshotConfig:
    return SlingshotConfig(architecture="mlp", epsilons=(1e-8, 1e-4), train=TrainConfig(
        steps=30_000, batch_size=512, eval_every=50, seeds=2))


# -- experiment -------------------------------------------------------------------------
def _model(config: SlingshotConfig):
    """(init_model, logits(model, equation tokens (B, 4)) → (B, p))."""
    p, vocab = config.task.p, config.task.vocab_size
    if config.architecture == "mlp":
        mlp = dataclasses.replace(config.mlp, tokens=2, vocab=p, out=p)
        operands = jnp.array([0, 2])
        logits = lambda m, t: jax.vmap(lambda s: m(jax.nn.one_hot(s[operands], p)))(t)
        return (lambda key: TokenMLP(mlp, key=key)), logits
    model = config.transformer.resolve(vocab, p)
    logits = lambda m, t: jax.vmap(lambda s: m(jax.nn.one_hot(s, vocab))[-1])(t)
    return (lambda key: CausalTransformer(model, key=key)), logits


def experiment(config: SlingshotConfig) -> list[Job]:
    train_set, test_set = config.task.split()
    init_model, logits = _model(config)

    def metrics(model, data):
        out = logits(model, data.tokens)
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(
                    out, data.target).mean(),
                "accuracy": (out.argmax(-1) == data.target).mean()}

    loss = lambda model, batch: metrics(model, batch)["loss"]
    problem = finite_problem(train_set, init_model, loss, metrics, config.train.batch_size,
                             extra=lambda model: {"readout_norm": role_norms(model)["readout"]})
    return [Job(f"eps{eps:g}", problem, dataclasses.replace(config.optim, eps=eps),
                config.train, eval_data=(train_set, test_set), label=f"Adam ε={eps:g}")
            for eps in config.epsilons]


# -- measurement ------------------------------------------------------------------------
def _growth_in_bursts(steps, norm, fitted: int, bursts: pd.DataFrame) -> float:
    """Share of Δ log ‖W‖ after step ``fitted`` that falls inside the bursts."""
    log_norm = pd.Series(np.log(norm), index=steps)
    after = log_norm[log_norm.index >= fitted]
    total = float(after.iloc[-1] - after.iloc[0]) if after.size > 1 else float("nan")
    inside = sum(float(log_norm.get(b.end) - log_norm.get(b.onset))
                 for b in bursts.itertuples() if b.onset >= fitted)
    return inside / total if total > 0 else float("nan")


def measure(config: SlingshotConfig, trained) -> dict[str, pd.DataFrame]:
    lag = config.detector.lag_steps // config.train.eval_every
    runs, events = [], []
    for eps in config.epsilons:
        job = trained[f"eps{eps:g}"]
        norms, losses = job.curves("readout_norm"), job.curves("train_set_loss")
        train_acc, test_acc = job.curves("train_set_accuracy"), job.curves("test_accuracy")
        for s, seed in enumerate(job.seeds):
            steps = norms.index.to_numpy()
            found = detect_slingshots(steps, norms[seed].to_numpy(), losses[seed].to_numpy(),
                                      growth=config.detector.growth,
                                      spike=config.detector.spike, lag=lag,
                                      floor=config.detector.floor)
            found.insert(0, "seed", seed)
            found.insert(0, "eps", eps)
            events.append(found)
            sling = found[found.slingshot]
            fitted_at = train_acc[seed][train_acc[seed] >= 1.0]
            fitted = int(fitted_at.index[0]) if fitted_at.size else int(steps[-1])
            grokked = test_acc[seed][test_acc[seed] >= config.grok_accuracy]
            grok_step = int(grokked.index[0]) if grokked.size else None
            before = sling[sling.onset <= grok_step] if grok_step is not None else sling[:0]
            runs.append({
                "eps": eps, "seed": seed, "slingshots": int(len(sling)),
                "spike_events": int(len(found)), "fitted_step": fitted,
                "growth_in_bursts": _growth_in_bursts(steps, norms[seed].to_numpy(), fitted,
                                                      sling),
                # diagnostic (no claim reads it): the same share from the first slingshot on
                "growth_in_bursts_after_first": _growth_in_bursts(
                    steps, norms[seed].to_numpy(), int(sling.onset.min()), sling)
                if len(sling) else float("nan"),
                "final_norm": float(norms[seed].iloc[-1]),
                "final_train_accuracy": float(job.final["train_set_accuracy"][s]),
                "final_test_accuracy": float(job.final["test_accuracy"][s]),
                "best_test_accuracy": float(test_acc[seed].max()),
                "grok_step": float(grok_step) if grok_step is not None else float("nan"),
                "grok_lag": float(grok_step - before.onset.max()) if len(before)
                else float("nan")})
    return {"runs": pd.DataFrame(runs),
            "slingshots": pd.concat(events, ignore_index=True)}


RECIPE = Recipe(
    name="slingshot", title="The slingshot mechanism",
    description="Cyclic last-layer norm bursts with loss spikes under Adam on modular "
                "division, suppressed by a larger ε; grokking at their onsets (Thilak et "
                "al. 2022)",
    paper=PAPER, config_type=SlingshotConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, figures=FIGURES,
    sections=SECTIONS)
