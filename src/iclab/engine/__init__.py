"""Training engine: jitted steps chunked with ``lax.scan``, seeds vmapped into one program."""

from iclab.engine._concurrent import FitJob as FitJob
from iclab.engine._concurrent import default_workers as default_workers
from iclab.engine._concurrent import fit_concurrently as fit_concurrently
from iclab.engine._concurrent import map_concurrently as map_concurrently
from iclab.engine._coordinates import coordinate_check as coordinate_check
from iclab.engine._coordinates import coordinate_frame as coordinate_frame
from iclab.engine._coordinates import coordinate_setup as coordinate_setup
from iclab.engine._data import finite_sampler as finite_sampler
from iclab.engine._memory import Footprint as Footprint
from iclab.engine._memory import available_memory as available_memory
from iclab.engine._memory import footprint as footprint
from iclab.engine._optim import OptimConfig as OptimConfig
from iclab.engine._optim import make_optimizer as make_optimizer
from iclab.engine._optim import wsd_schedule as wsd_schedule
from iclab.engine._probes import ProbeConfig as ProbeConfig
from iclab.engine._probes import probe_metrics as probe_metrics
from iclab.engine._problems import MaskedPrompts as MaskedPrompts
from iclab.engine._problems import SoftPrompt as SoftPrompt
from iclab.engine._problems import dynamics_problem as dynamics_problem
from iclab.engine._problems import few_shot_loss_per_pair as few_shot_loss_per_pair
from iclab.engine._problems import few_shot_problem as few_shot_problem
from iclab.engine._problems import finite_problem as finite_problem
from iclab.engine._problems import language_problem as language_problem
from iclab.engine._problems import next_token_loss as next_token_loss
from iclab.engine._problems import next_token_losses as next_token_losses
from iclab.engine._problems import parametrised as parametrised
from iclab.engine._problems import prompt_loss as prompt_loss
from iclab.engine._problems import prompt_predictions as prompt_predictions
from iclab.engine._problems import prompt_problem as prompt_problem
from iclab.engine._problems import query_token_logits as query_token_logits
from iclab.engine._problems import query_token_problem as query_token_problem
from iclab.engine._problems import regression_loss as regression_loss
from iclab.engine._problems import regression_problem as regression_problem
from iclab.engine._problems import sequence_loss_per_step as sequence_loss_per_step
from iclab.engine._train import Packable as Packable
from iclab.engine._train import Problem as Problem
from iclab.engine._train import TrainConfig as TrainConfig
from iclab.engine._train import Trainer as Trainer
from iclab.engine._train import TrainState as TrainState
from iclab.engine._train import check_training as check_training

__all__ = [  # the public API (what the docs site renders)
    "FitJob",
    "default_workers",
    "fit_concurrently",
    "coordinate_check",
    "coordinate_frame",
    "coordinate_setup",
    "finite_sampler",
    "Footprint",
    "available_memory",
    "footprint",
    "OptimConfig",
    "make_optimizer",
    "wsd_schedule",
    "ProbeConfig",
    "probe_metrics",
    "MaskedPrompts",
    "dynamics_problem",
    "SoftPrompt",
    "few_shot_loss_per_pair",
    "few_shot_problem",
    "finite_problem",
    "language_problem",
    "next_token_loss",
    "next_token_losses",
    "parametrised",
    "prompt_loss",
    "prompt_predictions",
    "prompt_problem",
    "query_token_logits",
    "query_token_problem",
    "regression_loss",
    "regression_problem",
    "sequence_loss_per_step",
    "Packable",
    "Problem",
    "TrainConfig",
    "Trainer",
    "TrainState",
    "check_training",
]
