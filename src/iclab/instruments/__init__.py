"""Instruments: pure functions that measure a model or a run."""

from iclab.instruments._attention import duplicate_token_mask as duplicate_token_mask
from iclab.instruments._attention import head_scores as head_scores
from iclab.instruments._attention import icl_score as icl_score
from iclab.instruments._attention import induction_mask as induction_mask
from iclab.instruments._attention import pattern_score as pattern_score
from iclab.instruments._attention import previous_token_mask as previous_token_mask
from iclab.instruments._attention import query_row_scores as query_row_scores
from iclab.instruments._attention import uniform_score as uniform_score
from iclab.instruments._behaviour import implicit_linear_weights as implicit_linear_weights
from iclab.instruments._behaviour import implicit_weight_difference as implicit_weight_difference
from iclab.instruments._behaviour import layer_implicit_weights as layer_implicit_weights
from iclab.instruments._behaviour import (
    squared_prediction_difference as squared_prediction_difference,
)
from iclab.instruments._compare import cosine_similarity as cosine_similarity
from iclab.instruments._compare import label_polynomial_parts as label_polynomial_parts
from iclab.instruments._compare import prediction_difference as prediction_difference
from iclab.instruments._compare import query_loss as query_loss
from iclab.instruments._compare import query_sensitivity as query_sensitivity
from iclab.instruments._compare import sensitivity_agreement as sensitivity_agreement
from iclab.instruments._probes import apply_linear_probe as apply_linear_probe
from iclab.instruments._probes import fit_linear_probe as fit_linear_probe
from iclab.instruments._probes import probe_grid as probe_grid
from iclab.instruments._probes import probe_scores as probe_scores
from iclab.instruments._progress import induction_progress as induction_progress
from iclab.instruments._stats import best_seed as best_seed
from iclab.instruments._stats import bootstrap_mean_ci as bootstrap_mean_ci
from iclab.instruments._stats import first_crossing as first_crossing
from iclab.instruments._stats import loglog_slope as loglog_slope
from iclab.instruments._stats import superexponential_ratio as superexponential_ratio
from iclab.instruments._weights import effective_lr as effective_lr
from iclab.instruments._weights import normalise_scale as normalise_scale
from iclab.instruments._weights import weight_alignment as weight_alignment
