"""Tasks: pure samplers ``sample(key, **options) -> example`` that run inside ``jit``;
batches by ``vmap`` (the protocol: ``iclab.tasks.Task``)."""

from iclab.tasks._dynamics import DynamicsTask as DynamicsTask
from iclab.tasks._dynamics import FewShotPairs as FewShotPairs
from iclab.tasks._dynamics import FewShotRegressionTask as FewShotRegressionTask
from iclab.tasks._dynamics import Trajectory as Trajectory
from iclab.tasks._dynamics import constructed_tokens as constructed_tokens
from iclab.tasks._dynamics import few_shot_tokens as few_shot_tokens
from iclab.tasks._dynamics import past_states as past_states
from iclab.tasks._function_classes import OOD_STRATEGIES as OOD_STRATEGIES
from iclab.tasks._function_classes import CurriculumConfig as CurriculumConfig
from iclab.tasks._function_classes import FunctionClassTask as FunctionClassTask
from iclab.tasks._function_classes import QueryPrompts as QueryPrompts
from iclab.tasks._function_classes import ood_prompts as ood_prompts
from iclab.tasks._function_classes import query_prompt_predictions as query_prompt_predictions
from iclab.tasks._induction import BurstyClassificationTask as BurstyClassificationTask
from iclab.tasks._induction import BurstySequence as BurstySequence
from iclab.tasks._induction import ItemLabelTask as ItemLabelTask
from iclab.tasks._induction import OrthonormalPairsTask as OrthonormalPairsTask
from iclab.tasks._induction import PairsSequence as PairsSequence
from iclab.tasks._induction import RepeatedTokensTask as RepeatedTokensTask
from iclab.tasks._induction import TokenSequence as TokenSequence
from iclab.tasks._induction import bursty_tokens as bursty_tokens
from iclab.tasks._induction import complex_structure as complex_structure
from iclab.tasks._induction import finite_symmetry_groups as finite_symmetry_groups
from iclab.tasks._induction import finite_symmetry_orbit as finite_symmetry_orbit
from iclab.tasks._induction import haar_unitary_real as haar_unitary_real
from iclab.tasks._induction import one_hot_tokens as one_hot_tokens
from iclab.tasks._induction import pauli_group as pauli_group
from iclab.tasks._interleaved import all_points as all_points
from iclab.tasks._interleaved import interleave as interleave
from iclab.tasks._interleaved import to_interleaved_tokens as to_interleaved_tokens
from iclab.tasks._linear_regression import (
    LinearRegressionTask as LinearRegressionTask,
)
from iclab.tasks._linear_regression import (
    RegressionEvalConfig as RegressionEvalConfig,
)
from iclab.tasks._linear_regression import (
    RegressionExample as RegressionExample,
)
from iclab.tasks._linear_regression import (
    to_tokens as to_tokens,
)
from iclab.tasks._markov import MarkovLanguageTask as MarkovLanguageTask
from iclab.tasks._modular import MODULAR_OPERATIONS as MODULAR_OPERATIONS
from iclab.tasks._modular import Equations as Equations
from iclab.tasks._modular import ModularArithmetic as ModularArithmetic
from iclab.tasks._orthogonal import haar_orthogonal as haar_orthogonal
from iclab.tasks._parity import ParityExample as ParityExample
from iclab.tasks._parity import SparseParityTask as SparseParityTask
from iclab.tasks._protocol import BatchDrawnTask as BatchDrawnTask
from iclab.tasks._protocol import Task as Task
from iclab.tasks._protocol import VmappedTask as VmappedTask
from iclab.tasks._sine import SineRegressionTask as SineRegressionTask

__all__ = [  # the public API (what the docs site renders)
    "DynamicsTask",
    "FewShotPairs",
    "FewShotRegressionTask",
    "Trajectory",
    "constructed_tokens",
    "few_shot_tokens",
    "past_states",
    "OOD_STRATEGIES",
    "CurriculumConfig",
    "FunctionClassTask",
    "QueryPrompts",
    "ood_prompts",
    "query_prompt_predictions",
    "BurstyClassificationTask",
    "BurstySequence",
    "ItemLabelTask",
    "OrthonormalPairsTask",
    "PairsSequence",
    "RepeatedTokensTask",
    "TokenSequence",
    "bursty_tokens",
    "complex_structure",
    "finite_symmetry_groups",
    "finite_symmetry_orbit",
    "haar_orthogonal",
    "haar_unitary_real",
    "one_hot_tokens",
    "pauli_group",
    "all_points",
    "interleave",
    "to_interleaved_tokens",
    "LinearRegressionTask",
    "RegressionEvalConfig",
    "RegressionExample",
    "to_tokens",
    "MarkovLanguageTask",
    "MODULAR_OPERATIONS",
    "Equations",
    "ModularArithmetic",
    "ParityExample",
    "SparseParityTask",
    "BatchDrawnTask",
    "Task",
    "VmappedTask",
    "SineRegressionTask",
]
