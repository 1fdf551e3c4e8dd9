"""Optimizers from a small frozen config (Optax compositions)."""

from dataclasses import dataclass

import jax
import optax

from iclab._errors import check_choice, check_in_range, check_nonnegative, check_positive

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "wsd")
COOLDOWNS = ("linear", "sqrt", "cosine")
DECAY_MODES = ("decoupled", "coupled")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and schedule.

    Args:
        name: "adamw", "adam" or "sgd".
        lr: peak learning rate.
        b1, b2: Adam moment decays (von Oswald et al. use b2 = 0.98).
        eps: Adam's ε in u = m̂ / (√v̂ + ε) (larger ε: smaller steps where v̂ is tiny; it
            suppresses the slingshot, Thilak et al. 2022).
        weight_decay: weight decay λ (with "adamw", or any optimiser when
            ``attention_weight_decay`` or ``decay_mode`` say so); every parameter, or with
            ``attention_weight_decay`` set, every non-attention parameter.
        attention_weight_decay: λ_attn for the attention parameters (W_Q, W_K, W_V, W_O),
            apart from λ (-1 = the same λ; needs a model that labels its parameters,
            ``iclab.models.ParameterRolesModel``).
        decay_mode: "decoupled" (AdamW: θ ← θ − η(u + λθ), u the optimiser's step) or
            "coupled" (L2: λθ is added to the gradient before the optimiser).
        clip_norm: global-norm gradient clip applied first (0 = off). The
            reference uses 0.001, which makes the step a normalised-gradient Adam.
        schedule: "constant", "cosine" (decay to 0), "warmup_cosine" or "wsd"
            (warmup–stable–decay, ``wsd_schedule``).
        warmup_steps: linear warm-up length for "warmup_cosine" and "wsd".
        decay_fraction: "wsd": the fraction of the steps spent in the final decay.
        cooldown: "wsd": the decay's shape, "linear", "sqrt" (1 − √) or "cosine".
    """

    name: str = "adamw"
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.98
    eps: float = 1e-8
    weight_decay: float = 0.0
    attention_weight_decay: float = -1.0
    decay_mode: str = "decoupled"
    clip_norm: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_fraction: float = 0.2
    cooldown: str = "linear"

    def __post_init__(self):
        check_choice("optim.name", self.name, OPTIMIZERS)
        check_positive("optim.lr", self.lr)
        for key in ("b1", "b2"):
            check_in_range(f"optim.{key}", getattr(self, key), 0, 1)
        check_positive("optim.eps", self.eps)
        check_nonnegative("optim.weight_decay", self.weight_decay)
        if self.attention_weight_decay != -1.0:
            check_nonnegative("optim.attention_weight_decay", self.attention_weight_decay)
        check_choice("optim.decay_mode", self.decay_mode, DECAY_MODES)
        check_nonnegative("optim.clip_norm", self.clip_norm)
        check_choice("optim.schedule", self.schedule, SCHEDULES)
        check_nonnegative("optim.warmup_steps", self.warmup_steps)
        check_in_range("optim.decay_fraction", self.decay_fraction, 0, 1, closed_high=True)
        check_choice("optim.cooldown", self.cooldown, COOLDOWNS)


def wsd_schedule(peak: float, total_steps: int, warmup_steps: int = 0,
                 decay_fraction: float = 0.2, cooldown: str = "linear"):
    """Warmup–stable–decay: η(t) = η_max t/W for t < W, η_max until the decay starts at
    S = T − ⌊f T⌋, then over [S, T]

        linear: η_max (1 − u),   sqrt: η_max (1 − √u),   cosine: η_max (1 + cos πu) / 2,

    with u = (t − S)/(T − S) (and 0 from T on).

    Args:
        peak: η_max.
        total_steps: T.
        warmup_steps: W (0 = none).
        decay_fraction: f, the fraction of T spent decaying.
        cooldown: the decay's shape.

    Examples:
        >>> lr = wsd_schedule(1.0, 100, warmup_steps=10, decay_fraction=0.2)
        >>> [round(float(lr(t)), 3) for t in (0, 5, 10, 79, 80, 90, 100)]
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0]

    References:
        Hu et al. "MiniCPM", 2024 (WSD); Hägele et al. "Scaling laws and compute-optimal
        training beyond fixed training durations", NeurIPS 2024 (the 1 − √ cooldown).
    """
    import jax.numpy as jnp

    start = total_steps - int(decay_fraction * total_steps)
    length = max(total_steps - start, 1)

    def schedule(step):
        t = jnp.asarray(step, jnp.float32)
        warm = jnp.minimum(1.0, t / warmup_steps) if warmup_steps > 0 else 1.0
        u = jnp.clip((t - start) / length, 0.0, 1.0)
        decay = {"linear": 1 - u, "sqrt": 1 - jnp.sqrt(u),
                 "cosine": 0.5 * (1 + jnp.cos(jnp.pi * u))}[cooldown]
        return peak * warm * jnp.where(t < start, 1.0, decay)

    return schedule


def _decay(weight_decay, attention_weight_decay, roles):
    """Weight-decay terms: λ on every parameter, or λ_attn on attention and λ on the rest."""
    if roles is None:
        return [optax.add_decayed_weights(weight_decay)]
    attention = lambda params: jax.tree.map(lambda r: r == "attention", roles(params))
    rest = lambda params: jax.tree.map(lambda r: r != "attention", roles(params))
    return [optax.add_decayed_weights(attention_weight_decay, mask=attention),
            optax.add_decayed_weights(weight_decay, mask=rest)]


def _scaled_decay(weight_decay, attention_weight_decay, roles, multipliers):
    """Weight decay with a parametrisation's per-array multipliers."""
    from iclab.parametrisation import add_scaled_decayed_weights

    if roles is None:
        return [add_scaled_decayed_weights(weight_decay, multipliers)]
    attention = lambda params: jax.tree.map(lambda r: r == "attention", roles(params))
    rest = lambda params: jax.tree.map(lambda r: r != "attention", roles(params))
    return [add_scaled_decayed_weights(attention_weight_decay, multipliers, mask=attention),
            add_scaled_decayed_weights(weight_decay, multipliers, mask=rest)]


