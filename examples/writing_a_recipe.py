"""A new recipe end to end, in one file (the walk-through of docs/writing-a-recipe.md).

    python examples/writing_a_recipe.py [OUT]

Claim: with label noise σ, a one-layer linear self-attention trained on in-context
regression still matches one step of gradient descent with the best step size, whose
optimum shrinks as the noise grows (the step trades fitting the context for averaging out
the noise). Check: the hand-built construction equals that GD step.
"""

import sys
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import pandas as pd

import iclab
from iclab.engine import OptimConfig, TrainConfig, regression_problem
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.models import LSATransformer, LSATransformerConfig
from iclab.report import figure, plot_metric_by_seed
from iclab.solvers import gd_construction, gd_predict, tune_gd_lr
from iclab.tasks import LinearRegressionTask, to_tokens

# -- spec: what is claimed and checked, read from the measured tables -------------------
CLAIMS = [
    Claim("matches_gd", "a trained 1-layer LSA matches one tuned GD step on noisy regression: "
          "|L_TF / L_GD − 1|", lambda r: r["seeds"].loss / r.scalar("gd", "loss"), "<=", 0.05,
          transform=lambda m: abs(m - 1)),
]
CHECKS = [
    Claim("construction_is_gd", "the construction equals the GD step: max |Δŷ|",
          lambda r: r.scalar("gd", "construction_max_abs_diff"), "<=", 1e-5),
]


@dataclass(frozen=True)
class NoisyConfig:
    task: LinearRegressionTask = field(default_factory=lambda: LinearRegressionTask(
        d=5, n_context=10, noise_std=0.5))
    model: LSATransformerConfig = field(default_factory=LSATransformerConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(clip_norm=0.001))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=512,
                                                                   seeds=2))
    eval_tasks: int = 2000


# -- experiment: what is trained ----------------------------------------------------
def experiment(config: NoisyConfig) -> list[Job]:
    batch = config.task.sample_batch(jax.random.key(5), config.eval_tasks)
    model = config.model.resolve(config.task.d + 1)
    init = lambda key: LSATransformer(model, key=key)
    return [Job("", regression_problem(config.task, init), config.optim, config.train,
                eval_data=batch)]


# -- measurement: named tables, nothing else ----------------------------------------
def measure(config: NoisyConfig, trained) -> dict[str, pd.DataFrame]:
    job = trained[""]
    batch = job.eval_data
    lr, loss = tune_gd_lr(batch, steps=1)
    gd = jax.vmap(gd_predict, in_axes=(0, None))(batch, lr)
    construction = jax.vmap(gd_construction(config.task.d, config.task.n_context, lr))(
        jax.vmap(to_tokens)(batch))
    return {"gd": pd.DataFrame([{"lr": lr, "loss": loss, "construction_max_abs_diff":
                                 float(jnp.max(jnp.abs(construction - gd)))}]),
            "seeds": pd.DataFrame({"seed": job.seeds, "loss": job.final["test_loss"]})}


def plot_loss(r):
    fig, (ax,) = figure(1, width=5)
    plot_metric_by_seed(ax, r.metrics, "test_loss", "trained LSA")
    ax.axhline(r.scalar("gd", "loss"), color="C3", ls="--", label="1 GD step, tuned η")
    ax.legend()
    return fig


RECIPE = Recipe(
    name="noisy-icl-gd", title="One GD step on noisy in-context regression",
    description="a 1-layer LSA matches one tuned GD step with label noise",
    paper="von Oswald et al. 2023 (a variant)", config_type=NoisyConfig, full=NoisyConfig,
    quick=NoisyConfig, experiment=experiment, measure=measure, claims=CLAIMS, checks=CHECKS,
    figures=[Figure("loss", "Test loss against one tuned GD step.", plot_loss)],
    sections=[Section("Per seed", table="seeds"), Section("GD", table="gd")])


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "runs"
    run = iclab.run(RECIPE, quick=True, out=out)
    print(run.claims[["id", "measured", "criterion", "passed"]].to_string(index=False))
    print(run.checks[["id", "measured", "passed"]].to_string(index=False))
    iclab.rebuild_report(run.path, recipe=RECIPE)  # a recipe outside the registry: pass it
    print(f"report: {run.path / 'report.html'}")
