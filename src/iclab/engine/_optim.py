"""Optimizers from a small frozen config (Optax compositions)."""

from dataclasses import dataclass

import optax

from iclab._errors import check_choice, check_in_range, check_nonnegative, check_positive

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


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
        schedule: "constant", "cosine" (decay to 0) or "warmup_cosine".
        warmup_steps: linear warm-up length for "warmup_cosine".
    """

    name: str = "adamw"
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.98
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0

    def __post_init__(self):
        check_choice("optim.name", self.name, OPTIMIZERS)
        check_positive("optim.lr", self.lr)
        for key in ("b1", "b2"):
            check_in_range(f"optim.{key}", getattr(self, key), 0, 1)
        check_nonnegative("optim.weight_decay", self.weight_decay)
        check_nonnegative("optim.clip_norm", self.clip_norm)
        check_choice("optim.schedule", self.schedule, SCHEDULES)
        check_nonnegative("optim.warmup_steps", self.warmup_steps)


def make_optimizer(config: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """clip_by_global_norm → optimizer, with the learning rate injected as a hyperparameter.

    The learning rate (or its schedule) goes through ``optax.inject_hyperparams``
    so it lives in the optimizer state, not as a constant in the compiled graph.
    """
    if config.schedule == "constant":
        lr = config.lr
    elif config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.lr, max(total_steps, 1))
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