def _transform(name: str, mode: str, roles, scaling=None):
    """The optimiser as a function of its numeric hyperparameters (for
    ``optax.inject_hyperparams``): [decay if coupled] → Adam or identity → [decay if
    decoupled] → −η. With no weight decay asked for, exactly Optax's adam / sgd.

    With a parametrisation's ``scaling``: the decay carries its weight-decay multipliers,
    Adam's ε its ε multipliers (by dividing the gradient by them before Adam, which is
    exact: m̂/(√v̂ + cε) is Adam on g/c) and the step its learning-rate multipliers."""
    adam = name in ("adam", "adamw")

    def make(learning_rate, b1, b2, eps, weight_decay, attention_weight_decay):
        if scaling is None:
            decay = _decay(weight_decay, attention_weight_decay, roles)
            core = [optax.scale_by_adam(b1=b1, b2=b2, eps=eps)] if adam else []
            parts = (decay + core if mode == "coupled" else core + decay)
            return optax.chain(*parts, optax.scale_by_learning_rate(learning_rate))
        from iclab.parametrisation import scale_by_multipliers

        decay = _scaled_decay(weight_decay, attention_weight_decay, roles, scaling.wd)
        core = [scale_by_multipliers(jax.tree.map(lambda c: 1.0 / c, scaling.eps)),
                optax.scale_by_adam(b1=b1, b2=b2, eps=eps)] if adam else []
        parts = (decay + core if mode == "coupled" else core + decay)
        return optax.chain(*parts, scale_by_multipliers(scaling.lr),
                           optax.scale_by_learning_rate(learning_rate))

    return make


def make_optimizer(config: OptimConfig, total_steps: int, roles=None, scaling=None
                   ) -> optax.GradientTransformation:
    """clip_by_global_norm → optimizer, with the learning rate injected as a hyperparameter.

    The learning rate (or its schedule) goes through ``optax.inject_hyperparams``
    so it lives in the optimizer state, not as a constant in the compiled graph; so do
    b1, b2 and the weight decays.

    Args:
        config: the optimiser's config.
        total_steps: the run's steps (for the schedules).
        roles: params → a pytree of parameter roles (``ParameterRolesModel``), needed for
            ``attention_weight_decay``.
        scaling: a parametrisation's ``iclab.parametrisation.Scaling`` (per-array
            learning-rate, weight-decay and Adam-ε multipliers), or None (SP).
    """
    if config.schedule == "constant":
        lr = config.lr
    elif config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.lr, max(total_steps, 1))
    elif config.schedule == "wsd":
        lr = wsd_schedule(config.lr, total_steps, config.warmup_steps, config.decay_fraction,
                          config.cooldown)
    else:
        lr = optax.warmup_cosine_decay_schedule(0.0, config.lr, config.warmup_steps,
                                                max(total_steps, config.warmup_steps + 1))
    separate = config.attention_weight_decay != -1.0
    if separate and roles is None:
        from iclab._errors import ConfigError

        raise ConfigError("optim.attention_weight_decay", config.attention_weight_decay,
                          "-1 for this model: it does not label its parameters "
                          "(iclab.models.ParameterRolesModel)")
    decays = config.weight_decay > 0 or (separate and config.attention_weight_decay > 0)
    if scaling is not None:
        family = "sgd" if config.name == "sgd" else "adam"
        if scaling.optimizer != family:
            from iclab._errors import ConfigError

            raise ConfigError("parametrisation.optimizer", scaling.optimizer,
                              f"{family} (the rules must match optim.name={config.name})")
        lam_attn = config.attention_weight_decay if separate else config.weight_decay
        opt = optax.inject_hyperparams(_transform(
            config.name, config.decay_mode, roles if separate else None, scaling))(
            learning_rate=lr, b1=config.b1, b2=config.b2, eps=config.eps,
            weight_decay=config.weight_decay, attention_weight_decay=lam_attn)
    elif not decays and config.name == "sgd":
        opt = optax.inject_hyperparams(optax.sgd)(learning_rate=lr)
    elif not decays and config.name == "adam":
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=config.b1, b2=config.b2,
                                                   eps=config.eps)
    elif config.name == "adamw" and not separate and config.decay_mode == "decoupled":
        opt = optax.inject_hyperparams(optax.adamw)(learning_rate=lr, b1=config.b1,
                                                    b2=config.b2, eps=config.eps,
                                                    weight_decay=config.weight_decay)
    else:
        lam_attn = config.attention_weight_decay if separate else config.weight_decay
        opt = optax.inject_hyperparams(_transform(config.name, config.decay_mode,
                                                  roles if separate else None))(
            learning_rate=lr, b1=config.b1, b2=config.b2, eps=config.eps,
            weight_decay=config.weight_decay,
            attention_weight_decay=lam_attn)
    if config.clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.clip_norm), opt)
    return opt
