"""Optimizers from a small frozen config (Optax compositions)."""

from dataclasses import dataclass

import optax

from iclab._errors import check_choice, check_in_range, check_nonnegative, check_positive

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "wsd")
COOLDOWNS = ("linear", "sqrt", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and schedule.

    Args:
        name: "adamw", "adam" or "sgd".
        lr: peak learning rate.
        b1, b2: Adam moment decays (von Oswald et al. use b2 = 0.98).
        weight_decay: decoupled weight decay (adamw).
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
    weight_decay: float = 0.0
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
        check_nonnegative("optim.weight_decay", self.weight_decay)
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

    Example:
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


def make_optimizer(config: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """clip_by_global_norm → optimizer, with the learning rate injected as a hyperparameter.

    The learning rate (or its schedule) goes through ``optax.inject_hyperparams``
    so it lives in the optimizer state, not as a constant in the compiled graph.
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
    if config.name == "sgd":
        opt = optax.inject_hyperparams(optax.sgd)(learning_rate=lr)
    elif config.name == "adam":
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=config.b1, b2=config.b2)
    else:
        opt = optax.inject_hyperparams(optax.adamw)(learning_rate=lr, b1=config.b1,
                                                    b2=config.b2,
                                                    weight_decay=config.weight_decay)
    if config.clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.clip_norm), opt)
    return opt
