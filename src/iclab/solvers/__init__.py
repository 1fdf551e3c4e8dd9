"""Solvers and baselines: learners that fit the context in closed form or iteratively."""

from iclab.solvers._autoregressive import (
    PRECONDITIONER_NORMS as PRECONDITIONER_NORMS,
)
from iclab.solvers._autoregressive import ARGradientStep as ARGradientStep
from iclab.solvers._autoregressive import ARPreconditionedGD as ARPreconditionedGD
from iclab.solvers._autoregressive import ARRidge as ARRidge
from iclab.solvers._autoregressive import SoftmaxKernelRegression as SoftmaxKernelRegression
from iclab.solvers._autoregressive import ar_batch_loss as ar_batch_loss
from iclab.solvers._autoregressive import ar_gd_from_zero_lr as ar_gd_from_zero_lr
from iclab.solvers._autoregressive import ar_gd_predictions as ar_gd_predictions
from iclab.solvers._autoregressive import ar_oracle_loss_per_step as ar_oracle_loss_per_step
from iclab.solvers._autoregressive import ar_preconditioned_inputs as ar_preconditioned_inputs
from iclab.solvers._autoregressive import ar_ridge_predictions as ar_ridge_predictions
from iclab.solvers._autoregressive import ar_statistics as ar_statistics
from iclab.solvers._autoregressive import fit_gd_step as fit_gd_step
from iclab.solvers._autoregressive import pair_ridge_predictions as pair_ridge_predictions
from iclab.solvers._autoregressive import (
    preconditioned_gd_predictions as preconditioned_gd_predictions,
)
from iclab.solvers._autoregressive import (
    softmax_kernel_predictions as softmax_kernel_predictions,
)
from iclab.solvers._autoregressive import tune_ar_ridge as tune_ar_ridge
from iclab.solvers._autoregressive import tune_softmax_kernel as tune_softmax_kernel
from iclab.solvers._context_labels import context_mode_accuracy as context_mode_accuracy
from iclab.solvers._external import available as available
from iclab.solvers._external import (
    sklearn_tree_prefix_predictions as sklearn_tree_prefix_predictions,
)
from iclab.solvers._external import xgboost_prefix_predictions as xgboost_prefix_predictions
from iclab.solvers._gd import fit_one_step_from_init as fit_one_step_from_init
from iclab.solvers._gd import gd_construction as gd_construction
from iclab.solvers._gd import gd_loss as gd_loss
from iclab.solvers._gd import gd_predict as gd_predict
from iclab.solvers._gd import gd_weights as gd_weights
from iclab.solvers._gd import one_step_optimal_lr as one_step_optimal_lr
from iclab.solvers._gd import tune_gd_lr as tune_gd_lr
from iclab.solvers._gdpp import fit_gdpp as fit_gdpp
from iclab.solvers._gdpp import fit_gdpp_population as fit_gdpp_population
from iclab.solvers._gdpp import gdpp_population_loss as gdpp_population_loss
from iclab.solvers._gdpp import gdpp_spectral_residual as gdpp_spectral_residual
from iclab.solvers._gdpp import noise_free_gdpp_column as noise_free_gdpp_column
from iclab.solvers._gdpp import tune_gdpp_tied as tune_gdpp_tied
from iclab.solvers._gdpp import wishart_eigenvalues as wishart_eigenvalues
from iclab.solvers._lasso import lasso_prefix_predictions as lasso_prefix_predictions
from iclab.solvers._lasso import lasso_weights as lasso_weights
from iclab.solvers._lasso import soft_threshold as soft_threshold
from iclab.solvers._line_search import golden_section_search as golden_section_search
from iclab.solvers._line_search import grid_then_golden as grid_then_golden
from iclab.solvers._network import init_network as init_network
from iclab.solvers._network import network_forward as network_forward
from iclab.solvers._network import network_prefix_predictions as network_prefix_predictions
from iclab.solvers._network import train_network as train_network
from iclab.solvers._prefix import ood_error_curves as ood_error_curves
from iclab.solvers._prefix import prefix_predictions as prefix_predictions
from iclab.solvers._ridge import RidgePath as RidgePath
from iclab.solvers._ridge import adaptive_ridge_weights as adaptive_ridge_weights
from iclab.solvers._ridge import analytic_one_layer_loss as analytic_one_layer_loss
from iclab.solvers._ridge import analytic_one_layer_step as analytic_one_layer_step
from iclab.solvers._ridge import noise_variance_estimate as noise_variance_estimate
from iclab.solvers._ridge import ols_weights as ols_weights
from iclab.solvers._ridge import oracle_ridge_weights as oracle_ridge_weights
from iclab.solvers._ridge import ridge_loss as ridge_loss
from iclab.solvers._ridge import ridge_weights as ridge_weights
from iclab.solvers._ridge import tune_const_ridge as tune_const_ridge
from iclab.solvers._ridge import tune_tuned_ridge as tune_tuned_ridge
from iclab.solvers._ridge import weights_loss as weights_loss
from iclab.solvers._shaped_sde import ShapedBlock as ShapedBlock
from iclab.solvers._shaped_sde import explicit_layer as explicit_layer
from iclab.solvers._shaped_sde import layer_covariance as layer_covariance
from iclab.solvers._shaped_sde import moment_match as moment_match
from iclab.solvers._shaped_sde import network_covariances as network_covariances
from iclab.solvers._shaped_sde import pair_correlation as pair_correlation
from iclab.solvers._shaped_sde import sde_covariances as sde_covariances
from iclab.solvers._shaped_sde import sde_diffusion as sde_diffusion
from iclab.solvers._shaped_sde import sde_drift as sde_drift
from iclab.solvers._shaped_sde import sde_noise as sde_noise
from iclab.solvers._tree import fit_tree as fit_tree
from iclab.solvers._tree import tree_predict as tree_predict
from iclab.solvers._tree import tree_prefix_predictions as tree_prefix_predictions

