"""icl-gd: "Transformers learn in-context by gradient descent" (von Oswald et al., ICML 2023).

What is trained: a single linear self-attention layer (1 head, key size 11, no softmax,
LayerNorm or MLP) on in-context linear regression, d = N = 10: x ~ U(−0.5, 0.5)
(``input_range=1``), w ~ N(0, I), no label noise; Adam(1e-3, b2 = 0.98) after a 0.001
global-norm clip, batch 2048 fresh tasks, init VarianceScaling(0.002), 5000 steps
(the reference notebook's settings).

What is measured, on 10,000 held-out tasks: the loss against one step of gradient
descent with the optimal learning rate η* (tuned, as in the reference, on the evaluation
tasks themselves: the strictest comparison for the trained model); the predictions and
the sensitivities ∂ŷ/∂x_q against GD's; the weight products W_KQ, W_PV against the
hand-built GD construction up to the scale symmetry, and the construction itself against
GD; an input-scale sweep out of distribution.

Standard tokens (``standard``, ``--set standard.enabled=true``; the reference notebook
``normal_token_construct``): x_j and (0, …, 0, y_j) as separate tokens with sinusoidal
positions concatenated, two non-recurrent layers with softmax in layer 1
(``StandardTokenLSA``). Layer 1 has to copy each token's neighbour before layer 2 can do
the GD step; measured: the loss against one GD step and layer 1's token sensitivities
(``instruments.token_sensitivities``).

Bring your own model: ``iclab.run("icl-gd", quick=True, model=factory)`` trains
``factory(key, d=d, n_context=N)`` (a tokens → ŷ module, tokens of shape (N + 1, d + 1));
the weight and interpolation claims apply to linear ``LSATransformer`` models (no softmax,
LayerNorm or MLP: the construction is a linear head) and are left out for others.

Variants (``--set model.softmax=true``, ``model.heads=2``, ``model.layer_norm=true``):
which claims still hold is measured in ``docs/results/icl-gd.md``.
"""

import dataclasses
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from iclab.engine import OptimConfig, TrainConfig, regression_problem
from iclab.framework import (
    Claim,
    Figure,
    Job,
    Recipe,
    Section,
    matrix_table,
    reference,
)
from iclab.instruments import (
    effective_lr,
    interpolated_head,
    normalise_scale,
    prediction_difference,
    query_loss,
    query_sensitivity,
    sensitivity_agreement,
    token_sensitivities,
    weight_alignment,
)
from iclab.models import (
    LinearSelfAttention,
    LSATransformer,
    LSATransformerConfig,
    StandardTokenLSA,
)
from iclab.recipes.analysis.icl_gd import (
    plot_agreement,
    plot_input_scale,
    plot_loss,
    plot_standard,
    plot_weights,
)
from iclab.solvers import gd_construction, gd_predict, gd_weights, tune_gd_lr
from iclab.tasks import LinearRegressionTask, RegressionEvalConfig, to_tokens

PAPER = ("von Oswald, Niklasson, Randazzo, Sacramento, Mordvintsev, Zhmoginov, Vladymyrov: "
         "Transformers learn in-context by gradient descent, ICML 2023 (arXiv 2212.07677).")
REF_RUN = "reference notebook, 5000 steps, seed 0"
REF_STANDARD = ("reference notebook normal_token_construct, 10k steps, seed 0, run here; "
                "another evaluation set")

