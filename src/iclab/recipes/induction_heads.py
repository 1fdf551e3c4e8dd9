"""induction-heads: an induction head forms abruptly, and when (Olsson et al. 2022; Musat,
Pimentel, Noci et al. 2025, "On the Emergence of Induction Heads for In-Context Learning").

Part 1 — a standard transformer. The minimal in-context task (``ItemLabelTask``): N
distinct items each followed by a label drawn afresh per sequence, then a query item from
the context; the target is its label, so only an induction circuit (layer 1: attend to the
previous token; layer 2: match the query against those, copy the label) solves it. Model:
a 2-layer attention-only softmax transformer (one head per layer, one-hot tokens embedded,
learned positions, linear read-out), trained with Adam and cross-entropy on the query's
label. Measured per N and seed every ``eval_every`` steps: query accuracy and loss, the
induction score of layer 2 at the query row and the previous-token score of layer 1
(``iclab.instruments`` "mul" rule: fraction of attention mass on the pattern), and the
progress measures α̃₃, β̃₂, γ̃₃ (``induction_progress``). Emergence time: the first
evaluation step at which the query accuracy reaches ``threshold``; the score's rise time:
the first step at which the induction score reaches ``threshold``.

Part 2 — the disentangled model (``DisentangledTransformer``) on the orthonormal task
(``OrthonormalPairsTask``), the setting of Musat et al.'s theorems: zero initialisation,
population MSE, full-batch gradient descent.
- Subspace: the full model (W¹, W², W³; float64) is trained on a batch closed under a
  finite symmetry group with the same commutant as O(D) × U(D/2) (so its loss is exactly
  invariant); the relative residual of the weights outside the 19-dimensional subspace is
  logged, and the 19 coordinates are compared with the reduced dynamics. Control: the same
  training on i.i.d. Haar-rotated sequences, whose loss is invariant only on average.
- Emergence law: gradient descent on the 19 coordinates with the exact population loss
  (time in units of the coordinate flow, lr·steps, which does not depend on D) for each N;
  emergence time t_ICL: the first time the loss is ≤ ``emergence_loss`` (half the loss
  at initialisation, ½); rise times of γ₃, β₂, α₃: the first time each reaches
  ``rise_level``.

Claims: an induction head forms in the standard model (final induction score ≥ 0.5 for
every N); its loss drop coincides with the score's rise; the disentangled model stays in
the subspace (residual ≤ 1e-6) and its 19 coordinates follow the reduced dynamics; the
emergence time grows quadratically with N (log-log slope in [1.6, 2.4] over the largest
``slope_points`` values of N — the law is asymptotic; the fit over all N is reported);
γ₃ rises before β₂, and β₂ before α₃. The standard model's emergence slope (Adam,
cross-entropy: outside the theorem's assumptions) is reported, not claimed.
"""

import dataclasses
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from iclab._errors import ConfigError, check_positive, check_positive_int
from iclab.engine import (
    FitJob,
    OptimConfig,
    Problem,
    TrainConfig,
    Trainer,
    fit_concurrently,
    pairs_population_loss,
    pairs_population_problem,
)
from iclab.instruments import (
    induction_mask,
    induction_progress,
    pattern_score,
    previous_token_mask,
)
from iclab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    DisentangledCoordinates,
    DisentangledTransformer,
    subspace_coordinates,
    subspace_residual,
)
from iclab.recipes._base import Recipe, register
from iclab.recipes._claims import check
from iclab.report import figure, plot_metric_by_seed, save_figure, write_report
from iclab.store import MetricRows
from iclab.tasks import ItemLabelTask, OrthonormalPairsTask, finite_symmetry_orbit, one_hot_tokens

PAPER = ("Olsson et al. 2022, 'In-context Learning and Induction Heads'; Musat, Pimentel, Noci, "
         "Stolfo, Sachan, Hofmann 2025, 'On the Emergence of Induction Heads for In-Context "
         "Learning' (arXiv 2511.01033)")


def check_n_values(key: str, values) -> None:
    """At least two integers ≥ 2."""
    if len(values) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 2
                              for n in values):
        raise ConfigError(key, values, "a comma-separated list of at least two integers >= 2")