__all__ = [  # the public API (what the docs site renders)
    "context_mode_accuracy",
    "ARGradientStep",
    "ARPreconditionedGD",
    "ARRidge",
    "SoftmaxKernelRegression",
    "ar_batch_loss",
    "ar_gd_from_zero_lr",
    "ar_gd_predictions",
    "ar_oracle_loss_per_step",
    "ar_preconditioned_inputs",
    "ar_ridge_predictions",
    "ar_statistics",
    "fit_gd_step",
    "pair_ridge_predictions",
    "PRECONDITIONER_NORMS",
    "preconditioned_gd_predictions",
    "softmax_kernel_predictions",
    "tune_ar_ridge",
    "tune_softmax_kernel",
    "available",
    "sklearn_tree_prefix_predictions",
    "xgboost_prefix_predictions",
    "fit_one_step_from_init",
    "gd_construction",
    "gd_loss",
    "gd_predict",
    "gd_weights",
    "one_step_optimal_lr",
    "tune_gd_lr",
    "fit_gdpp",
    "fit_gdpp_population",
    "gdpp_population_loss",
    "gdpp_spectral_residual",
    "noise_free_gdpp_column",
    "tune_gdpp_tied",
    "wishart_eigenvalues",
    "lasso_prefix_predictions",
    "lasso_weights",
    "soft_threshold",
    "golden_section_search",
    "grid_then_golden",
    "init_network",
    "network_forward",
    "network_prefix_predictions",
    "train_network",
    "ood_error_curves",
    "prefix_predictions",
    "RidgePath",
    "adaptive_ridge_weights",
    "analytic_one_layer_loss",
    "analytic_one_layer_step",
    "noise_variance_estimate",
    "ols_weights",
    "oracle_ridge_weights",
    "ridge_loss",
    "ridge_weights",
    "tune_const_ridge",
    "tune_tuned_ridge",
    "weights_loss",
    "ShapedBlock",
    "explicit_layer",
    "layer_covariance",
    "moment_match",
    "network_covariances",
    "pair_correlation",
    "sde_covariances",
    "sde_diffusion",
    "sde_drift",
    "sde_noise",
    "fit_tree",
    "tree_predict",
    "tree_prefix_predictions",
]
