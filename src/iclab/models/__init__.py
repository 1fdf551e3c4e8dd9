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
from iclab.models._disentangled import DisentangledCoordinates as DisentangledCoordinates
from iclab.models._disentangled import DisentangledTransformer as DisentangledTransformer
from iclab.models._disentangled import subspace_basis as subspace_basis
from iclab.models._disentangled import subspace_coordinates as subspace_coordinates
from iclab.models._disentangled import subspace_residual as subspace_residual
from iclab.models._features import Embedding as Embedding
from iclab.models._features import FeatureGD as FeatureGD
from iclab.models._features import FeatureLSA as FeatureLSA
from iclab.models._features import gd_form as gd_form
from iclab.models._gpt import GPT as GPT
from iclab.models._gpt import GPTConfig as GPTConfig
from iclab.models._lsa import LinearSelfAttention as LinearSelfAttention
from iclab.models._lsa import LSABlock as LSABlock
from iclab.models._lsa import LSATransformer as LSATransformer
from iclab.models._lsa import LSATransformerConfig as LSATransformerConfig
