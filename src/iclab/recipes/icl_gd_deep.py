"""icl-gd-deep: deep linear self-attention vs K steps of GD and of GD++ (von Oswald et al. 2023).

What is trained (arXiv 2212.07677, §4 and Fig. 3; the reference notebook with
``num_layers = K``, recurrent): for each depth K, a K-layer LSA on in-context linear
regression (d = N = 10), with the reference's rules by depth: init VarianceScaling(0.002/K),
Adam lr 1e-3 (5e-4 for K > 3), global-norm clip 0.001 for K ≤ 2 and 10 above. The
reference also clips activations at 10 for K > 3; we do not (no instability was seen up
to K = 5).

Baselines: K steps of GD with η tuned by line search on the evaluation tasks, and K steps
of GD++ (GD with a learned input preconditioning, "curvature correction") with (γ, η)
tuned by the tied line search then Adam, as in the reference.

What is measured: the trained model's loss against both, the agreement of its
sensitivities ∂ŷ/∂x_q with each, the read-out after every layer, and behavioural matching
(SPD / ILWD, Akyürek et al. 2023) against GD (1 and K steps), GD++, tuned ridge and OLS.
Reference numbers for K = 3 (recurrent, 5000 steps): GD 0.1338, GD++ 0.0786, trained LSA
0.0799; cos(TF, GD++) 0.998 vs cos(TF, GD) 0.966.

Both weight sharings are trained at every K, side by side (``recurrence``): recurrent (one
block applied K times) and non-recurrent (K blocks), each against its own GD++ (shared or
per-step (γ, η)). Claims per K and sharing: the LSA beats K GD steps, comes within 10 % of
K GD++ steps, its sensitivities are closer to GD++'s, and (K ≥ 2, recurrent) the
read-outs after its layers follow GD++'s trajectory rather than GD's (the reference's
K = 3 read-outs: TF 1.20 / 0.246 / 0.080, GD++ 1.41 / 0.269 / 0.079, GD 0.205 / 0.155 /
0.134).

Bring your own model: ``model(key, d=d, depth=K, n_context=N)`` for every K.
"""

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.config import ConfigError, check_positive_int
from iclab.engine import (
    OptimConfig,
    TrainConfig,
    map_concurrently,
    regression_loss,
    regression_problem,
)
from iclab.framework import Claim, Figure, Job, Recipe, Section, reference
from iclab.instruments import (
    implicit_linear_weights,
    implicit_weight_difference,
    layer_losses,
    query_sensitivity,
    sensitivity_agreement,
    squared_prediction_difference,
)
from iclab.models import LayerReadoutModel, LSATransformer, LSATransformerConfig
from iclab.recipes.analysis.icl_gd_deep import (
    per_depth,
    per_depth_table,
    plot_behaviour,
    plot_layer_readouts,
    plot_learning_curves,
    plot_loss_vs_depth,
    readout_gap,
)
from iclab.solvers import (
    fit_gdpp,
    gd_weights,
    ols_weights,
    ridge_weights,
    tune_const_ridge,
    tune_gd_lr,
    tune_gdpp_tied,
)
from iclab.solvers import gd_loss as gd_loss_fn
from iclab.tasks import LinearRegressionTask, RegressionEvalConfig, to_tokens

PAPER = ("von Oswald, Niklasson, Randazzo, Sacramento, Mordvintsev, Zhmoginov, Vladymyrov: "
         "Transformers learn in-context by gradient descent, ICML 2023 (arXiv 2212.07677).")
REF_K3 = "reference notebook, 3 layers recurrent, 5000 steps"


