"""Training engine: jitted steps chunked with ``lax.scan``, seeds vmapped into one program."""

from iclab.engine._concurrent import FitJob as FitJob
from iclab.engine._concurrent import default_workers as default_workers
from iclab.engine._concurrent import fit_concurrently as fit_concurrently
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
from iclab.engine._problems import dynamics_problem as dynamics_problem
from iclab.engine._problems import prompt_loss as prompt_loss
from iclab.engine._problems import prompt_predictions as prompt_predictions
from iclab.engine._problems import prompt_problem as prompt_problem
from iclab.engine._problems import regression_loss as regression_loss
from iclab.engine._problems import regression_problem as regression_problem
from iclab.engine._problems import sequence_loss_per_step as sequence_loss_per_step
from iclab.engine._train import Problem as Problem
from iclab.engine._train import TrainConfig as TrainConfig
from iclab.engine._train import Trainer as Trainer
from iclab.engine._train import TrainState as TrainState
from iclab.engine._train import check_training as check_training
