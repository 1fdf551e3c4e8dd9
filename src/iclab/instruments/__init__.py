"""Instruments: pure functions that measure a model or a run."""

from iclab.instruments._attention import duplicate_token_mask as duplicate_token_mask
from iclab.instruments._attention import head_scores as head_scores
from iclab.instruments._attention import icl_score as icl_score
from iclab.instruments._attention import induction_mask as induction_mask
from iclab.instruments._attention import item_label_scores as item_label_scores
from iclab.instruments._attention import pattern_score as pattern_score
from iclab.instruments._attention import previous_token_mask as previous_token_mask
from iclab.instruments._attention import query_row_scores as query_row_scores
from iclab.instruments._attention import repeat_icl_score as repeat_icl_score
from iclab.instruments._attention import uniform_score as uniform_score
from iclab.instruments._behaviour import implicit_linear_weights as implicit_linear_weights
from iclab.instruments._behaviour import implicit_weight_difference as implicit_weight_difference
from iclab.instruments._behaviour import layer_implicit_weights as layer_implicit_weights
from iclab.instruments._behaviour import layer_losses as layer_losses
from iclab.instruments._behaviour import (
    squared_prediction_difference as squared_prediction_difference,
)
from iclab.instruments._compare import cosine_similarity as cosine_similarity
from iclab.instruments._compare import label_polynomial_parts as label_polynomial_parts
from iclab.instruments._compare import prediction_difference as prediction_difference
from iclab.instruments._compare import query_loss as query_loss
from iclab.instruments._compare import query_sensitivity as query_sensitivity
from iclab.instruments._compare import sensitivity_agreement as sensitivity_agreement
from iclab.instruments._compare import token_sensitivities as token_sensitivities
from iclab.instruments._coordinates import coordinate_sizes as coordinate_sizes
from iclab.instruments._coordinates import coordinate_slopes as coordinate_slopes
from iclab.instruments._curvature import adam_diagonal as adam_diagonal
from iclab.instruments._curvature import density_on_grid as density_on_grid
from iclab.instruments._curvature import directional_curvature as directional_curvature
from iclab.instruments._curvature import hessian_operator as hessian_operator
from iclab.instruments._curvature import hutchinson_trace as hutchinson_trace
from iclab.instruments._curvature import hvp as hvp
from iclab.instruments._curvature import lanczos_eigenvalues as lanczos_eigenvalues
from iclab.instruments._curvature import optimizer_hyperparams as optimizer_hyperparams
from iclab.instruments._curvature import power_iteration as power_iteration
from iclab.instruments._curvature import spectral_density as spectral_density
from iclab.instruments._entropy import absorbed_fraction as absorbed_fraction
from iclab.instruments._entropy import absorption_threshold as absorption_threshold
from iclab.instruments._entropy import attention_entropy as attention_entropy
from iclab.instruments._entropy import entropy_bound_beta as entropy_bound_beta
from iclab.instruments._entropy import entropy_lower_bound as entropy_lower_bound
from iclab.instruments._entropy import logit_gap as logit_gap
from iclab.instruments._ntk import empirical_ntk as empirical_ntk
from iclab.instruments._ntk import kernel_distance as kernel_distance
from iclab.instruments._ntk import kernel_eigenvalues as kernel_eigenvalues
from iclab.instruments._ntk import kernel_target_alignment as kernel_target_alignment
from iclab.instruments._ntk import linearisation_distance as linearisation_distance
from iclab.instruments._probes import apply_linear_probe as apply_linear_probe
from iclab.instruments._probes import fit_linear_probe as fit_linear_probe
from iclab.instruments._probes import probe_grid as probe_grid
from iclab.instruments._probes import probe_scores as probe_scores
from iclab.instruments._progress import induction_progress as induction_progress
from iclab.instruments._propagation import projection_gradient_norms as projection_gradient_norms
from iclab.instruments._propagation import stream_cosines as stream_cosines
from iclab.instruments._propagation import token_cosine as token_cosine
from iclab.instruments._slingshot import detect_slingshots as detect_slingshots
from iclab.instruments._slingshot import loss_spikes as loss_spikes
from iclab.instruments._spectra import factor_metrics as factor_metrics
from iclab.instruments._spectra import head_products as head_products
from iclab.instruments._spectra import head_spectra as head_spectra
from iclab.instruments._spectra import singular_value_metrics as singular_value_metrics
from iclab.instruments._spectra import spectral_norm as spectral_norm
from iclab.instruments._stats import best_seed as best_seed
from iclab.instruments._stats import bootstrap_mean_ci as bootstrap_mean_ci
from iclab.instruments._stats import first_crossing as first_crossing
from iclab.instruments._stats import loglog_slope as loglog_slope
from iclab.instruments._stats import rise_times as rise_times
from iclab.instruments._stats import superexponential_ratio as superexponential_ratio
from iclab.instruments._structure import compressed_products as compressed_products
from iclab.instruments._structure import identity_block_share as identity_block_share
from iclab.instruments._structure import identity_blocks as identity_blocks
from iclab.instruments._trajectory import fixed_batch_losses as fixed_batch_losses
from iclab.instruments._trajectory import layer_norms as layer_norms
from iclab.instruments._trajectory import line_profile as line_profile
from iclab.instruments._trajectory import parameter_names as parameter_names
from iclab.instruments._trajectory import role_norms as role_norms
from iclab.instruments._transfer import grid_optimum as grid_optimum
from iclab.instruments._transfer import transfer_exponent as transfer_exponent
from iclab.instruments._weights import effective_lr as effective_lr
from iclab.instruments._weights import interpolated_head as interpolated_head
from iclab.instruments._weights import normalise_scale as normalise_scale
from iclab.instruments._weights import weight_alignment as weight_alignment

