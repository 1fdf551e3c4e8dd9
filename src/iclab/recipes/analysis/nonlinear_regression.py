"""nonlinear-regression: reading and drawing the tables (the TF against GD on its own
features, its parts in the context labels)."""

import numpy as np

from iclab.report import figure, plot_metric_by_seed


def plot_tf_vs_gd(r):
    fig, axes = figure(2, width=4.6)
    plot_metric_by_seed(axes[0], r.metrics, "tf/test_loss", "TF (features + LSA)", color="C0")
    plot_metric_by_seed(axes[0], r.metrics, "mlp_gd/test_loss", "MLP + GD", color="C1")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("½ MSE at the query (held-out tasks)")
    axes[0].legend(fontsize=7)
    preds = r["predictions"]
    axes[1].scatter(preds.gd, preds.tf, s=3, alpha=0.4)
    lim = float(np.abs(preds.tf).max())
    axes[1].plot([-lim, lim], [-lim, lim], color="grey", lw=0.6)
    axes[1].set_xlabel("GD step on the TF's features (fitted w₀, η)")
    axes[1].set_ylabel("TF prediction")
    return fig


def plot_gd_likeness(r):
    fig, axes = figure(2, width=4.6)
    plot_metric_by_seed(axes[0], r.metrics, "tf/pred_diff", "relative prediction difference",
                        color="C0")
    plot_metric_by_seed(axes[0], r.metrics, "tf/error_cos_gd", "error cosine", color="C1")
    plot_metric_by_seed(axes[0], r.metrics, "tf/sens_cos", "sensitivity cosine", color="C2")
    axes[0].set_ylabel("TF vs one GD step on its features")
    axes[0].legend(fontsize=7)
    plot_metric_by_seed(axes[1], r.metrics, "tf/label_linear_share", "linear f₁", color="C3")
    plot_metric_by_seed(axes[1], r.metrics, "tf/label_quadratic_share", "quadratic f₂",
                        color="C4")
    axes[1].set_ylabel("‖f_k‖ / ‖ŷ_TF‖ (parts in the context labels)")
    axes[1].legend(fontsize=7)
    return fig


def mechanism_text(r) -> str:
    mean = r["seeds"].mean(numeric_only=True)
    return ("ŷ_TF = f₀ + f₁ + f₂, of degree 0, 1 and 2 in the context labels (exact for one "
            "attention layer). One GD step on features has f₂ = 0. Shares are ‖f_k‖ / ‖ŷ_TF‖ "
            "over the held-out tasks (mean over seeds): label-free "
            f"{mean.label_free_share:.3f}, linear {mean.label_linear_share:.3f}, quadratic "
            f"{mean.label_quadratic_share:.3f}; the TF's loss {mean.loss_tf:.4g} becomes "
            f"{mean.loss_tf_without_quadratic:.4g} without f₂. The prediction difference "
            f"{mean.pred_diff:.3f} compares with the TF's relative error to the truth, "
            f"{mean.tf_relative_error:.3f}, and the GD step's, {mean.gd_relative_error:.3f}. "
            "Against learners that are not that step, the prediction difference is "
            f"{mean.pred_diff_mlp_gd:.3f} (MLP + GD, loss {mean.loss_mlp_gd:.4g}) and "
            f"{mean.pred_diff_ridge:.3f} (ridge on φ_TF, λ = {mean.ridge_lambda:.3g}, loss "
            f"{mean.loss_ridge_own_features:.4g}); the cosine of the TF's errors with theirs "
            f"is {mean.error_cos_mlp_gd:.3f} and {mean.error_cos_ridge:.3f}, with the GD "
            f"step's {mean.error_cos_gd:.3f}.")