@dataclass(frozen=True)
class DisentangledConfig:
    """The disentangled model of Musat et al. (part 2 of the recipe).

    Args:
        n_values: context sizes N for the emergence law.
        slope_points: the log-log slope is fitted over this many largest N (≥ 2).
        lr: gradient-descent step on the 19 coordinates (time = lr · steps).
        max_steps: steps per N at most.
        eval_every: steps between logged evaluations (the time resolution).
        emergence_loss: t_ICL is the first time the population loss is ≤ this (½ L(0)).
        stop_loss: stop an N once its loss is ≤ this.
        rise_level: the rise time of γ₃, β₂, α₃ is the first time each is ≥ this.
        subspace_pairs: N of the subspace check (D = 2N + 2 must be a power of 2).
        subspace_steps: gradient-descent steps of the full model in the subspace check.
        subspace_lr: their learning rate (on W¹, W², W³).
    """

    n_values: tuple[int, ...] = (4, 8, 16, 32, 64)
    slope_points: int = 4
    lr: float = 1.0
    max_steps: int = 60_000
    eval_every: int = 10
    emergence_loss: float = 0.25
    stop_loss: float = 0.05
    rise_level: float = 0.25
    subspace_pairs: int = 3
    subspace_steps: int = 400
    subspace_lr: float = 1.0

    def __post_init__(self):
        check_n_values("disentangled.n_values", self.n_values)
        if list(self.n_values) != sorted(set(self.n_values)):
            raise ConfigError("disentangled.n_values", self.n_values,
                              "strictly increasing values")
        if not 2 <= self.slope_points <= len(self.n_values):
            raise ConfigError("disentangled.slope_points", self.slope_points,
                              f"an integer in [2, len(n_values) = {len(self.n_values)}]")
        for key in ("lr", "emergence_loss", "stop_loss", "rise_level", "subspace_lr"):
            check_positive(f"disentangled.{key}", getattr(self, key))
        for key in ("max_steps", "eval_every", "subspace_steps"):
            check_positive_int(f"disentangled.{key}", getattr(self, key))
        width = 2 * self.subspace_pairs + 2
        if self.subspace_pairs < 1 or width & (width - 1):
            raise ConfigError("disentangled.subspace_pairs", self.subspace_pairs,
                              "N >= 1 with 2 N + 2 a power of 2 (1, 3, 7, ...)")


@dataclass(frozen=True)
class InductionConfig:
    """Context lengths, task, model and training of the induction-head recipe.

    Args:
        n_values: the context sizes N (pairs) to train, one model family per N.
        items: item vocabulary (≥ max N).
        labels: label vocabulary.
        threshold: accuracy (and induction score) that defines emergence.
        stop_accuracy: stop training an N once every seed's accuracy reaches this.
        eval_sequences: held-out sequences per evaluation.
        eval_seed: key of the held-out sequences.
        model: the attention-only transformer (``layers``, ``heads``, ``key_size``,
            ``dim``, ``init_std``; the rest is set per N).
    """

    n_values: tuple[int, ...] = (4, 8, 16, 32)
    items: int = 64
    labels: int = 32
    threshold: float = 0.5
    stop_accuracy: float = 0.95
    eval_sequences: int = 512
    eval_seed: int = 5
    model: CausalTransformerConfig = field(default_factory=lambda: CausalTransformerConfig(
        layers=("softmax", "softmax"), heads=1, key_size=32, dim=64, readout="linear",
        init_std=0.05))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=3e-3,
                                                                   b2=0.999))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=60_000, batch_size=128, eval_every=100, seeds=3))
    disentangled: DisentangledConfig = field(default_factory=DisentangledConfig)

    def __post_init__(self):
        check_n_values("n_values", self.n_values)
        check_positive_int("items", self.items)
        check_positive_int("labels", self.labels)
        if self.items < max(self.n_values):
            raise ConfigError("items", self.items, f"an integer >= max(n_values) = "
                              f"{max(self.n_values)}")
        for key in ("threshold", "stop_accuracy"):
            value = getattr(self, key)
            if not 0 < value <= 1:
                raise ConfigError(key, value, "a number in (0, 1]")
        check_positive_int("eval_sequences", self.eval_sequences)
        check_positive("model.init_std", self.model.init_std)
        if set(self.model.layers) != {"softmax"} or len(self.model.layers) < 2:
            raise ConfigError("model.layers", self.model.layers,
                              "at least two 'softmax' layers (an attention-only transformer)")

    def task(self, n: int) -> ItemLabelTask:
        return ItemLabelTask(n_pairs=n, items=self.items, labels=self.labels)

    def model_for(self, n: int) -> CausalTransformerConfig:
        task = self.task(n)
        return dataclasses.replace(self.model, mlp=False, readout="linear",
                                   max_len=task.length).resolve(task.vocab_size,
                                                                 task.vocab_size)


def full_config() -> InductionConfig:
    """N = 4, 8, 16, 32; 3 seeds; up to 60k steps per N."""
    return InductionConfig()


