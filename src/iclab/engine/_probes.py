"""Training-dynamics instruments logged along any run, switched on by config.

``train.probes.every = K`` (``--set train.probes.every=100`` on any recipe) evaluates the
chosen instruments every K steps, at the evaluations, on one fixed probe batch drawn once
from the problem's sampler (key ``probes.seed``), for every seed, inside one jitted and
seed-vmapped program. Metrics are written like the others (``{tag}/probe/...``):

- ``probe/loss``: the loss on the probe batch (the fixed-batch trajectory loss);
- ``probe/grad_norm``, ``probe/update_ratio``: global ‖∇L‖ and ‖Δθ‖/‖θ‖ of the step the
  optimiser would take on the probe batch; with ``norms``, per array
  ``probe/{name}/norm``, ``/rms``, ``/grad_norm``, ``/update_norm``, ``/update_ratio``;
- with ``entropy`` (models that implement ``AttentionPatternModel``, problems that say
  their inputs): ``probe/entropy/L{l}H{h}`` and ``probe/entropy_norm/L{l}H{h}``;
- with ``spectra``: ``probe/{name}/stable_rank`` and ``/effective_rank`` of every weight
  matrix (``{name}.{i}`` for the i-th of a stack of matrices, e.g. stacked layers); and for
  a ``HeadWeightsModel`` per head ``probe/heads/{qk|ov|dqk|dov}/{metric}/L{l}H{h}`` —
  stable rank, effective rank, rank@0.01, nuclear/L2 ratio of W_Kᵀ W_Q and W_O W_V, of
  their change since initialisation (``d…``), and ``qk/sigma`` (σ_QK);
- with ``sharpness`` > 0: ``probe/sharpness``, the Hessian's top eigenvalue on the probe
  batch by that many power iterations from a fixed start vector (deterministic, so a
  resumed run logs the same numbers); with ``preconditioned`` as well, under Adam,
  ``probe/preconditioned_sharpness``, the top eigenvalue of P^{-1/2} H P^{-1/2} with
  P = diag(√ν̂ + ε) from the optimiser state (``adam_diagonal``; its edge-of-stability
  threshold is 38/η for β₁ = 0.9); under a parametrisation (``Problem.scaling``) also
  ``probe/scaled_sharpness``, the top eigenvalue of D^{1/2} H D^{1/2} with D = diag(lr_p),
  the per-array learning-rate multipliers: the sharpness in units of the base learning
  rate, whose edge of stability for gradient descent is 2/η (super consistency);
- with ``lanczos`` > 0: ``probe/lanczos_top``, the top Ritz value of the Hessian after that
  many Lanczos steps from the same start vector; with ``hessian_trace`` > 0:
  ``probe/hessian_trace``, Hutchinson's estimate with that many Rademacher vectors (key
  ``probes.seed``) — both need the ``curvature`` extra (matfree);
- with ``line_profile`` > 0: ``probe/line/r2``, ``/s_star``, ``/ratio`` of the one-step
  line profile ℓ(s) = L(θ − s∇L) on that many step sizes s = η·10^u, u evenly spaced in
  [−1, 2], and s = 0 (η: the step's learning rate, 1 without one): the quadratic fit's R²,
  its minimiser s* (in units of η) and ℓ(s*)/ℓ(0) (Sandler et al. 2023);
- with ``ntk`` > 0 (problems that give ``inputs``): the empirical NTK of the model's outputs
  on the first ``ntk`` probe inputs, traced over outputs: ``probe/ntk/top``,
  ``probe/ntk/trace`` and ``probe/ntk/distance`` ‖Θ_t − Θ₀‖_F/‖Θ₀‖_F from the initial
  model's kernel (cost: ``ntk`` × outputs per input Jacobian rows); under a
  parametrisation the kernel is the one its gradient descent follows, Θ = J D Jᵀ with D
  as for ``scaled_sharpness``;
- with ``logits`` (problems that give ``inputs``; models whose outputs are logits): the
  softmax absorption signals of the model's outputs on the probe inputs,
  ``probe/logit_gap`` (mean gap between the two largest logits of an output row) and
  ``probe/absorbed_fraction`` (rows whose gap exceeds the ``absorption_threshold`` of the
  run's float type: their softmax is exactly one-hot, their gradient exactly 0);
- with ``directional``: ``probe/update_curvature``, the loss's curvature uᵀHu/uᵀu along the
  step u the optimiser would take (three forward passes; ``directional_curvature``), and
  ``probe/update_length`` ‖u‖ — a step overshoots the local quadratic once its length
  exceeds 2 / curvature;
- with ``coordinates`` (``ResidualStreamModel``s, problems that give ``inputs``): the
  coordinate check's sizes (``coordinate_sizes``) on the probe inputs,
  ``probe/coord/{site}`` (mean |x| at "embedding", "block{l}", "output") and
  ``probe/coord/delta_{site}`` (mean |x_t − x_0| from the initial model);
- ``probe/lr``: the learning rate of the last step taken (η at step t − 1, from
  ``inject_hyperparams``, times the member's factor under ``train.lr_grid``), when the
  optimiser state holds one.
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from iclab._errors import check_nonnegative, check_positive_int


@dataclass(frozen=True)
class ProbeConfig:
    """Training-dynamics instruments along the run (off by default).

    Args:
        every: steps between probes, a multiple of ``train.eval_every`` (0 = off).
        batch_size: size of the fixed probe batch.
        seed: key of the probe batch.
        norms: per-array norms of parameters, gradients and updates.
        entropy: attention entropy per layer and head.
        spectra: stable and effective rank of every weight matrix.
        sharpness: power iterations for the Hessian's top eigenvalue (0 = off).
        preconditioned: with ``sharpness`` and Adam, also Adam's preconditioned
            sharpness.
        lanczos: Lanczos steps for the Hessian's top eigenvalue (0 = off; matfree).
        hessian_trace: Rademacher vectors for Hutchinson's trace (0 = off; matfree).
        line_profile: step sizes of the one-step line profile (0 = off; at least 3).
        ntk: probe inputs of the empirical NTK (0 = off).
        logits: the logit gap and absorbed fraction of the model's outputs.
        directional: the curvature along the optimiser's step.
        coordinates: the coordinate check's activation sizes per site.
    """

    every: int = 0
    batch_size: int = 256
    seed: int = 12345
    norms: bool = True
    entropy: bool = True
    spectra: bool = False
    sharpness: int = 0
    preconditioned: bool = False
    lanczos: int = 0
    hessian_trace: int = 0
    line_profile: int = 0
    ntk: int = 0
    logits: bool = False
    directional: bool = False
    coordinates: bool = False

    def __post_init__(self):
        check_nonnegative("train.probes.every", self.every)
        check_positive_int("train.probes.batch_size", self.batch_size)
        check_nonnegative("train.probes.seed", self.seed)
        for key in ("sharpness", "lanczos", "hessian_trace", "line_profile", "ntk"):
            check_nonnegative(f"train.probes.{key}", getattr(self, key))
        if self.line_profile and self.line_profile < 3:
            from iclab._errors import ConfigError

            raise ConfigError("train.probes.line_profile", self.line_profile,
                              "0 or at least 3 (a quadratic is fitted)")
        if self.ntk > self.batch_size:
            from iclab._errors import ConfigError

            raise ConfigError("train.probes.ntk", self.ntk,
                              f"at most train.probes.batch_size ({self.batch_size})")
        if self.lanczos or self.hessian_trace:
            from iclab.instruments._curvature import _matfree

            _matfree()  # a one-line error naming the extra when matfree is missing


HEAD_METRICS = ("stable_rank", "effective_rank", "rank@0.01", "nuclear_over_l2")


def probe_metrics(problem, optimizer, config: ProbeConfig, model, opt_state, batch,
                  initial=None) -> dict:
    """The probes of one seed's model on the probe batch (see the module docstring);
    ``initial``: the same seed's model at initialisation (for changes since then)."""
    from iclab.instruments import (
        absorbed_fraction,
        adam_diagonal,
        attention_entropy,
        coordinate_sizes,
        directional_curvature,
        empirical_ntk,
        head_spectra,
        hessian_operator,
        hutchinson_trace,
        kernel_distance,
        kernel_eigenvalues,
        lanczos_eigenvalues,
        layer_norms,
        line_profile,
        logit_gap,
        optimizer_hyperparams,
        parameter_names,
        power_iteration,
        singular_value_metrics,
    )
    from iclab.models import AttentionPatternModel, HeadWeightsModel, ResidualStreamModel

    params, static = eqx.partition(model, eqx.is_array)
    loss_of = lambda p: problem.loss(eqx.combine(p, static), batch)
    loss, grads = jax.value_and_grad(loss_of)(params)
    updates, _ = optimizer.update(grads, opt_state, params)
    norm = optax.tree.norm(params)
    out = {"probe/loss": loss, "probe/grad_norm": optax.tree.norm(grads),
           "probe/update_ratio": optax.tree.norm(updates) / jnp.where(norm > 0, norm, 1.0)}
    if config.norms:
        out.update({f"probe/{k}": v for k, v in layer_norms(params, grads, updates).items()})
    if config.spectra:
        for name, leaf in zip(parameter_names(params), jax.tree.leaves(params), strict=True):
            if leaf.ndim < 2:
                continue
            stack = leaf.reshape((-1,) + leaf.shape[-2:])  # stacked layers: one per slice
            for i in range(stack.shape[0]):
                label = name if stack.shape[0] == 1 else f"{name}.{i}"
                metrics = singular_value_metrics(stack[i])
                out[f"probe/{label}/stable_rank"] = metrics["stable_rank"]
                out[f"probe/{label}/effective_rank"] = metrics["effective_rank"]
        if isinstance(model, HeadWeightsModel):
            spectra = head_spectra(model, initial)
            wanted = [f"{p}/{m}" for p in ("qk", "ov", "dqk", "dov") for m in HEAD_METRICS
                      if not (p.startswith("d") and m == "nuclear_over_l2")] + ["qk/sigma"]
            for key in wanted:
                if key not in spectra:
                    continue
                for layer in range(spectra[key].shape[0]):
                    for head in range(spectra[key].shape[1]):
                        out[f"probe/heads/{key}/L{layer}H{head}"] = spectra[key][layer, head]
    if (config.entropy and problem.inputs is not None
            and isinstance(model, AttentionPatternModel)):
        # the entropy of each sequence's rows, then the mean over the batch (not the
        # entropy of the batch-mean pattern, which Jensen's inequality inflates)
        patterns = jax.vmap(model.attention_patterns)(problem.inputs(batch))
        raw, normalised = (x.mean(0) for x in attention_entropy(patterns))
        for layer in range(raw.shape[0]):
            for head in range(raw.shape[1]):
                out[f"probe/entropy/L{layer}H{head}"] = raw[layer, head]
                out[f"probe/entropy_norm/L{layer}H{head}"] = normalised[layer, head]
    if config.sharpness or config.lanczos or config.hessian_trace:
        matvec, flat = hessian_operator(loss_of, params)
        start = jnp.ones_like(flat) + 0.1 * jnp.cos(jnp.arange(flat.size, dtype=flat.dtype))
    if config.sharpness:
        out["probe/sharpness"] = power_iteration(matvec, start, config.sharpness)[0]
        if problem.scaling is not None:
            scaled, _ = hessian_operator(loss_of, params, _lr_diagonal(problem, params))
            out["probe/scaled_sharpness"] = power_iteration(scaled, start,
                                                            config.sharpness)[0]
        if config.preconditioned:
            adam, _ = hessian_operator(loss_of, params, adam_diagonal(opt_state))
            out["probe/preconditioned_sharpness"] = power_iteration(
                adam, start, config.sharpness)[0]
    if config.lanczos:
        out["probe/lanczos_top"] = lanczos_eigenvalues(matvec, start, config.lanczos)[-1]
    if config.hessian_trace:
        out["probe/hessian_trace"] = hutchinson_trace(matvec, flat, jax.random.key(
            config.seed), config.hessian_trace)
    hyper = optimizer_hyperparams(opt_state)
    if "learning_rate" in hyper:  # times a learning-rate grid member's factor
        out["probe/lr"] = jnp.asarray(hyper["learning_rate"], jnp.float32) * jnp.asarray(
            hyper.get("lr_multiplier", 1.0), jnp.float32)
    if config.line_profile:
        lr = jnp.asarray(hyper.get("learning_rate", 1.0), _params_dtype(params))
        grid = jnp.concatenate([jnp.zeros(1), 10.0 ** jnp.linspace(-1.0, 2.0,
                                                                    config.line_profile - 1)])
        profile = line_profile(lambda p, b: problem.loss(eqx.combine(p, static), b), params,
                               batch, lr * grid)
        out.update({"probe/line/r2": profile["r2"], "probe/line/s_star": profile["s_star"] / lr,
                    "probe/line/ratio": profile["ratio"]})
    if config.logits and problem.inputs is not None:
        outputs = jax.vmap(model)(problem.inputs(batch))
        out["probe/logit_gap"] = jnp.mean(logit_gap(outputs))
        out["probe/absorbed_fraction"] = absorbed_fraction(outputs)
    if config.directional:
        out["probe/update_curvature"] = directional_curvature(loss_of, params, updates)
        out["probe/update_length"] = optax.tree.norm(updates)
    if config.coordinates and problem.inputs is not None \
            and isinstance(model, ResidualStreamModel):
        sizes = coordinate_sizes(model, problem.inputs(batch), initial)
        out.update({f"probe/coord/{k}": v for k, v in sizes.items()})
    if config.ntk and problem.inputs is not None:
        xs = problem.inputs(batch)[:config.ntk]
        f = _ntk_function(problem, params, static)
        kernel = empirical_ntk(f, _ntk_point(problem, params), xs)
        out["probe/ntk/top"] = kernel_eigenvalues(kernel, top=1)[0]
        out["probe/ntk/trace"] = jnp.trace(kernel)
        if initial is not None:
            start_params, start_static = eqx.partition(initial, eqx.is_array)
            k0 = empirical_ntk(_ntk_function(problem, start_params, start_static),
                               _ntk_point(problem, start_params), xs)
            out["probe/ntk/distance"] = kernel_distance(kernel, k0)
    return out


