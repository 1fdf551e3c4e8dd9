"""Models: Equinox modules on one sequence; ``jax.vmap`` them for batches."""

from iclab.models._causal import CausalAttention as CausalAttention
from iclab.models._causal import CausalTransformer as CausalTransformer
from iclab.models._causal import CausalTransformerConfig as CausalTransformerConfig
from iclab.models._causal import causal_linear_attention as causal_linear_attention
from iclab.models._causal import causal_softmax_pattern as causal_softmax_pattern
from iclab.models._causal import mesa_attention as mesa_attention
from iclab.models._causal import mesa_attention_forgetting as mesa_attention_forgetting
from iclab.models._causal import sinusoidal_positions as sinusoidal_positions
from iclab.models._diag import DiagonalLSA as DiagonalLSA
from iclab.models._diag import FullLSA as FullLSA
from iclab.models._diagonal_head import DiagonalSoftmaxHead as DiagonalSoftmaxHead
from iclab.models._disentangled import DisentangledCoordinates as DisentangledCoordinates
from iclab.models._disentangled import DisentangledTransformer as DisentangledTransformer
from iclab.models._disentangled import pairs_population_loss as pairs_population_loss
from iclab.models._disentangled import subspace_basis as subspace_basis
from iclab.models._disentangled import subspace_check as subspace_check
from iclab.models._disentangled import subspace_coordinates as subspace_coordinates
from iclab.models._disentangled import subspace_residual as subspace_residual
from iclab.models._features import Embedding as Embedding
from iclab.models._features import FeatureGD as FeatureGD
from iclab.models._features import FeatureLSA as FeatureLSA
from iclab.models._features import gd_form as gd_form
from iclab.models._gpt import GPT as GPT
from iclab.models._gpt import GPTConfig as GPTConfig
from iclab.models._interface import ROLES as ROLES
from iclab.models._interface import AttentionPatternModel as AttentionPatternModel
from iclab.models._interface import ForwardMultipliers as ForwardMultipliers
from iclab.models._interface import HeadAblationModel as HeadAblationModel
from iclab.models._interface import HeadWeightsModel as HeadWeightsModel
from iclab.models._interface import LayerReadoutModel as LayerReadoutModel
from iclab.models._interface import LinearAttentionStack as LinearAttentionStack
from iclab.models._interface import ParameterRolesModel as ParameterRolesModel
from iclab.models._interface import QueryReadoutModel as QueryReadoutModel
from iclab.models._interface import ResidualStreamModel as ResidualStreamModel
from iclab.models._interface import ScalableModel as ScalableModel
from iclab.models._interface import SequenceModel as SequenceModel
from iclab.models._interface import StatefulModel as StatefulModel
from iclab.models._interface import path_name as path_name
from iclab.models._interface import replace_static as replace_static
from iclab.models._interface import require as require
from iclab.models._interface import roles_by_path as roles_by_path
from iclab.models._lsa import LinearSelfAttention as LinearSelfAttention
from iclab.models._lsa import LSABlock as LSABlock
from iclab.models._lsa import LSATransformer as LSATransformer
from iclab.models._lsa import LSATransformerConfig as LSATransformerConfig
from iclab.models._lsa import StandardTokenLSA as StandardTokenLSA
from iclab.models._mlp import TokenMLP as TokenMLP
from iclab.models._mlp import TokenMLPConfig as TokenMLPConfig
from iclab.models._resmlp import Branch as Branch
from iclab.models._resmlp import ResidualMLP as ResidualMLP
from iclab.models._resmlp import ResidualMLPConfig as ResidualMLPConfig
from iclab.models._rows import on_rows as on_rows
from iclab.models._sigma_reparam import SpectralScale as SpectralScale

__all__ = [  # the public API (what the docs site renders)
    "CausalAttention",
    "CausalTransformer",
    "CausalTransformerConfig",
    "causal_linear_attention",
    "causal_softmax_pattern",
    "mesa_attention",
    "mesa_attention_forgetting",
    "sinusoidal_positions",
    "DiagonalLSA",
    "FullLSA",
    "DiagonalSoftmaxHead",
    "DisentangledCoordinates",
    "DisentangledTransformer",
    "pairs_population_loss",
    "subspace_basis",
    "subspace_check",
    "subspace_coordinates",
    "subspace_residual",
    "Embedding",
    "FeatureGD",
    "FeatureLSA",
    "gd_form",
    "GPT",
    "GPTConfig",
    "ROLES",
    "AttentionPatternModel",
    "ForwardMultipliers",
    "HeadAblationModel",
    "HeadWeightsModel",
    "LayerReadoutModel",
    "LinearAttentionStack",
    "ParameterRolesModel",
    "QueryReadoutModel",
    "ResidualStreamModel",
    "ScalableModel",
    "SequenceModel",
    "StatefulModel",
    "path_name",
    "replace_static",
    "require",
    "roles_by_path",
    "LinearSelfAttention",
    "LSABlock",
    "LSATransformer",
    "LSATransformerConfig",
    "StandardTokenLSA",
    "TokenMLP",
    "TokenMLPConfig",
    "Branch",
    "ResidualMLP",
    "ResidualMLPConfig",
    "on_rows",
    "SpectralScale",
]