# -- spec: every claim is the mean over seeds of the per-seed values in table "seeds" ----
CLAIMS = [
    Claim("loss_vs_gd", "LSA loss within 2 % of 1-step GD at optimal η: |mean L_TF/L_GD − 1|",
          lambda r: r["seeds"].loss_ratio, "<=", 0.02, transform=lambda m: abs(m - 1.0),
          reference=reference(0.001, f"{REF_RUN}: 0.20488 vs 0.20469")),
    Claim("pred_diff", "predictions agree: ‖ŷ_TF − ŷ_GD‖ / ‖ŷ_GD‖",
          lambda r: r["seeds"].pred_diff_rel, "<=", 0.05,
          reference=reference("mean |Δŷ| 0.018–0.023", REF_RUN)),
    Claim("sens_cos", "sensitivities agree: cos(∂ŷ_TF/∂x_q, ∂ŷ_GD/∂x_q)",
          lambda r: r["seeds"].sens_cos, ">=", 0.99, reference=reference(0.999, REF_RUN)),
    Claim("weights_cos", "weights match the construction: cos(W_KQ ⊗ W_PV, construction)",
          lambda r: r["seeds"].product_cos, ">=", 0.99,
          when=lambda r: r["seeds"].product_cos.notna().all()),  # models with LSA weights
    Claim("interpolation_flat", "the midpoint of the trained and the constructed weights (after "
          "the scale symmetry) has GD's loss: |L((W_TF + W_GD)/2) / L_GD − 1|",
          lambda r: r["seeds"].interpolated_ratio, "<=", 0.02,
          transform=lambda m: abs(m - 1.0),
          reference=reference(0.0001, f"{REF_RUN}: interpolated 0.20471 vs GD 0.20469"),
          when=lambda r: r["seeds"].interpolated_ratio.notna().all()),
    Claim("standard_tokens_gd", "standard tokens (x_j and y_j in separate tokens, sinusoidal "
          "positions): the 2-layer model reaches one GD step's loss, L_TF / L_GD",
          lambda r: r["standard"].loss_ratio, "<=", 1.05,
          reference=reference("0.2033 vs 0.2047", REF_STANDARD),
          when=lambda r: "standard" in r.tables),
    Claim("layer1_copies", "… because layer 1 copies each token's neighbour: ‖∂t_j/∂e_{j+1}‖ / "
          "‖∂t_j/∂e_other‖ of layer 1's output", lambda r: r["standard"].copy_ratio, ">=", 5.0,
          reference=reference("1.01 / 0.06", REF_STANDARD),
          when=lambda r: "standard" in r.tables),
]
CHECKS = [
    Claim("construction_exact", "the GD construction = 1 GD step: max |ŷ_constr − ŷ_GD|",
          lambda r: r.scalar("gd", "construction_max_abs_diff"), "<=", 1e-5,
          reference=reference(4.2e-6, "reference notebook cells 16–17, 100 layers")),
]


FIGURES = [
    Figure("loss", "Test loss vs step (thin: seeds, thick: mean) against one GD step with the "
           "optimal learning rate on the same tasks.", plot_loss),
    Figure("agreement", "Agreement of the trained model with GD during training.",
           plot_agreement),
    Figure("weights", "Weight products after removing the scale symmetry (W_KQ divided by the "
           "mean of its x-diagonal, W_PV multiplied by it).", plot_weights,
           when=lambda r: "trained_kq" in set(r["weights"].name)),
    Figure("ood_input_scale", "Out of distribution: both learners degrade alike when the input "
           "scale moves away from training (α = 1).", plot_input_scale),
    Figure("standard_tokens", "Standard tokens: the 2-layer model's loss against one GD step "
           "(left) and how much layer 1's output at token j depends on token j + 1, on "
           "itself and on the others (right).", plot_standard,
           when=lambda r: "standard" in r.tables),
]
SECTIONS = [
    Section("Per-seed results",
            lambda r: "Each claim above is the mean over seeds of the per-seed values below. "
            f"GD: η* = {r.scalar('gd', 'lr'):.4f} (η*/N = "
            f"{r.scalar('gd', 'lr') / r.scalar('gd', 'n_context'):.4f}, reference 0.600), "
            f"loss {r.scalar('gd', 'loss'):.5f}. The effective η of a trained layer is "
            "N·(−c·W_PV[y,y]) with c the mean x-diagonal of W_KQ (reference: η/N = 0.608).",
            "seeds"),
    Section("Input-scale sweep", table="input_scale"),
    Section("Loss along the line from the trained (t = 0) to the constructed (t = 1) weights, "
            "after the scale symmetry", table="interpolation"),
]


@dataclass(frozen=True)
class StandardTokenConfig:
    """The standard-token experiment (the reference notebook ``normal_token_construct``):
    tokens x_j and (0, …, 0, y_j) apart, 10 sinusoidal position coordinates concatenated,
    two non-recurrent layers, softmax in layer 1, Adam 1e-3 after a global-norm clip of
    10, init 0.02 / 2, batch 2048, 10,000 steps.

    Args:
        enabled: train it (off in both modes: ``--set standard.enabled=true``; about 5
            CPU minutes per seed).
        copy_tasks: evaluation tasks on which layer 1's token sensitivities are measured.
    """

    enabled: bool = False
    model: LSATransformerConfig = field(default_factory=lambda: LSATransformerConfig(
        layers=2, recurrent=False, first_layer_softmax=True, positions=10, init_scale=0.01))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(clip_norm=10.0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=10_000, batch_size=2048, eval_every=500, seeds=1))
    copy_tasks: int = 256