def _lr_diagonal(problem, params):
    """The per-array learning-rate multipliers of ``problem.scaling`` as arrays shaped like
    ``params`` (D of D^{1/2} H D^{1/2} and of Θ = J D Jᵀ)."""
    from iclab.parametrisation._transforms import _leafwise

    return _leafwise(lambda p, c: jnp.full_like(p, c), params, problem.scaling.lr)


def _ntk_function(problem, params, static):
    """f(φ, x): the model at θ = √D ⊙ φ (θ itself without a parametrisation), so that the
    empirical NTK in φ is J D Jᵀ."""
    if problem.scaling is None:
        return lambda p, x: eqx.combine(p, static)(x)
    root = jax.tree.map(jnp.sqrt, _lr_diagonal(problem, params))
    return lambda phi, x: eqx.combine(jax.tree.map(jnp.multiply, root, phi), static)(x)


def _ntk_point(problem, params):
    """φ at which f(φ, ·) is the model: θ / √D (θ without a parametrisation)."""
    if problem.scaling is None:
        return params
    root = jax.tree.map(jnp.sqrt, _lr_diagonal(problem, params))
    return jax.tree.map(lambda p, r: jnp.where(r > 0, p / jnp.where(r > 0, r, 1.0), 0.0),
                        params, root)


def _params_dtype(params) -> jnp.dtype:
    """The floating type of the first floating array of ``params`` (float32 by default)."""
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.dtype
    return jnp.dtype(jnp.float32)
