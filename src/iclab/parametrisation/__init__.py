"""Width and depth parametrisations (SP, NTK, μP, depth-μP, CompleteP) as one object.

``Parametrisation(scheme).scale(model, base)`` gives a ``Scaling``: the role table, an
initialiser (``Scaling.initialise``) and per-array learning-rate, weight-decay and Adam-ε
multipliers for the optimiser (``iclab.engine.make_optimizer(..., scaling=)``, built from
``scale_by_multipliers`` and ``add_scaled_decayed_weights``).
"""

from iclab.parametrisation._scheme import CLASSES as CLASSES
from iclab.parametrisation._scheme import SCHEMES as SCHEMES
from iclab.parametrisation._scheme import ArrayScaling as ArrayScaling
from iclab.parametrisation._scheme import Parametrisation as Parametrisation
from iclab.parametrisation._scheme import Scaling as Scaling
from iclab.parametrisation._sweep import check_sweep as check_sweep
from iclab.parametrisation._transforms import (
    add_scaled_decayed_weights as add_scaled_decayed_weights,
)
from iclab.parametrisation._transforms import scale_by_multipliers as scale_by_multipliers

__all__ = [  # the public API (what the docs site renders)
    "CLASSES",
    "SCHEMES",
    "ArrayScaling",
    "Parametrisation",
    "Scaling",
    "check_sweep",
    "add_scaled_decayed_weights",
    "scale_by_multipliers",
]
