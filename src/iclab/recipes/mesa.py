"""mesa: Transformers trained on sequences implement a mesa-optimizer (von Oswald et al. 2023,
"Uncovering mesa-optimization algorithms in Transformers", arXiv 2309.05858, Fig. 4, SI E.2).

Setting (the paper's constructed-token experiments): each sequence is a random fully
observed linear system s_{t+1} = W* s_t + ε (W* orthogonal, n_s = 10, T = 50, σ = 0.01,
s_1 ~ U(−1, 1)); the model reads constructed tokens e_t = [0, s_t, s_t, s_{t−1}]
(1-layer models: [0, 0, s_t, s_{t−1}]) and predicts s_{t+1} at every t from the first
slot. Trained: a 1-layer linear self-attention (LSA, 2 heads), one mesa layer
(2 heads), K-layer LSAs (4 heads) for K in ``depths``, and a 1-layer LSA on the
fixed-teacher control. Baselines: the oracle (knows W*), AR ridge with tuned λ,
Proposition 1 (one GD step from a fitted Φ₀ with a fitted η), K−1 steps of Proposition 2
(preconditioning) for the deepest LSA, and softmax kernel regression with tuned β.
Probes: one linear probe per (layer, t) of the deepest LSA for the next state s_{t+1}
and for the preconditioned input (S Sᵀ + I/λ)⁻¹ s_t, fitted on half of the probe
sequences and scored (R²) on the other half.

Claims: the t = 1 loss and the noise floor equal their analytic values; the trained
1-layer LSA converges to the Proposition-1 loss; one mesa layer is far better than a
1-layer LSA and tracks AR ridge; deeper LSAs approach the mesa layer; probe error falls
with depth and with t; on the fixed-teacher control the 1-layer LSA beats one GD step
(no in-context optimization is needed there).

Deviations, stated: the full mode uses the paper's optimiser (AdamW, lr 1e-4, weight
decay 0.1, gradient clip 1, batch 256, 10k steps, init N(0, 0.0002²), activation clip
4); the quick mode raises the learning rate to 1e-3 and uses batch 128, 1500 steps and
K ≤ 3 to fit in minutes. The probe's
λ is 1 (the reference code uses 0.001 and drops outlier sequences; a regulariser of 1
keeps the target bounded for t < n_s without filtering).
"""

import dataclasses
import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from iclab._errors import ConfigError, check_positive, check_positive_int
from iclab.engine import (
    OptimConfig,
    TrainConfig,
    Trainer,
    dynamics_problem,
    sequence_loss_per_step,
)
from iclab.instruments import probe_grid
from iclab.models import CausalTransformer, CausalTransformerConfig
from iclab.recipes._base import Recipe, register
from iclab.recipes._claims import check
from iclab.report import figure, plot_metric_by_seed, save_figure, write_report
from iclab.solvers import (
    ARGradientStep,
    ARPreconditionedGD,
    ar_gd_predictions,
    ar_ridge_predictions,
    ar_statistics,
    fit_gd_step,
    grid_then_golden,
    softmax_kernel_predictions,
)
from iclab.store import MetricRows
from iclab.tasks import DynamicsTask, constructed_tokens

PAPER = ("von Oswald, Schlegel, Meulemans, Kobayashi, Niklasson, Zucchet, Scherrer, Miller, "
         "Vladymyrov, Pascanu, Sacramento 2023, 'Uncovering mesa-optimization algorithms in "
         "Transformers' (arXiv 2309.05858)")