@dataclass(frozen=True)
class IclGdConfig:
    task: LinearRegressionTask = field(default_factory=LinearRegressionTask)
    model: LSATransformerConfig = field(default_factory=LSATransformerConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(clip_norm=0.001))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(seeds=5))
    eval: RegressionEvalConfig = field(default_factory=RegressionEvalConfig)
    standard: StandardTokenConfig = field(default_factory=StandardTokenConfig)


def full_config() -> IclGdConfig:
    """The reference notebook's settings (5000 steps), with 5 seeds. The standard-token
    experiment is a stated mode of its own (``--set standard.enabled=true``): its 10,000
    steps at batch 2048 take 5 CPU minutes per seed, more than the rest of the full mode."""
    return IclGdConfig()


def quick_config() -> IclGdConfig:
    """Same model, task and optimizer; 1500 steps and 3 seeds (the loss reaches the
    GD level by about step 500 in the reference run)."""
    return IclGdConfig(train=TrainConfig(steps=1500, seeds=3))


# -- experiment ---------------------------------------------------------------------
def experiment(config: IclGdConfig, model=None) -> list[Job]:
    d = config.task.d
    eval_batch = config.task.sample_batch(jax.random.key(config.eval.seed), config.eval.tasks)
    lr, gd_loss = tune_gd_lr(eval_batch, steps=1)
    gd_preds = jax.vmap(gd_predict, in_axes=(0, None))(eval_batch, lr)
    gd_sens = jax.vmap(gd_weights, in_axes=(0, 0, None, None))(eval_batch.x, eval_batch.y, lr, 1)
    if model is None:
        model_config = config.model.resolve(d + 1)
        init = lambda key: LSATransformer(model_config, key=key)
    else:
        init = lambda key: model(key, d=d, n_context=config.task.n_context)

    def evaluate(m, eval_data):
        batch, preds_gd, sens_gd = eval_data
        tokens = jax.vmap(to_tokens)(batch)
        preds = jax.vmap(m)(tokens)
        sens = jax.vmap(lambda t: query_sensitivity(m, t, d))(tokens)
        diff = prediction_difference(preds, preds_gd)
        agree = sensitivity_agreement(sens, sens_gd)
        return {"test_loss": query_loss(preds, batch.y_query),
                "pred_diff_rel": diff["relative"], "pred_diff_abs": diff["mean_abs"],
                "sens_cos": agree["cos"], "sens_l2": agree["l2"]}

    jobs = [Job("", regression_problem(config.task, init, evaluate), config.optim, config.train,
                eval_data=(eval_batch, gd_preds, gd_sens), label="icl-gd",
                info={"gd_lr": lr, "gd_loss": gd_loss})]
    if config.standard.enabled:
        jobs.append(standard_job(config, eval_batch, gd_loss))
    return jobs


def layer1_sensitivities(model: StandardTokenLSA, batch) -> dict:
    """``token_sensitivities`` of layer 1's output on the standard tokens, mean over tasks."""
    def one(example):
        tokens = StandardTokenLSA.layout(to_tokens(example))
        return token_sensitivities(lambda t: model.stack.residual_stream(t)[1], tokens)

    return {k: v.mean() for k, v in jax.vmap(one)(batch).items()}


def standard_job(config: IclGdConfig, eval_batch, gd_loss: float) -> Job:
    """The standard-token experiment on the same task and evaluation tasks."""
    std, d = config.standard, config.task.d
    copy_batch = jax.tree.map(lambda a: a[:std.copy_tasks], eval_batch)

    def evaluate(m, data):
        batch, copies = data
        preds = jax.vmap(m)(jax.vmap(to_tokens)(batch))
        sens = layer1_sensitivities(m, copies)
        return {"test_loss": query_loss(preds, batch.y_query), "copy_next": sens["next"],
                "copy_own": sens["own"], "copy_other": sens["other"]}

    init = lambda key: StandardTokenLSA(std.model, d, key=key)
    return Job("standard", regression_problem(config.task, init, evaluate), std.optim,
               std.train, eval_data=(eval_batch, copy_batch), label="standard tokens",
               info={"gd_loss": gd_loss})


# -- measurement --------------------------------------------------------------------
def lsa_head(model) -> LinearSelfAttention | None:
    """Layer 1's attention of an ``LSATransformer`` whose weights the GD construction can
    be compared with: linear attention without LayerNorm or MLP. None for another model
    (a softmax, LayerNorm or MLP variant, or a model of the user's)."""
    if not isinstance(model, LSATransformer):
        return None
    block = model.blocks[0]
    if block.attn.softmax or block.ln_attn is not None or block.mlp is not None:
        return None
    return block.attn