# -- spec: claims, figures and report sections -----------------------------------------
def claims(config) -> list[Claim]:
    """Three claims per depth K and weight sharing; the reference's K = 3 values where K = 3
    and recurrent; the read-out trajectory claim for recurrent models."""
    rows = []
    for rec in config.families():
        sfx, kind = ("", "") if rec else ("_nr", " non-recurrent")
        for k in config.depths:
            k3 = k == 3 and rec  # the reference notebook's setting
            gdpp = lambda r, k=k, rec=rec: r.scalar("depths", "gdpp_loss", depth=k,
                                                    recurrent=rec)
            rows += [
                Claim(f"beats_gd_K{k}{sfx}", f"{k}-layer{kind} LSA beats {k} GD steps: "
                      "L_TF / L_GD", lambda r, k=k, rec=rec: per_depth(r, k, rec).loss
                      / r.scalar("depths", "gd_loss", depth=k, recurrent=rec), "<", 1.0,
                      reference=reference(round(0.0799 / 0.1338, 3), REF_K3) if k3 else None),
                Claim(f"near_gdpp_K{k}{sfx}", f"{k}-layer{kind} LSA close to {k} GD++ steps: "
                      "L_TF / L_GD++", lambda r, k=k, rec=rec, g=gdpp: per_depth(r, k, rec).loss
                      / g(r), "<=", 1.10,
                      reference=reference(round(0.0799 / 0.0786, 3), REF_K3) if k3 else None),
                Claim(f"closer_to_gdpp_K{k}{sfx}", f"{kind.strip() or 'its'} sensitivities "
                      "closer to GD++ than to GD: cos(TF, GD++) − cos(TF, GD)",
                      lambda r, k=k, rec=rec: per_depth(r, k, rec).cos_gdpp
                      - per_depth(r, k, rec).cos_gd, ">", 0.0,
                      reference=reference(round(0.998 - 0.966, 3), REF_K3) if k3 else None),
            ]
            # The trajectory inside the model, every layer's read-out: for recurrent models,
            # whose GD++ shares one (γ, η) across layers (non-recurrent GD++ is fitted for
            # its last read-out only, its intermediate ones are not a reference).
            if k >= 2 and rec:
                rows.append(Claim(
                    f"readouts_follow_gdpp_K{k}", "the read-outs after layers 1..K follow "
                    "GD++'s, not GD's: mean over layers of |log(L_TF^l / L_GD++^l)| minus "
                    "that of |log(L_TF^l / L_GD^l)| (TF: mean over seeds)",
                    lambda r, k=k: readout_gap(r, k), "<", 0.0,
                    reference=reference(REF_K3_READOUT_GAP, REF_K3) if k3 else None))
    return rows


# The reference notebook's K = 3 read-outs after layers 1, 2, 3 (``icl_gd.md``): TF 1.204,
# 0.246, 0.0799; GD++ 1.405, 0.269, 0.0786; GD 0.2048, 0.1550, 0.1338.
REF_K3_READOUT_GAP = round(float(
    np.mean(np.abs(np.log(np.array([1.204, 0.246, 0.0799]) / [1.405, 0.269, 0.0786])))
    - np.mean(np.abs(np.log(np.array([1.204, 0.246, 0.0799]) / [0.2048, 0.1550, 0.1338])))),
    3)


FIGURES = [
    Figure("loss_vs_depth", "Final test loss against depth K: trained K-layer LSA, K steps of "
           "GD and K steps of GD++.", plot_loss_vs_depth),
    Figure("layer_readouts", "Loss of the read-out after each layer inside one model: the "
           "trained LSA (mean over seeds), K steps of GD and of GD++ (claim "
           "readouts_follow_gdpp).", plot_layer_readouts),
    Figure("learning_curves", "Test loss during training (thin: seeds, thick: mean).",
           plot_learning_curves),
    Figure("behaviour", "Which algorithm does the trained model behave like? SPD and ILWD "
           "(Akyürek et al. 2023) to each reference learner, as depth grows (lower = closer).",
           plot_behaviour),
]
SECTIONS = [
    Section("Behavioural matching (Akyürek et al. 2023)",
            "SPD and ILWD between the trained K-layer model (mean over seeds) and reference "
            "learners on 2000 evaluation tasks; implicit weights are least-squares fits of "
            "each learner's predictions on 2d probe inputs.", "behaviour"),
    Section("Per-depth results", "Losses on the evaluation tasks; TF values are means over "
            "seeds.", per_depth_table),
    Section("Per seed", table="seeds"),
]


@dataclass(frozen=True)
class GDPPConfig:
    """Tuning of the GD++ baseline (the reference's ``pre_train_gd_hps``).

    Args:
        adam_steps: Adam steps on (ω_xx, ω_yx) after the tied line search.
        batch_size: fresh tasks per Adam step (reference: 512).
        lr: Adam learning rate (reference: 1e-3, b2 = 0.999).
    """

    adam_steps: int = 1000
    batch_size: int = 512
    lr: float = 1e-3

    def __post_init__(self):
        check_positive_int("gdpp.batch_size", self.batch_size)
        if self.adam_steps < 0:
            raise ConfigError("gdpp.adam_steps", self.adam_steps, "an integer >= 0")