def quick_config() -> InductionConfig:
    """Standard model: N = 4, 6, 8, 12; 2 seeds; up to 20k steps per N. Disentangled:
    N = 8, 16, 32, 64."""
    return InductionConfig(n_values=(4, 6, 8, 12),
                           train=TrainConfig(steps=20_000, batch_size=128, eval_every=100,
                                             seeds=2),
                           disentangled=DisentangledConfig(n_values=(8, 16, 32, 64)))


def query_logits(model, tokens, vocab_size: int):
    return jax.vmap(lambda t: model(one_hot_tokens(t, vocab_size))[-1])(tokens)


def query_row_scores(model, tokens, vocab_size: int) -> dict:
    """Induction score of the last layer and previous-token score of the first layer at
    the query row (max over heads), averaged over sequences."""

    def one(t):
        patterns = model.attention_patterns(one_hot_tokens(t, vocab_size))  # (L, H, T, T)
        last_row = jnp.zeros((t.shape[0],) * 2, bool).at[-1].set(True)
        induction = induction_mask(t) & last_row
        previous = previous_token_mask(t.shape[0])
        ind = jax.vmap(lambda a: pattern_score(a, induction))(patterns[-1]).max()
        prev = jax.vmap(lambda a: pattern_score(a, previous))(patterns[0]).max()
        return ind, prev

    ind, prev = jax.vmap(one)(tokens)
    return {"induction_score": ind.mean(), "previous_token_score": prev.mean()}


def make_problem(config: InductionConfig, n: int) -> Problem:
    task, model_config = config.task(n), config.model_for(n)
    vocab = task.vocab_size

    def loss(model, batch):
        return optax.softmax_cross_entropy_with_integer_labels(
            query_logits(model, batch.tokens, vocab), batch.target).mean()

    items = jnp.arange(task.items)
    labels = task.items + jnp.arange(task.labels)

    def evaluate(model, batch):
        logits = query_logits(model, batch.tokens, vocab)
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits,
                                                                        batch.target).mean(),
                "accuracy": (logits.argmax(-1) == batch.target).mean(),
                **query_row_scores(model, batch.tokens, vocab),
                **induction_progress(model, items, labels, task.length)}

    return Problem(init_model=lambda key: CausalTransformer(model_config, key=key),
                   sample_batch=task.sample_batch, loss=loss, evaluate=evaluate)