def measure(config: IclGdConfig, trained) -> dict[str, pd.DataFrame]:
    d, n = config.task.d, config.task.n_context
    job = trained[""]
    lr, gd_loss = job.info["gd_lr"], job.info["gd_loss"]
    eval_batch, gd_preds, _ = job.eval_data
    construction = gd_construction(d, n, lr)
    tokens = jax.vmap(to_tokens)(eval_batch)
    construction_diff = float(jnp.max(jnp.abs(jax.vmap(construction)(tokens) - gd_preds)))
    seeds = pd.DataFrame({"seed": job.seeds, **{k: job.final[k] for k in
                          ("test_loss", "pred_diff_rel", "pred_diff_abs", "sens_cos")}})
    seeds["loss_ratio"] = seeds.test_loss / gd_loss
    construction_attn = construction.blocks[0].attn
    for column in ("kq_cos", "pv_cos", "product_cos", "effective_lr", "interpolated_ratio"):
        seeds[column] = np.nan
    path = []
    for i, model in enumerate(job.models):
        attn = lsa_head(model)
        if attn is None:
            continue
        for key, value in weight_alignment(attn, construction_attn, d).items():
            seeds.loc[i, key] = float(value)
        seeds.loc[i, "effective_lr"] = float(effective_lr(attn, d, n))
        if attn.qk().shape[0] == 1 and len(model.blocks) == 1:  # one head, one layer
            for t in INTERPOLATION:
                mid = eqx.tree_at(lambda m: m.blocks[0].attn, model,
                                  interpolated_head(attn, construction_attn, d, t))
                loss = float(query_loss(jax.vmap(mid)(tokens), eval_batch.y_query))
                path.append({"seed": job.seeds[i], "t": t, "loss": loss,
                             "ratio_to_gd": loss / gd_loss})
                if t == 0.5:
                    seeds.loc[i, "interpolated_ratio"] = loss / gd_loss
    tables = {"gd": pd.DataFrame([{"lr": lr, "loss": gd_loss, "n_context": n,
                                   "construction_max_abs_diff": construction_diff}]),
              "seeds": seeds, "input_scale": input_scale_sweep(config, job.models, lr),
              "interpolation": pd.DataFrame(path, columns=["seed", "t", "loss",
                                                          "ratio_to_gd"])}
    ckq, cpv = normalise_scale(construction_attn.qk()[0], construction_attn.pv()[0], d)
    matrices = {"construction_kq": ckq, "construction_pv": cpv}
    if lsa_head(job.models[0]) is not None:
        attn = lsa_head(job.models[0])
        matrices["trained_kq"], matrices["trained_pv"] = normalise_scale(attn.qk()[0],
                                                                         attn.pv()[0], d)
    tables["weights"] = matrix_table(matrices)
    if "standard" in trained:
        std = trained["standard"]
        final = {k: np.asarray(std.final[k]) for k in ("test_loss", "copy_next", "copy_own",
                                                        "copy_other")}
        tables["standard"] = pd.DataFrame({"seed": std.seeds, **final,
                                           "loss_ratio": final["test_loss"] / gd_loss,
                                           "copy_ratio": final["copy_next"]
                                           / final["copy_other"]})
    return tables


SCALES = tuple(np.linspace(0.5, 2.0, 16))
INTERPOLATION = (0.0, 0.25, 0.5, 0.75, 1.0)


def input_scale_sweep(config: IclGdConfig, models, lr: float, scales=SCALES) -> pd.DataFrame:
    """Loss of the trained models (mean over seeds) and of GD(η*) when x ~ U(−α r/2, α r/2)."""
    rows = []
    for i, alpha in enumerate(scales):
        task = dataclasses.replace(config.task,
                                   input_range=float(alpha * config.task.input_range))
        batch = task.sample_batch(jax.random.key(10_000 + i), config.eval.ood_tasks)
        tokens = jax.vmap(to_tokens)(batch)
        model_losses = [float(query_loss(jax.vmap(m)(tokens), batch.y_query)) for m in models]
        gd = float(query_loss(jax.vmap(gd_predict, in_axes=(0, None))(batch, lr), batch.y_query))
        rows.append({"alpha": float(alpha), "trained_lsa": float(np.mean(model_losses)),
                     "gd": gd})
    return pd.DataFrame(rows)


RECIPE = Recipe(
    name="icl-gd", title="Transformers learn in context by gradient descent",
    description="1-layer linear self-attention trained on in-context regression = one GD step "
                "(von Oswald et al. 2023)",
    paper=PAPER, config_type=IclGdConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, checks=CHECKS, figures=FIGURES,
    sections=SECTIONS)