@dataclass(frozen=True)
class IclGdDeepConfig:
    """Depths to compare, and the shared task / model / training settings.

    ``model.layers`` is ignored: each depth K in ``depths`` is trained separately,
    with init scale 0.002/K and the reference's optimizer rule for K.

    Args:
        depths: the depths K compared (one model each).
        recurrence: the weight sharings trained at every depth, side by side: true (one
            block applied K times, the reference's ``deq``), false (K separate blocks);
            empty: ``model.recurrent`` alone.
        task: the regression task.
        model: the LSA block (``layers`` ignored; ``recurrent`` too when ``recurrence``
            is given).
        optim: the optimiser (the reference's rule for K is applied per depth).
        train: steps, batch and seeds.
        gdpp: the GD++ baseline's fit.
        eval: the evaluation tasks.
    """

    depths: tuple[int, ...] = (2, 3, 4, 5)
    recurrence: tuple[bool, ...] = (True, False)
    task: LinearRegressionTask = field(default_factory=LinearRegressionTask)
    model: LSATransformerConfig = field(default_factory=LSATransformerConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(clip_norm=0.001))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(seeds=3))
    gdpp: GDPPConfig = field(default_factory=GDPPConfig)
    eval: RegressionEvalConfig = field(default_factory=RegressionEvalConfig)

    def __post_init__(self):
        if not self.depths or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                                  for k in self.depths):
            raise ConfigError("depths", self.depths, "a comma-separated list of integers >= 1")
        if len(set(self.recurrence)) != len(self.recurrence):
            raise ConfigError("recurrence", self.recurrence, "true and/or false, each once")

    def families(self) -> tuple[bool, ...]:
        """The weight sharings trained: ``recurrence``, or ``model.recurrent`` alone."""
        return self.recurrence or (self.model.recurrent,)

    def optim_for(self, depth: int) -> OptimConfig:
        """The reference's rule: clip 0.001 up to 2 layers, else 10; halve lr above 3."""
        return dataclasses.replace(self.optim,
                                   clip_norm=self.optim.clip_norm if depth <= 2 else 10.0,
                                   lr=self.optim.lr if depth <= 3 else self.optim.lr / 2)

    def model_for(self, depth: int, recurrent: bool) -> LSATransformerConfig:
        config = dataclasses.replace(self.model, layers=depth, recurrent=recurrent,
                                     init_scale=self.model.init_scale / depth)
        return config.resolve(self.task.d + 1)


def full_config() -> IclGdDeepConfig:
    """K = 2..5, recurrent (the reference's ``deq`` setting) and non-recurrent, 5000
    steps, 3 seeds."""
    return IclGdDeepConfig()


def quick_config() -> IclGdDeepConfig:
    """K = 2, 3, recurrent and non-recurrent, with 3000 steps and 2 seeds."""
    return IclGdDeepConfig(depths=(2, 3), train=TrainConfig(steps=3000, seeds=2))


def tag(depth: int, recurrent: bool) -> str:
    return f"K{depth}" if recurrent else f"K{depth}-nr"


# -- experiment ---------------------------------------------------------------------
def experiment(config: IclGdDeepConfig, model=None) -> list[Job]:
    task = config.task
    eval_batch = task.sample_batch(jax.random.key(config.eval.seed), config.eval.tasks)
    # the baselines: tuned GD per depth, and GD++ per depth and family, fitted side by side
    cells = [(depth, rec) for depth in config.depths for rec in config.families()]
    tuned = dict(zip(config.depths, map_concurrently(
        lambda k: (tune_gd_lr(eval_batch, steps=k), tune_gdpp_tied(eval_batch, k)),
        config.depths), strict=True))
    fits = map_concurrently(lambda cell: fit_gdpp(
        task, eval_batch, cell[0], recurrent=cell[1], adam_steps=config.gdpp.adam_steps,
        batch_size=config.gdpp.batch_size, lr=config.gdpp.lr, seed=config.train.seed,
        tied=tuned[cell[0]][1]), cells)
    jobs = []
    for (depth, rec), gdpp in zip(cells, fits, strict=True):
        (gd_lr, gd_loss), _ = tuned[depth]
        if model is None:
            model_config = config.model_for(depth, rec)
            init = lambda key, c=model_config: LSATransformer(c, key=key)
        else:
            init = lambda key, k=depth: model(key, d=task.d, depth=k,
                                              n_context=task.n_context)
        kind = "" if rec else ", non-recurrent"
        jobs.append(Job(tag(depth, rec), regression_problem(task, init),
                        config.optim_for(depth), config.train, eval_data=eval_batch,
                        label=f"LSA, {depth} layers{kind}", cost=depth,
                        info={"gd_lr": gd_lr, "gd_loss": gd_loss, "gdpp": gdpp,
                              "recurrent": rec}))
    return jobs


# -- measurement --------------------------------------------------------------------
def sensitivities(model, batch, d: int):
    return jax.vmap(lambda t: query_sensitivity(model, t, d))(jax.vmap(to_tokens)(batch))