__all__ = [  # the public API (what the docs site renders)
    "duplicate_token_mask",
    "head_scores",
    "icl_score",
    "repeat_icl_score",
    "induction_mask",
    "item_label_scores",
    "pattern_score",
    "previous_token_mask",
    "query_row_scores",
    "uniform_score",
    "implicit_linear_weights",
    "implicit_weight_difference",
    "layer_implicit_weights",
    "layer_losses",
    "squared_prediction_difference",
    "cosine_similarity",
    "label_polynomial_parts",
    "prediction_difference",
    "query_loss",
    "query_sensitivity",
    "token_sensitivities",
    "sensitivity_agreement",
    "coordinate_sizes",
    "coordinate_slopes",
    "adam_diagonal",
    "density_on_grid",
    "directional_curvature",
    "hessian_operator",
    "hutchinson_trace",
    "hvp",
    "lanczos_eigenvalues",
    "optimizer_hyperparams",
    "power_iteration",
    "spectral_density",
    "absorbed_fraction",
    "absorption_threshold",
    "attention_entropy",
    "entropy_bound_beta",
    "entropy_lower_bound",
    "logit_gap",
    "empirical_ntk",
    "kernel_distance",
    "kernel_eigenvalues",
    "kernel_target_alignment",
    "linearisation_distance",
    "apply_linear_probe",
    "fit_linear_probe",
    "probe_grid",
    "probe_scores",
    "induction_progress",
    "projection_gradient_norms",
    "stream_cosines",
    "token_cosine",
    "detect_slingshots",
    "loss_spikes",
    "factor_metrics",
    "head_products",
    "compressed_products",
    "identity_block_share",
    "identity_blocks",
    "head_spectra",
    "singular_value_metrics",
    "spectral_norm",
    "best_seed",
    "bootstrap_mean_ci",
    "first_crossing",
    "loglog_slope",
    "rise_times",
    "superexponential_ratio",
    "fixed_batch_losses",
    "layer_norms",
    "line_profile",
    "parameter_names",
    "role_norms",
    "grid_optimum",
    "transfer_exponent",
    "effective_lr",
    "interpolated_head",
    "normalise_scale",
    "weight_alignment",
]