def identity(states):
    return states


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
    """

    fit_sequences: int = 4096
    seed: int = 7
    steps: int = 2000
    batch_size: int = 256
    lr: float = 3e-3

    def __post_init__(self):
        check_positive_int("baselines.fit_sequences", self.fit_sequences)
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

    def __post_init__(self):
        if (not self.depths or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                                   for k in self.depths) or 1 not in self.depths):
            raise ConfigError("depths", self.depths,
                              "a comma-separated list of integers >= 1 that includes 1")
        for key in ("heads", "heads_one_layer", "key_size"):
            check_positive_int(key, getattr(self, key))
        if self.task.hidden_dim or self.task.dynamics != "linear":
            raise ConfigError("task.dynamics", self.task.dynamics,
                              "'linear' with task.hidden_dim = 0 (the recipe's claims are "
                              "about fully observed linear systems)")

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
    """K = 1, 2, 3; 1500 steps of batch 128 at lr 1e-3, 2 seeds; smaller probe and
    baseline budgets."""
    return MesaConfig(
        depths=(1, 2, 3),
        optim=OptimConfig(name="adamw", lr=1e-3, b2=0.999, weight_decay=0.1, clip_norm=1.0),
        train=TrainConfig(steps=1500, batch_size=128, eval_every=250, seeds=2),
        baselines=BaselineConfig(steps=500), probe=ProbeConfig(sequences=1024),
        eval=EvalConfig(sequences=1024))


# -- measurements --------------------------------------------------------------------------
def per_step_loss(model, batch, tokens=constructed_tokens) -> np.ndarray:
    return np.asarray(sequence_loss_per_step(model, batch, tokens))


def oracle_loss(batch) -> np.ndarray:
    """Per-t loss of ŝ_{t+1} = W* s_t (the true system): the noise floor."""
    preds = jnp.einsum("bij,btj->bti", batch.w, batch.inputs)
    return np.asarray(0.5 * jnp.sum((preds - batch.targets) ** 2, -1).mean(0))


def gd_from_zero_lr(batch) -> float:
    """Closed-form η* of one GD step from Φ₀ = 0: ŝ_{t+1} = η a_t with a_t = G_t s_t is
    linear in η, so η* = Σ⟨a_t, s_{t+1}⟩ / Σ‖a_t‖² over the batch and all t."""
    a = jax.vmap(lambda s: ar_gd_predictions(s, jnp.zeros((s.shape[1],) * 2), 1.0))(
        batch.inputs)
    return float(jnp.sum(a * batch.targets) / jnp.sum(a * a))


def tune_ridge(batch) -> tuple[float, float]:
    """λ* of AR ridge minimising the mean loss over t: a grid over log10 λ ∈ [−5, 2]
    (step 0.25), then a grid of step 0.025 around the best point.

    Grids only, no golden-section ``while`` loop: on XLA:CPU a batched
    ``linalg.solve`` inside a ``while`` loop deadlocked (jax 0.10.2, 1024 sequences).
    """
    def loss(log_lam, inputs, targets):
        preds = jax.vmap(lambda s: ar_ridge_predictions(s, 10.0 ** log_lam))(inputs)
        return 0.5 * jnp.sum((preds - targets) ** 2, -1).mean()

    on_grid = jax.jit(jax.vmap(loss, in_axes=(0, None, None)))
    grid = np.linspace(-5.0, 2.0, 29)
    best = grid[int(np.nanargmin(np.asarray(on_grid(grid, batch.inputs, batch.targets))))]
    fine = np.linspace(best - 0.25, best + 0.25, 21)
    values = np.asarray(on_grid(fine, batch.inputs, batch.targets))
    log_lam = float(fine[int(np.nanargmin(values))])
    return 10.0 ** log_lam, log_lam


def tune_softmax_kernel(batch) -> float:
    def loss(beta, inputs, targets):
        preds = jax.vmap(lambda s: softmax_kernel_predictions(s, beta))(inputs)
        return 0.5 * jnp.sum((preds - targets) ** 2, -1).mean()

    beta, _ = grid_then_golden(loss, 0.0, 20.0, batch.inputs, batch.targets, n_grid=41)
    return beta


def preconditioned_targets(states, lam: float):
    """(S_{t−1} S_{t−1}ᵀ + I/λ)⁻¹ s_t at every t, with S_{t−1} = [s_1, ..., s_{t−1}]."""
    _, h = ar_statistics(states)
    eye = jnp.eye(states.shape[1], dtype=states.dtype)[None]
    return jnp.linalg.solve(h + eye / lam, states[..., None])[..., 0]


def fit_learner(task, init, baselines: BaselineConfig, eval_batch, seed: int):
    """Fit a learner with parameters (``init``: key → module on raw states) by Adam."""
    trainer = Trainer(dynamics_problem(task, init, tokens=identity),
                      OptimConfig(name="adam", lr=baselines.lr, b2=0.999, schedule="cosine"),
                      TrainConfig(steps=baselines.steps, batch_size=baselines.batch_size,
                                  eval_every=baselines.steps, seeds=1, seed=seed))
    state = trainer.fit(eval_batch)
    return trainer.model(jax.tree.map(lambda a: a[0], state.params))


def _train(config, run_dir, console, name, model_config, tokens, task, eval_batch):
    from iclab._console import training_progress

    init = lambda key, c=model_config: CausalTransformer(c, key=key)
    trainer = Trainer(dynamics_problem(task, init, tokens=tokens), config.optim, config.train)
    start = run_dir.checkpoint_step(f"checkpoint-{name}") or 0
    with training_progress(console, name, config.train.steps, start) as progress:
        state = trainer.fit(eval_batch, run=run_dir, progress=progress, tag=name)
    return trainer.models(state)


def run(config: MesaConfig, run_dir, console, mode: str = "full") -> list:
    task = config.task
    eval_batch = task.sample_batch(jax.random.key(config.eval.seed), config.eval.sequences)
    masked = functools.partial(constructed_tokens, mask_query=True)

    # -- baselines ---------------------------------------------------------------------
    curves = {"oracle (knows W*)": oracle_loss(eval_batch)}
    ridge_lam, _ = tune_ridge(eval_batch)
    curves["AR ridge, tuned λ"] = per_step_loss(
        lambda s: ar_ridge_predictions(s, ridge_lam), eval_batch, identity)
    eta0 = gd_from_zero_lr(eval_batch)
    curves["1 GD step from 0"] = per_step_loss(
        lambda s: ar_gd_predictions(s, jnp.zeros((task.state_dim,) * 2), eta0), eval_batch,
        identity)
    fit_batch = task.sample_batch(jax.random.key(config.baselines.seed),
                                  config.baselines.fit_sequences)
    phi0, eta1 = fit_gd_step(fit_batch.states)
    prop1 = ARGradientStep(task.state_dim, eta1, phi0)
    curves["Prop. 1 (GD from learned Φ₀)"] = per_step_loss(prop1, eval_batch, identity)
    deepest = max(config.depths)
    if deepest > 1:
        prop2 = fit_learner(task, lambda key: ARPreconditionedGD(deepest - 1), config.baselines,
                            eval_batch, config.train.seed)
        curves[f"Prop. 2 ({deepest - 1} steps + GD)"] = per_step_loss(prop2, eval_batch, identity)
    beta = tune_softmax_kernel(eval_batch)
    curves["softmax kernel regression"] = per_step_loss(
        lambda s: softmax_kernel_predictions(s, beta), eval_batch, identity)
    console.print(f"baselines: ridge λ* = {ridge_lam:.3g}, GD-from-0 η* = {eta0:.4f}, "
                  f"Prop. 1 η = {float(prop1.eta):.4f} ‖Φ₀‖ = "
                  f"{float(jnp.linalg.norm(prop1.phi0)):.3f}, softmax β* = {beta:.2f}")

    # -- trained models ----------------------------------------------------------------
    trained = {}
    for depth in sorted(config.depths):
        name = f"LSA-{depth}"
        tokens = masked if depth == 1 else constructed_tokens
        trained[name] = (_train(config, run_dir, console, name,
                                config.model_config("linear", depth), tokens, task,
                                eval_batch), tokens)
    trained["mesa-1"] = (_train(config, run_dir, console, "mesa-1",
                                config.model_config("mesa", 1), masked, task, eval_batch), masked)
    model_curves = {name: np.stack([per_step_loss(m, eval_batch, tokens) for m in models])
                    for name, (models, tokens) in trained.items()}
    lambdas = [float(jnp.abs(m.layers[0].lam).mean()) for m in trained["mesa-1"][0]]

    fixed = None
    if config.fixed_teacher:
        fixed_task = dataclasses.replace(task, fixed_teacher=True)
        fixed_batch = fixed_task.sample_batch(jax.random.key(config.eval.seed),
                                              config.eval.sequences)
        fixed_models = _train(config, run_dir, console, "LSA-1-fixed-teacher",
                              config.model_config("linear", 1), masked, fixed_task, fixed_batch)
        fixed_eta = gd_from_zero_lr(fixed_batch)
        fixed = {"lsa": np.stack([per_step_loss(m, fixed_batch, masked) for m in fixed_models]),
                 "gd": per_step_loss(lambda s: ar_gd_predictions(
                     s, jnp.zeros((task.state_dim,) * 2), fixed_eta), fixed_batch, identity),
                 "oracle": oracle_loss(fixed_batch), "eta": fixed_eta}

    # -- probes of the deepest LSA (first seed) ------------------------------------------
    probe_batch = task.sample_batch(jax.random.key(config.probe.seed), config.probe.sequences)
    probe_model = trained[f"LSA-{deepest}"][0][0]
    probe_tokens = trained[f"LSA-{deepest}"][1]
    features = jax.vmap(lambda s: probe_model.residual_stream(probe_tokens(s)))(
        probe_batch.inputs)  # (n, L + 1, T, D)
    probes = {
        "next state s_{t+1}": probe_grid(features, probe_batch.targets),
        "preconditioned (SSᵀ+I/λ)⁻¹s_t": probe_grid(
            features, jax.vmap(lambda s: preconditioned_targets(s, config.probe.lam))(
                probe_batch.inputs)),
    }
    probes = {k: {m: np.asarray(v) for m, v in grid.items()} for k, grid in probes.items()}

    claims = _claims(config, curves, model_curves, fixed, probes)
    _write(config, run_dir, curves, model_curves, fixed, probes, claims, lambdas, ridge_lam,
           eta0, prop1, beta, mode)
    return claims


def _mean(curve) -> float:
    return float(np.mean(curve))


def _claims(config, curves, model_curves, fixed, probes) -> list:
    task = config.task
    lsa1 = model_curves["LSA-1"].mean(0)
    mesa = model_curves["mesa-1"].mean(0)
    prop1 = curves["Prop. 1 (GD from learned Φ₀)"]
    ridge = curves["AR ridge, tuned λ"]
    depths = sorted(config.depths)
    deep = [_mean(model_curves[f"LSA-{k}"].mean(0)) for k in depths]
    claims = [
        check("t1_loss", "the loss at t = 1 equals ½ n_s (Var s_1 + σ²) (nothing to learn "
              "from yet): |L_LSA-1(1) / analytic − 1|", abs(lsa1[0] / task.first_step_loss() - 1),
              "<=", 0.05, paper=round(task.first_step_loss(), 4)),
        check("noise_floor", "the oracle's loss equals the noise floor ½ n_s σ²: "
              "|L_oracle / floor − 1|", abs(_mean(curves["oracle (knows W*)"]) /
                                          task.noise_floor() - 1),
              "<=", 0.05, paper=task.noise_floor()),
        check("lsa1_is_prop1", "a trained 1-layer LSA converges to the Proposition-1 loss "
              "(one GD step): |L̄_LSA-1 / L̄_Prop1 − 1|", abs(_mean(lsa1) / _mean(prop1) - 1),
              "<=", 0.05, paper="≈ 0 (Fig. 4A)"),
        check("mesa_beats_lsa1", "one mesa layer is far better than a 1-layer LSA: "
              "L̄_mesa / L̄_LSA-1", _mean(mesa) / _mean(lsa1), "<=", 0.5,
              paper="far below (Fig. 4A)"),
        check("mesa_tracks_ridge", "one mesa layer tracks AR least squares (ridge, tuned λ): "
              "L̄_mesa / L̄_ridge", _mean(mesa) / _mean(ridge), "<=", 1.10, paper="≈ 1"),
    ]
    if len(depths) > 1:
        claims += [
            check("depth_helps", "the LSA loss falls with every added depth: "
                  "max_K L̄_{next K} / L̄_K",
                  max(b / a for a, b in zip(deep[:-1], deep[1:], strict=True)), "<", 1.0,
                  paper="decreasing (Fig. 4B)"),
            check("deep_approaches_mesa", f"the deepest LSA (K = {depths[-1]}) approaches the "
                  "mesa layer: L̄_LSA-K / L̄_mesa", deep[-1] / _mean(mesa), "<=", 1.5,
                  paper="approaches, does not match (Fig. 4B)"),
        ]
        next_state = 1 - probes["next state s_{t+1}"]["r2"]  # (L+1, T)
        precond = 1 - probes["preconditioned (SSᵀ+I/λ)⁻¹s_t"]["r2"]
        half = next_state.shape[1] // 2
        claims += [
            check("probe_depth", "next-state probe error (1 − R², mean over t) falls with "
                  "depth: last layer / first layer", float(next_state[-1, 1:].mean() /
                                                           next_state[1, 1:].mean()),
                  "<", 1.0, paper="decreasing (Fig. 4E)"),
            check("probe_time", "next-state probe error at the last layer falls with t: "
                  "mean over the second half of t / first half", float(
                      next_state[-1, half:].mean() / next_state[-1, 1:half].mean()),
                  "<", 1.0, paper="decreasing (Fig. 4E)"),
            check("precond_probe_depth", "preconditioned-input probe error falls with depth: "
                  "last layer / first layer", float(precond[-1, 1:].mean() /
                                                    precond[1, 1:].mean()),
                  "<", 1.0, paper="decreasing (Fig. 4F)"),
        ]
    if fixed is not None:
        claims.append(check(
            "fixed_teacher_beats_gd", "fixed-teacher control: the 1-layer LSA beats one GD "
            "step (it need not optimise in context): L̄_LSA-1 / L̄_GD",
            _mean(fixed["lsa"].mean(0)) / _mean(fixed["gd"]), "<", 1.0,
            paper="beats (SI E.2)"))
    return claims


def _write(config, run_dir, curves, model_curves, fixed, probes, claims, lambdas, ridge_lam,
           eta0, prop1, beta, mode):
    rows = MetricRows()
    steps = config.train.steps
    seeds = list(range(config.train.seed, config.train.seed + config.train.seeds))
    t_axis = np.arange(1, config.task.length + 1)
    for name, curve in curves.items():
        rows.add(steps, -1, f"baseline/{name}/mean_loss", _mean(curve))
        for t, value in zip(t_axis, curve, strict=True):
            rows.add(int(t), -1, f"per_t/{name}", float(value))
    for name, per_seed in model_curves.items():
        for seed, curve in zip(seeds, per_seed, strict=True):
            rows.add(steps, seed, f"{name}/final_mean_loss", _mean(curve))
            for t, value in zip(t_axis, curve, strict=True):
                rows.add(int(t), seed, f"per_t/{name}", float(value))
    for seed, lam in zip(seeds, lambdas, strict=True):
        rows.add(steps, seed, "mesa-1/lambda_mean", lam)
    for target, grid in probes.items():
        for layer, r2_row in enumerate(grid["r2"]):
            for t, value in zip(t_axis, r2_row, strict=True):
                rows.add(int(t), -1, f"probe_r2/{target}/layer{layer}", float(value))
    run_dir.write_metrics("final", rows)
    run_dir.write_json("baselines.json", {
        "ridge_lambda": ridge_lam, "gd_from_zero_eta": eta0, "prop1_eta": float(prop1.eta),
        "prop1_phi0_norm": float(jnp.linalg.norm(prop1.phi0)), "softmax_beta": beta,
        "mean_loss": {k: _mean(v) for k, v in curves.items()},
        "mesa_lambda": lambdas,
        "fixed_teacher": None if fixed is None else {
            "lsa_mean_loss": _mean(fixed["lsa"].mean(0)), "gd_mean_loss": _mean(fixed["gd"]),
            "gd_eta": fixed["eta"], "oracle_mean_loss": _mean(fixed["oracle"])}})
    _report(config, run_dir, curves, model_curves, fixed, probes, claims, mode)


def _report(config, run_dir, curves, model_curves, fixed, probes, claims, mode):
    metrics = run_dir.metrics()
    folder = run_dir.path / "figures"
    t_axis = np.arange(1, config.task.length + 1)
    figures = []
    fig, (ax,) = figure(1, width=7.5, height=4.2)
    styles = {"oracle (knows W*)": ("k", ":"), "AR ridge, tuned λ": ("C3", "--"),
              "1 GD step from 0": ("C7", ":"), "Prop. 1 (GD from learned Φ₀)": ("C1", "--"),
              "softmax kernel regression": ("C8", "-.")}
    for i, (name, curve) in enumerate(curves.items()):
        color, ls = styles.get(name, (f"C{5 + i % 3}", "--"))
        ax.plot(t_axis, curve, color=color, ls=ls, lw=1.2, label=name)
    for i, (name, per_seed) in enumerate(model_curves.items()):
        mean, std = per_seed.mean(0), per_seed.std(0)
        color = "C2" if name.startswith("mesa") else f"C{[0, 4, 9, 6, 5][i % 5]}"
        ax.plot(t_axis, mean, color=color, lw=2, label=f"{name} (trained)")
        ax.fill_between(t_axis, mean - std, mean + std, color=color, alpha=0.2)
    ax.axhline(config.task.first_step_loss(), color="grey", lw=0.6)
    ax.axhline(config.task.noise_floor(), color="grey", lw=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("½ E‖ŝ_{t+1} − s_{t+1}‖²")
    ax.legend(fontsize=7, ncol=2)
    figures.append({"svg": save_figure(fig, folder, "loss_per_t"),
                    "caption": "Per-time-step test loss of the trained models (mean ± std over "
                               "seeds) and of the baselines; grey lines: the analytic t = 1 "
                               "loss and the noise floor."})
    names = list(model_curves)
    fig, axes = figure(len(names), width=3.2)
    for ax, name in zip(axes, names, strict=True):
        plot_metric_by_seed(ax, metrics, f"{name}/test_loss", name)
        ax.axhline(_mean(curves["AR ridge, tuned λ"]), color="C3", ls="--", lw=1)
        ax.axhline(_mean(curves["Prop. 1 (GD from learned Φ₀)"]), color="C1", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel("mean test loss (dashed: ridge, Prop. 1)")
    figures.append({"svg": save_figure(fig, folder, "learning_curves"),
                    "caption": "Test loss (mean over t) during training, per seed and mean."})
    fig, axes = figure(len(probes), width=5.0, height=3.4)
    for ax, (target, grid) in zip(axes, probes.items(), strict=True):
        image = ax.imshow(grid["r2"], aspect="auto", cmap="viridis", vmin=0, vmax=1,
                          extent=(0.5, config.task.length + 0.5, grid["r2"].shape[0] - 0.5, -0.5))
        ax.set_title(f"probe R²: {target}", fontsize=9)
        ax.set_xlabel("time step t")
        ax.set_ylabel("layer (0 = tokens)")
        fig.colorbar(image, ax=ax, shrink=0.8)
    figures.append({"svg": save_figure(fig, folder, "probes"),
                    "caption": f"Linear-probe R² (held-out) per layer and time step of the "
                               f"deepest LSA (K = {max(config.depths)}, seed 0)."})
    if fixed is not None:
        fig, (ax,) = figure(1, width=5.5)
        ax.plot(t_axis, fixed["lsa"].mean(0), color="C0", lw=2, label="LSA-1 (trained)")
        ax.plot(t_axis, fixed["gd"], color="C7", ls=":", label="1 GD step from 0, tuned η")
        ax.plot(t_axis, fixed["oracle"], color="k", ls=":", label="oracle")
        ax.plot(t_axis, model_curves["LSA-1"].mean(0), color="C0", alpha=0.4,
                label="LSA-1 on random systems")
        ax.set_yscale("log")
        ax.set_xlabel("time step t")
        ax.legend(fontsize=7)
        figures.append({"svg": save_figure(fig, folder, "fixed_teacher"),
                        "caption": "Fixed-teacher control (one W* for all sequences): the "
                                   "1-layer LSA no longer tracks one GD step."})
    table = [[name, _mean(c), float(c[0]), float(c[-1])] for name, c in curves.items()]
    table += [[f"{name} (trained, mean of seeds)", _mean(c.mean(0)), float(c.mean(0)[0]),
               float(c.mean(0)[-1])] for name, c in model_curves.items()]
    sections = [{"title": "Losses", "text": "Mean over t = 1..T, at t = 1 and at t = T, on the "
                 "evaluation sequences.", "table": {"columns": ["learner", "mean loss",
                                                               "t = 1", "t = T"], "rows": table}}]
    write_report(run_dir, "Mesa-optimization in Transformers trained on sequences", "mesa", PAPER,
                 mode, [c.to_json() for c in claims], figures, sections)


RECIPE = register(Recipe(
    name="mesa",
    description="Linear attention on sequences implements GD, the mesa layer ridge regression; "
                "deeper models approach it (von Oswald et al. 2023)",
    paper=PAPER, config_type=MesaConfig, full=full_config, quick=quick_config, run=run))