def measure(config: IclGdDeepConfig, trained) -> dict[str, pd.DataFrame]:
    d = config.task.d
    eval_batch = trained[tag(config.depths[0], config.families()[0])].eval_data
    references = reference_weights(eval_batch)
    depths, seeds, layers, behaviour = [], [], [], []
    for depth in config.depths:
        for rec in config.families():
            job = trained[tag(depth, rec)]
            gd_lr, gd_loss, gdpp = job.info["gd_lr"], job.info["gd_loss"], job.info["gdpp"]
            key = {"depth": depth, "recurrent": rec}
            depths.append({**key, "gd_lr": gd_lr, "gd_loss": gd_loss,
                           "gdpp_loss": float(regression_loss(gdpp, eval_batch))})
            gd_sens = jax.vmap(gd_weights, in_axes=(0, 0, None, None))(
                eval_batch.x, eval_batch.y, gd_lr, depth)
            gdpp_sens = sensitivities(gdpp, eval_batch, d)
            for seed, m in zip(job.seeds, job.models, strict=True):
                sens = sensitivities(m, eval_batch, d)
                seeds.append({**key, "seed": seed,
                              "loss": float(regression_loss(m, eval_batch)),
                              "cos_gd": float(sensitivity_agreement(sens, gd_sens)["cos"]),
                              "cos_gdpp": float(sensitivity_agreement(sens, gdpp_sens)["cos"])})
                if isinstance(m, LayerReadoutModel):
                    layers += [{**key, "learner": "trained LSA", "seed": seed,
                                "layer": i + 1, "loss": float(v)}
                               for i, v in enumerate(layer_losses(m, eval_batch))]
            layers += [{**key, "learner": "GD", "seed": -1, "layer": k,
                        "loss": float(gd_loss_fn(eval_batch, gd_lr, k))}
                       for k in range(1, depth + 1)]
            layers += [{**key, "learner": "GD++", "seed": -1, "layer": i + 1,
                        "loss": float(v)} for i, v in enumerate(layer_losses(gdpp, eval_batch))]
            for name, values in behaviour_matching(config, job.models, gdpp, gd_lr, depth,
                                                   references).items():
                behaviour.append({**key, "learner": name, **values})
    return {"depths": pd.DataFrame(depths), "seeds": pd.DataFrame(seeds),
            "layers": pd.DataFrame(layers), "behaviour": pd.DataFrame(behaviour)}


def reference_weights(batch, n: int = 2000) -> dict:
    """Weight vectors of the depth-independent reference learners on the first n tasks."""
    batch = jax.tree.map(lambda a: a[:n], batch)
    lr1, _ = tune_gd_lr(batch, steps=1)
    lam, _ = tune_const_ridge(batch)
    return {"batch": batch, "GD, 1 step": jax.vmap(gd_weights, in_axes=(0, 0, None, None))(
                batch.x, batch.y, lr1, 1),
            "ridge, tuned λ": jax.vmap(ridge_weights, in_axes=(0, 0, None))(
                batch.x, batch.y, lam),
            "OLS": jax.vmap(ols_weights)(batch.x, batch.y)}


def behaviour_matching(config, models, gdpp, gd_lr, depth, references) -> dict:
    """SPD and ILWD (Akyürek et al.) of the trained models against GD (1 and K steps),
    GD++ (K steps), tuned ridge and OLS; means over seeds."""
    batch = references["batch"]
    tokens = jax.vmap(to_tokens)(batch)
    probes = jax.random.normal(jax.random.key(123), (2 * config.task.d, config.task.d))
    implicit = lambda m: jax.vmap(lambda t: implicit_linear_weights(m, t, probes))(tokens)
    algorithms = {name: w for name, w in references.items() if name != "batch"}
    algorithms["GD, K steps"] = jax.vmap(gd_weights, in_axes=(0, 0, None, None))(
        batch.x, batch.y, gd_lr, depth)
    algorithms["GD++, K steps"] = implicit(gdpp)
    out = {}
    for name, w_alg in algorithms.items():
        preds_alg = jnp.einsum("bd,bd->b", w_alg, batch.x_query)
        spd, ilwd = [], []
        for model in models:
            spd.append(float(squared_prediction_difference(jax.vmap(model)(tokens), preds_alg)))
            ilwd.append(float(implicit_weight_difference(implicit(model), w_alg)))
        out[name] = {"spd": float(np.mean(spd)), "ilwd": float(np.mean(ilwd))}
    return out


RECIPE = Recipe(
    name="icl-gd-deep", title="Deep linear self-attention vs GD and GD++",
    description="K-layer linear self-attention beats K steps of GD and matches GD++ "
                "(von Oswald et al. 2023)",
    paper=PAPER, config_type=IclGdDeepConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=claims, figures=FIGURES, sections=SECTIONS)
