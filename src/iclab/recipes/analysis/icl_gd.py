"""icl-gd: drawing the tables (learning curves against GD, agreement during training, weight
products against the construction, the input-scale sweep)."""

from iclab.framework import table_matrix
from iclab.report import figure, heatmap, plot_metric_by_seed


def plot_loss(r):
    task = r.config.task
    fig, (ax,) = figure(1, width=6)
    plot_metric_by_seed(ax, r.metrics, "test_loss", "trained LSA (test)")
    if "gd" in r.tables:  # drawn for an interrupted run too, without the baseline
        ax.axhline(r.scalar("gd", "loss"), color="C3", ls="--",
                   label=f"GD 1 step, η*={r.scalar('gd', 'lr'):.2f}")
    ax.axhline(0.5 * task.d * task.input_variance * task.w_scale ** 2, color="gray", ls=":",
               label="zero predictor")
    ax.set_ylabel("½ MSE on the query")
    ax.legend()
    return fig


def plot_standard(r):
    fig, axes = figure(2)
    plot_metric_by_seed(axes[0], r.metrics, "standard/test_loss", "2-layer model, standard "
                        "tokens")
    if "gd" in r.tables:
        axes[0].axhline(r.scalar("gd", "loss"), color="C3", ls="--", label="GD 1 step")
    axes[0].set_ylabel("½ MSE on the query")
    axes[0].legend(fontsize=8)
    for name, label, color in (("copy_next", "from token j + 1", "C0"),
                               ("copy_own", "from itself", "C1"),
                               ("copy_other", "from the others", "C2")):
        plot_metric_by_seed(axes[1], r.metrics, f"standard/{name}", label, color=color)
    axes[1].set_ylabel("‖∂t_j / ∂e_s‖ of layer 1's output")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    return fig


def plot_agreement(r):
    fig, axes = figure(2)
    plot_metric_by_seed(axes[0], r.metrics, "sens_cos", "cos(∂ŷ_TF/∂x_q, ∂ŷ_GD/∂x_q)")
    axes[0].set_ylim(-0.1, 1.05)
    axes[0].legend(fontsize=8)
    plot_metric_by_seed(axes[1], r.metrics, "pred_diff_rel", "‖ŷ_TF − ŷ_GD‖/‖ŷ_GD‖", color="C1")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    return fig


def plot_weights(r):
    weights, seed = r["weights"], int(r["seeds"].seed.iloc[0])
    fig, axes = figure(4, width=2.8, height=2.6)
    heatmap(axes[0], table_matrix(weights, "trained_kq"), f"trained W_KQ (seed {seed})")
    heatmap(axes[1], table_matrix(weights, "construction_kq"), "construction W_KQ")
    heatmap(axes[2], table_matrix(weights, "trained_pv"), f"trained W_PV (seed {seed})")
    heatmap(axes[3], table_matrix(weights, "construction_pv"), "construction W_PV")
    return fig


def plot_input_scale(r):
    sweep = r["input_scale"]
    fig, (ax,) = figure(1, width=6)
    ax.plot(sweep.alpha, sweep.trained_lsa, "o-", label="trained LSA (mean)")
    ax.plot(sweep.alpha, sweep.gd, "s--", label="GD 1 step (η*)")
    ax.set_xlabel("input scale α (x ~ U(−α/2, α/2) · r)")
    ax.set_ylabel("½ MSE")
    ax.set_yscale("log")
    ax.legend()
    return fig