def first_crossing(steps: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """The first step whose value is ≥ threshold (NaN if none)."""
    above = np.nonzero(values >= threshold)[0]
    return float(steps[above[0]]) if above.size else math.nan


def loglog_slope(n_values, times) -> float:
    """Least-squares slope of log t against log N (NaN if any t is missing)."""
    times = np.asarray(times, float)
    if np.any(~np.isfinite(times)):
        return math.nan
    return float(np.polyfit(np.log(n_values), np.log(times), 1)[0])


def subspace_check(config: DisentangledConfig, haar_control: bool) -> dict:
    """Full-batch gradient descent from zero on (W¹, W², W³) in float64, on the N =
    ``subspace_pairs`` task: every canonical sequence under the finite symmetry group
    (``finite_symmetry_orbit``), or (``haar_control``) as many i.i.d. Haar-rotated
    sequences. Returns per-step relative residuals outside the subspace, losses, and the
    largest deviation of the 19 coordinates from the reduced dynamics run alongside (GD on
    the coordinates with lr / D: the basis matrices have ‖B‖²_F = D)."""
    with jax.enable_x64(True):
        task = OrthonormalPairsTask(n_pairs=config.subspace_pairs)
        d, lr = task.width, config.subspace_lr
        orbits = [finite_symmetry_orbit(task, task.canonical(k)) for k in range(task.n_pairs)]
        tokens = jnp.concatenate([o.tokens for o in orbits])
        targets = jnp.concatenate([o.target for o in orbits])
        if haar_control:
            sample = task.sample_batch(jax.random.key(config.subspace_steps), tokens.shape[0])
            tokens, targets = sample.tokens, sample.target

        def full_loss(model):
            return 0.5 * jnp.sum((jax.vmap(model)(tokens) - targets) ** 2, -1).mean()

        def step(carry, _):
            model, reduced = carry
            loss, grads = jax.value_and_grad(full_loss)(model)
            model = jax.tree.map(lambda w, g: w - lr * g, model, grads)
            reduced_grads = jax.grad(lambda c: pairs_population_loss(c, task))(reduced)
            reduced = jax.tree.map(lambda w, g: w - lr / d * g, reduced, reduced_grads)
            coords = subspace_coordinates(model)
            deviation = jnp.max(jnp.stack([jnp.abs(coords[k] - getattr(reduced, k)).max()
                                           for k in ("alpha", "beta", "gamma")]))
            return (model, reduced), (loss, subspace_residual(model)["relative"], deviation)

        start = (DisentangledTransformer(d), DisentangledCoordinates(d))
        _, (loss, residual, deviation) = jax.jit(lambda c: jax.lax.scan(
            step, c, None, length=config.subspace_steps))(start)
        return {"loss": np.asarray(loss), "residual": np.asarray(residual),
                "deviation": np.asarray(deviation), "sequences": int(tokens.shape[0]),
                "dim": d}


def disentangled_job(config: DisentangledConfig, n: int) -> FitJob:
    """Gradient descent on the 19 coordinates with the exact population loss, from zero,
    until the loss is ≤ ``stop_loss`` or ``max_steps``; metrics tagged ``dis_N{n}``."""
    task = OrthonormalPairsTask(n_pairs=n)
    trainer = Trainer(pairs_population_problem(task), OptimConfig(name="sgd", lr=config.lr),
                      TrainConfig(steps=config.max_steps, batch_size=1,
                                  eval_every=config.eval_every, seeds=1))
    stop = lambda step, m: bool(np.all(np.asarray(m["loss"]) <= config.stop_loss))
    # Rough cost in CPU seconds, for the start order only: t_ICL ∝ N^1.7 steps of
    # ∝ N^1.8 each (benchmarks/bench_disentangled.py), about 100 s at N = 64.
    return FitJob(trainer, jnp.zeros(()), tag=f"dis_N{n}", label=f"disentangled N = {n}",
                  stop=stop, cost=100.0 * (n / 64) ** 3.5)


def disentangled_times(config: DisentangledConfig, metrics) -> list[dict]:
    """Per N: t_ICL and the rise times of γ₃, β₂, α₃ (in coordinate time, lr · step)."""
    def series(n, name):
        rows = metrics[metrics.metric == f"dis_N{n}/{name}"].sort_values("step")
        return rows.step.to_numpy(), rows.value.to_numpy()

    def first_time(steps, mask):
        return config.lr * first_crossing(steps, mask.astype(float), 1.0)

    out = []
    for n in config.n_values:
        steps, loss = series(n, "loss")
        row = {"n": n, "t_icl": first_time(steps, loss <= config.emergence_loss),
               "final_loss": float(loss[-1]), "steps": int(steps[-1])}
        for name in ("gamma3", "beta2", "alpha3"):
            steps, values = series(n, name)
            row[f"t_{name}"] = first_time(steps, values >= config.rise_level)
        out.append(row)
    return out


def run(config: InductionConfig, run_dir, console, mode: str = "full") -> list:
    jobs, eval_tokens = [], []
    for n in config.n_values:
        task = config.task(n)
        eval_batch = task.sample_batch(jax.random.key(config.eval_seed), config.eval_sequences)
        stop = lambda step, m: bool(np.all(np.asarray(m["accuracy"]) >= config.stop_accuracy))
        jobs.append(FitJob(Trainer(make_problem(config, n), config.optim, config.train),
                           eval_batch, tag=f"N{n}", label=f"N = {n}", stop=stop,
                           cost=5.0 * n))  # rough CPU seconds (emergence step ∝ N)
        eval_tokens.append(np.asarray(eval_batch.tokens[0]))
    dis = config.disentangled
    dis_jobs = [disentangled_job(dis, n) for n in dis.n_values]
    # Every model is independent: train the standard and disentangled ones side by side.
    states = fit_concurrently(jobs + dis_jobs, run=run_dir, console=console)
    results = [{"n": n, "stopped_at": int(state.step[0]),
                "model": job.trainer.models(state)[0], "eval_tokens": tokens}
               for n, job, state, tokens in zip(config.n_values, jobs, states[:len(jobs)],
                                                eval_tokens, strict=True)]
    console.print("subspace check (float64, full model) …")
    check_symmetric = subspace_check(dis, haar_control=False)
    check_haar = subspace_check(dis, haar_control=True)

    metrics = run_dir.metrics()
    seeds = sorted(s for s in metrics.seed.unique() if s >= 0)
    table = []
    for r in results:
        tag = f"N{r['n']}"
        curves = {}
        for name in ("accuracy", "induction_score", "loss", "previous_token_score"):
            rows = metrics[metrics.metric == f"{tag}/{name}"]
            curves[name] = rows.pivot_table(index="step", columns="seed", values="value")
        steps = curves["accuracy"].index.to_numpy()
        r["t_acc"] = [first_crossing(steps, curves["accuracy"][s].to_numpy(), config.threshold)
                      for s in seeds]
        r["t_score"] = [first_crossing(steps, curves["induction_score"][s].to_numpy(),
                                       config.threshold) for s in seeds]
        r["final_score"] = float(curves["induction_score"].iloc[-1].mean())
        r["final_accuracy"] = float(curves["accuracy"].iloc[-1].mean())
        r["final_previous"] = float(curves["previous_token_score"].iloc[-1].mean())
        r["progress_half_rise"] = {}
        for name in ("gamma3_tilde", "beta2_tilde", "alpha3_tilde"):
            rows = metrics[metrics.metric == f"{tag}/{name}"]
            values = rows.pivot_table(index="step", columns="seed", values="value")
            r["progress_half_rise"][name] = float(np.mean([
                first_crossing(steps, np.abs(values[s].to_numpy()),
                               0.5 * float(np.abs(values[s].to_numpy()).max()))
                for s in seeds]))
        table.append([r["n"], float(np.mean(r["t_acc"])), float(np.std(r["t_acc"])),
                      float(np.mean(r["t_score"])), r["final_accuracy"], r["final_score"],
                      r["final_previous"], r["stopped_at"]])

    n_values = [r["n"] for r in results]
    mean_times = [float(np.mean(r["t_acc"])) for r in results]
    slope = loglog_slope(n_values, mean_times)
    per_seed_slopes = [loglog_slope(n_values, [r["t_acc"][i] for r in results])
                       for i in range(len(seeds))]
    gaps = [abs(ts - ta) / ta for r in results
            for ta, ts in zip(r["t_acc"], r["t_score"], strict=True)]
    times = disentangled_times(dis, metrics)
    dis_n = [t["n"] for t in times]
    t_icl = [t["t_icl"] for t in times]
    fit_n, fit_t = dis_n[-dis.slope_points:], t_icl[-dis.slope_points:]
    dis_slope = loglog_slope(fit_n, fit_t)
    dis_slope_all = loglog_slope(dis_n, t_icl)
    local_slopes = [loglog_slope(dis_n[i:i + 2], t_icl[i:i + 2]) for i in range(len(dis_n) - 1)]
    rise_slopes = {name: loglog_slope(dis_n, [t[f"t_{name}"] for t in times])
                   for name in ("gamma3", "beta2", "alpha3")}
    order_margin = float(np.min([min(t["t_beta2"] - t["t_gamma3"], t["t_alpha3"] - t["t_beta2"])
                                 / t["t_icl"] for t in times]))  # NaN if any time is missing
    claims = [
        check("induction_head_forms", "an induction head forms: final layer-2 induction "
              "score at the query (mean over seeds), minimum over N",
              min(r["final_score"] for r in results), ">=", 0.5,
              paper="≈ 1 after the phase change (Olsson et al.)"),
        check("drop_coincides", "the loss drop coincides with the induction score's rise: "
              "mean |t_score − t_acc| / t_acc over N and seeds",
              float(np.mean(gaps)) if gaps else math.nan, "<=", 0.2,
              paper="same time (Olsson et al. 2022)"),
        check("stays_in_subspace", "the disentangled model (float64, zero init, GD on a "
              "symmetry-closed population, N = {}, D = {}) stays in the 19-dimensional "
              "subspace: max relative residual ‖W − PW‖/‖W‖ over {} steps".format(
                  dis.subspace_pairs, check_symmetric["dim"], dis.subspace_steps),
              float(check_symmetric["residual"].max()), "<=", 1e-6,
              paper="≈ 1e-7 (float64)"),
        check("reduced_dynamics_exact", "its 19 coordinates follow the reduced "
              "(α, β, γ) dynamics: max |Δ coordinate| over training",
              float(check_symmetric["deviation"].max()), "<=", 1e-8,
              paper="Theorem 1 (training stays in the subspace)"),
        check("quadratic_emergence", "disentangled model, population gradient descent: log-log "
              f"slope of t_ICL over the largest N = {', '.join(map(str, fit_n))}",
              dis_slope, ">=", 1.6, paper="2 (t_ICL = Θ(N²), Musat et al. Theorem 2)"),
        check("quadratic_emergence_upper", "… and the slope is at most 2.4", dis_slope, "<=",
              2.4, paper="2"),
        check("emergence_order", "γ₃ rises before β₂ and β₂ before α₃ (rise level "
              f"{dis.rise_level:g}), for every N: min gap / t_ICL (negative: wrong order)",
              order_margin, ">", 0.0, paper="γ₃ → β₂ → α₃"),
    ]
    rows = MetricRows()
    for r in results:
        for seed, ta, ts in zip(seeds, r["t_acc"], r["t_score"], strict=True):
            rows.add(r["stopped_at"], int(seed), f"N{r['n']}/emergence_step", ta)
            rows.add(r["stopped_at"], int(seed), f"N{r['n']}/score_rise_step", ts)
    rows.add(0, -1, "emergence_loglog_slope", slope)
    for t in times:
        for key in ("t_icl", "t_gamma3", "t_beta2", "t_alpha3"):
            rows.add(t["steps"], 0, f"dis_N{t['n']}/{key}", t[key])
    rows.add(0, -1, "dis_slope", dis_slope)
    rows.add(0, -1, "dis_slope_all_n", dis_slope_all)
    for name, check_run in (("symmetric", check_symmetric), ("haar", check_haar)):
        for i, (loss, res, dev) in enumerate(zip(check_run["loss"], check_run["residual"],
                                                 check_run["deviation"], strict=True)):
            rows.add(i + 1, 0, f"subspace_{name}/loss", float(loss))
            rows.add(i + 1, 0, f"subspace_{name}/residual", float(res))
            rows.add(i + 1, 0, f"subspace_{name}/deviation", float(dev))
    run_dir.write_metrics("final", rows)
    run_dir.write_json("emergence.json", {
        "n_values": n_values, "mean_emergence_step": mean_times, "slope": slope,
        "per_seed_slopes": per_seed_slopes,
        "disentangled": {"n_values": dis_n, "t_icl": t_icl, "slope": dis_slope,
                         "slope_all_n": dis_slope_all, "local_slopes": local_slopes,
                         "rise_slopes": rise_slopes, "per_n": times,
                         "subspace_residual_max": float(check_symmetric["residual"].max()),
                         "haar_control_residual_max": float(check_haar["residual"].max()),
                         "orbit_sequences": check_symmetric["sequences"]},
        "per_n": [{k: v for k, v in r.items() if k not in ("model", "eval_tokens")}
                  for r in results]})
    dis_info = {"times": times, "slope": dis_slope, "slope_all": dis_slope_all,
                "local_slopes": local_slopes, "rise_slopes": rise_slopes,
                "symmetric": check_symmetric, "haar": check_haar}
    _report(config, run_dir, metrics, results, claims, table, slope, mode, dis_info)
    return claims


def _report(config, run_dir, metrics, results, claims, table, slope, mode, dis_info):
    folder = run_dir.path / "figures"
    figures = []
    fig, axes = figure(3, width=4.2)
    for i, r in enumerate(results):
        tag, color = f"N{r['n']}", f"C{i}"
        plot_metric_by_seed(axes[0], metrics, f"{tag}/loss", f"N = {r['n']}", color=color)
        plot_metric_by_seed(axes[1], metrics, f"{tag}/accuracy", f"N = {r['n']}", color=color)
        plot_metric_by_seed(axes[2], metrics, f"{tag}/induction_score", f"N = {r['n']}",
                            color=color)
    for ax, label in zip(axes, ("query loss (cross-entropy)", "query accuracy",
                                "layer-2 induction score at the query"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    axes[1].axhline(config.threshold, color="grey", lw=0.6)
    axes[0].legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "phase_change"),
                    "caption": "Plateau, then an abrupt drop of the loss; the accuracy and the "
                               "induction score rise together (thin: seeds, thick: mean; grey: "
                               "the emergence threshold)."})
    fig, (ax,) = figure(1, width=5.0)
    n_values = np.array([r["n"] for r in results], float)
    for r in results:
        ax.scatter([r["n"]] * len(r["t_acc"]), r["t_acc"], color="C0", alpha=0.4, s=14)
    means = np.array([np.mean(r["t_acc"]) for r in results])
    ax.plot(n_values, means, "o-", color="C0", label=f"mean over seeds (slope {slope:.2f})")
    if np.all(np.isfinite(means)):
        ax.plot(n_values, means[0] * (n_values / n_values[0]) ** 2, "--", color="grey",
                label="∝ N² (Musat et al.)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context pairs N")
    ax.set_ylabel(f"emergence step (accuracy ≥ {config.threshold})")
    ax.legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "emergence_time"),
                    "caption": "Emergence time against N on log-log axes (dots: seeds)."})
    last = results[-1]
    model, tokens = last["model"], last["eval_tokens"]
    vocab = config.task(last["n"]).vocab_size
    patterns = np.asarray(model.attention_patterns(one_hot_tokens(jnp.asarray(tokens), vocab)))
    fig, axes = figure(patterns.shape[0], width=4.2, height=4.0)
    for layer, ax in enumerate(axes):
        ax.imshow(patterns[layer, 0], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {layer + 1}, head 1", fontsize=9)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    figures.append({"svg": save_figure(fig, folder, "attention_patterns"),
                    "caption": f"Attention patterns of the trained model (N = {last['n']}, "
                               "seed 0) on one evaluation sequence: layer 1 attends to the "
                               "previous token, layer 2 from the query to the label after the "
                               "matching item."})
    figures += _disentangled_figures(config, run_dir, metrics, results, dis_info, folder)
    dis, times = config.disentangled, dis_info["times"]
    sections = [{"title": "Per N", "text": "Emergence (first step with accuracy ≥ threshold) "
                 "and the induction score's rise; final values are at the stopping step.",
                 "table": {"columns": ["N", "t_acc mean", "t_acc std", "t_score mean",
                                       "final acc", "final induction", "final prev-token",
                                       "stopped at"], "rows": table}},
                {"title": "Standard model: emergence slope and progress measures (not claims)",
                 "text": f"Log-log slope of t_acc over N (Adam, cross-entropy — outside the "
                         f"assumptions of Musat et al.'s theorem): {slope:.3f}. Half-rise step "
                         "of each progress measure (first step at which |measure| reaches half "
                         "its largest value, mean over seeds):",
                 "table": {"columns": ["N", "γ̃₃ (copy)", "β̃₂ (match)", "α̃₃ (previous)",
                                       "t_acc"],
                           "rows": [[r["n"], r["progress_half_rise"]["gamma3_tilde"],
                                     r["progress_half_rise"]["beta2_tilde"],
                                     r["progress_half_rise"]["alpha3_tilde"],
                                     float(np.mean(r["t_acc"]))] for r in results]}},
                {"title": "Disentangled model, population gradient descent",
                 "text": f"Time in units of the coordinate flow (lr · steps, lr = {dis.lr:g}); "
                         f"t_ICL: first time the loss ≤ {dis.emergence_loss:g}; rise times: "
                         f"first time the coordinate ≥ {dis.rise_level:g}. Slope over the "
                         f"largest {dis.slope_points} N: {dis_info['slope']:.3f}; over all N: "
                         f"{dis_info['slope_all']:.3f}; between neighbouring N: "
                         + ", ".join(f"{x:.2f}" for x in dis_info["local_slopes"])
                         + "; rise-time slopes γ₃ / β₂ / α₃: "
                         + " / ".join(f"{dis_info['rise_slopes'][k]:.2f}"
                                      for k in ("gamma3", "beta2", "alpha3")) + ".",
                 "table": {"columns": ["N", "t_ICL", "t_γ3", "t_β2", "t_α3", "final loss",
                                       "steps"],
                           "rows": [[t["n"], t["t_icl"], t["t_gamma3"], t["t_beta2"],
                                     t["t_alpha3"], t["final_loss"], t["steps"]]
                                    for t in times]}},
                {"title": "Subspace check",
                 "text": "Full model in float64 from zero: max relative residual outside the "
                         "19-dimensional subspace "
                         f"{dis_info['symmetric']['residual'].max():.2e} on the "
                         f"symmetry-closed population ({dis_info['symmetric']['sequences']} "
                         "sequences) and "
                         f"{dis_info['haar']['residual'].max():.2e} on as many i.i.d. "
                         "Haar-rotated sequences (invariant only on average)."}]
    write_report(run_dir, "Induction-head emergence", "induction-heads", PAPER, mode,
                 [c.to_json() for c in claims], figures, sections)


