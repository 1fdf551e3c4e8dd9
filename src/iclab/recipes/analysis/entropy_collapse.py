"""entropy-collapse: drawing the tables (the bound against random draws, the lowest head
entropy and the excess loss along training per learning rate and variant)."""

import numpy as np

from iclab.report import figure, mean_curve

STYLES = {"off": "-", "sigma": "--"}
NAMES = {"off": "baseline", "sigma": "σReparam"}


def plot_bound(r):
    fig, (ax,) = figure(1, width=6)
    draws, extremal = r["bound"], r["extremal"]
    ax.plot(draws.beta, draws.lowest_entropy, ".", ms=2, alpha=0.4, label="random draws")
    grid = extremal.sort_values("beta")
    ax.plot(grid.beta, grid.bound, "-", color="C3", label="bound")
    ax.plot(grid.beta, grid.entropy, "x", color="k", label="extremal (a, b, …, b)")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("β = ‖W‖₂ ‖XXᵀ‖₂ √(T/(T−1))")
    ax.set_ylabel("lowest row entropy")
    ax.legend(fontsize=8)
    return fig


def _lowest_entropy(r, tag):
    rows = r.metrics[r.metrics.metric.str.startswith(f"{tag}/probe/entropy_norm/")]
    return rows.groupby(["step", "seed"]).value.min().groupby("step").mean()


def plot_entropy(r):
    runs = r["runs"]
    fig, (ax,) = figure(1, width=6.5)
    for j, lr in enumerate(sorted(runs.lr.unique())):
        for variant, style in STYLES.items():
            curve = _lowest_entropy(r, f"{variant}_lr{lr:g}")
            ax.plot(curve.index, curve.to_numpy(), style, color=f"C{j}",
                    label=f"{NAMES[variant]}, lr {lr:g}")
    ax.axhline(0.1, color="gray", ls=":", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("lowest normalised head entropy (mean over seeds)")
    ax.legend(fontsize=7)
    return fig


def plot_losses(r):
    runs = r["runs"]
    fig, (ax,) = figure(1, width=6.5)
    for j, lr in enumerate(sorted(runs.lr.unique())):
        for variant, style in STYLES.items():
            curve = mean_curve(r.metric(f"{variant}_lr{lr:g}/excess_loss"))
            ax.semilogy(curve.index, np.maximum(curve.to_numpy(), 1e-6), style,
                        color=f"C{j}", label=f"{NAMES[variant]}, lr {lr:g}")
    ax.set_xlabel("step")
    ax.set_ylabel("held-out loss − entropy rate")
    ax.legend(fontsize=7)
    return fig
