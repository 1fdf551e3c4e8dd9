"""GD++: gradient descent with an input preconditioning step (curvature correction).

Per layer t every token gets x_i ← (I + ω_xx,t Σ) x_i and y_i ← y_i + ω_yx,t αᵀx_i
(Σ = Σ_j x_j x_jᵀ, α = Σ_j y_j x_j over the context, both from the tokens before
the update), so later GD steps act on progressively whitened inputs
(von Oswald et al. 2023, §4 "GD++"; ``DiagonalLSA`` with ω_xy = ω_yy = 0).

Step sizes are tuned as in the reference code: a line search over η with the
preconditioning tied to it, γ = −ω_xx = η/N², then Adam on all (ω_xx, ω_yx)
pairs (one pair shared by all layers for a recurrent stack, one per layer
otherwise) on fresh tasks.
"""

import jax
import jax.numpy as jnp

from iclab.engine import OptimConfig, TrainConfig, Trainer, regression_loss, regression_problem
from iclab.models import DiagonalLSA
from iclab.solvers._line_search import grid_then_golden
from iclab.tasks import LinearRegressionTask, RegressionExample


def tune_gdpp_tied(batch: RegressionExample, steps: int) -> tuple[float, float, float]:
    """Line search over η for GD++ with γ = η/N² tied to it.

    Returns:
        (η, γ, loss on ``batch``).
    """
    n = batch.x.shape[1]
    loss = lambda lr, b: regression_loss(DiagonalLSA.gdpp(lr, lr / n**2, n, steps), b)
    cov = jnp.einsum("bnd,bne->bde", batch.x, batch.x) / n
    lam = float(jnp.mean(jnp.linalg.eigvalsh(cov)[:, -1]))
    lr, value = grid_then_golden(loss, 0.0, 4.0 / lam, batch)
    return lr, lr / n**2, value


def fit_gdpp(task: LinearRegressionTask, batch: RegressionExample, steps: int,
             recurrent: bool = True, adam_steps: int = 1000, batch_size: int = 2048,
             lr: float = 1e-3, seed: int = 0) -> DiagonalLSA:
    """GD++ with tuned step sizes: ``tune_gdpp_tied`` on ``batch``, then ``adam_steps``
    of Adam(lr, b2 = 0.999) on fresh tasks of ``task`` (the reference's
    ``pre_train_gd_hps``). Returns the tuned model."""
    eta, gamma, _ = tune_gdpp_tied(batch, steps)
    n = task.n_context
    pair = jnp.array([-gamma, 0.0, -eta / n, 0.0])
    omegas = jnp.tile(pair, (1 if recurrent else steps, 1))
    init = lambda key: DiagonalLSA(omegas, steps, parametrization="gdpp")
    if adam_steps == 0:
        return init(None)
    trainer = Trainer(regression_problem(task, init), OptimConfig(name="adam", lr=lr, b2=0.999),
                      TrainConfig(steps=adam_steps, batch_size=batch_size,
                                  eval_every=adam_steps, seeds=1, seed=seed))
    state = trainer.fit(batch)
    tuned = trainer.model(jax.tree.map(lambda a: a[0], state.params))
    # Keep Adam's refinement only if it helps on the tuning batch.
    if float(regression_loss(tuned, batch)) <= float(regression_loss(init(None), batch)):
        return tuned
    return init(None)
