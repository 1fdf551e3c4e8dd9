"""Models: Equinox modules on one sequence; ``jax.vmap`` them for batches."""

from iclab.models._diag import DiagonalLSA as DiagonalLSA
from iclab.models._lsa import LinearSelfAttention as LinearSelfAttention
from iclab.models._lsa import LSABlock as LSABlock
from iclab.models._lsa import LSATransformer as LSATransformer
from iclab.models._lsa import LSATransformerConfig as LSATransformerConfig