def _disentangled_figures(config, run_dir, metrics, results, dis_info, folder) -> list:
    dis, times = config.disentangled, dis_info["times"]
    figures = []
    fig, axes = figure(2, width=4.6)
    for i, n in enumerate(dis.n_values):
        rows = metrics[metrics.metric == f"dis_N{n}/loss"].sort_values("step")
        axes[0].plot(dis.lr * rows.step, rows.value, color=f"C{i}", label=f"N = {n}")
    axes[0].axhline(dis.emergence_loss, color="grey", lw=0.6)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("time (lr · steps)")
    axes[0].set_ylabel("population loss (½ MSE)")
    axes[0].legend(fontsize=7)
    n_big = dis.n_values[-1]
    for name, label, color in (("gamma3", "γ₃ copy", "C2"), ("beta2", "β₂ match", "C1"),
                               ("alpha3", "α₃ previous token", "C0")):
        rows = metrics[metrics.metric == f"dis_N{n_big}/{name}"].sort_values("step")
        axes[1].plot(dis.lr * rows.step, rows.value, color=color, label=label)
    for name in [f"alpha{i}" for i in (1, 2)] + [f"beta{i}" for i in (1, 3, 4, *range(5, 13))] \
            + [f"gamma{i}" for i in (1, 2, 4)]:
        rows = metrics[metrics.metric == f"dis_N{n_big}/{name}"].sort_values("step")
        axes[1].plot(dis.lr * rows.step, rows.value, color="grey", lw=0.5, alpha=0.6)
    axes[1].axhline(dis.rise_level, color="grey", lw=0.6, ls=":")
    axes[1].set_xlabel("time (lr · steps)")
    axes[1].set_ylabel(f"coordinate (N = {n_big})")
    axes[1].legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "disentangled_dynamics"),
                    "caption": "Disentangled model, population gradient descent from zero: "
                               "plateau then abrupt drop for every N (grey: the emergence "
                               "threshold); right: the 19 coordinates for the largest N — "
                               "γ₃, β₂ and α₃ grow in that order, the other 16 (grey) stay "
                               "small."})
    fig, (ax,) = figure(1, width=5.0)
    n_arr = np.array([t["n"] for t in times], float)
    for key, label, color in (("t_icl", "t_ICL (loss ≤ ½ L(0))", "C3"),
                              ("t_alpha3", "α₃ rise", "C0"), ("t_beta2", "β₂ rise", "C1"),
                              ("t_gamma3", "γ₃ rise", "C2")):
        ax.plot(n_arr, [t[key] for t in times], "o-", color=color, label=label)
    t_icl = np.array([t["t_icl"] for t in times])
    if np.all(np.isfinite(t_icl)):
        ax.plot(n_arr, t_icl[-1] * (n_arr / n_arr[-1]) ** 2, "--", color="grey", label="∝ N²")
        ax.plot(n_arr, t_icl[-1] * (n_arr / n_arr[-1]), ":", color="grey", label="∝ N")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context pairs N")
    ax.set_ylabel("time (lr · steps)")
    ax.set_title(f"slope of t_ICL: {dis_info['slope']:.2f} (largest {dis.slope_points} N), "
                 f"{dis_info['slope_all']:.2f} (all)", fontsize=8)
    ax.legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "disentangled_emergence"),
                    "caption": "Emergence time of the disentangled model against N (log-log), "
                               "with the rise times of γ₃, β₂, α₃; one deterministic run per "
                               "N (zero initialisation, exact population loss)."})
    fig, (ax,) = figure(1, width=5.0)
    steps = np.arange(1, dis.subspace_steps + 1)
    ax.plot(steps, np.maximum(dis_info["symmetric"]["residual"], 1e-18),
            label="symmetry-closed population")
    ax.plot(steps, np.maximum(dis_info["haar"]["residual"], 1e-18),
            label="i.i.d. Haar-rotated batch (control)")
    ax.axhline(1e-6, color="grey", lw=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖W − PW‖ / ‖W‖")
    ax.legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "subspace_residual"),
                    "caption": "Relative weight residual outside the 19-dimensional subspace "
                               "during full-model training in float64 (grey: the 1e-6 "
                               "criterion)."})
    fig, axes = figure(len(results), width=3.6)
    for ax, r in zip(axes, results, strict=True):
        for name, label, color in (("gamma3_tilde", "γ̃₃", "C2"), ("beta2_tilde", "β̃₂", "C1"),
                                   ("alpha3_tilde", "α̃₃", "C0")):
            rows = metrics[(metrics.metric == f"N{r['n']}/{name}") & (metrics.seed == 0)]
            rows = rows.sort_values("step")
            scale = float(np.abs(rows.value).max()) or 1.0
            ax.plot(rows.step, rows.value / scale, color=color, label=label)
        rows = metrics[(metrics.metric == f"N{r['n']}/accuracy") & (metrics.seed == 0)]
        ax.plot(rows.sort_values("step").step, rows.sort_values("step").value, color="k",
                lw=0.8, ls="--", label="accuracy")
        ax.set_title(f"standard model, N = {r['n']}", fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel("progress measure / max |·|")
    axes[0].legend(fontsize=7)
    figures.append({"svg": save_figure(fig, folder, "progress_measures"),
                    "caption": "Progress measures α̃₃, β̃₂, γ̃₃ of the standard transformer "
                               "(seed 0, each divided by its largest magnitude) with the "
                               "query accuracy."})
    return figures


RECIPE = register(Recipe(
    name="induction-heads",
    description="Induction heads form abruptly on the minimal in-context task; the disentangled "
                "model stays in a 19-dim subspace and emerges in Θ(N²) (Olsson et al. 2022; "
                "Musat et al. 2025)",
    paper=PAPER, config_type=InductionConfig, full=full_config, quick=quick_config, run=run))
