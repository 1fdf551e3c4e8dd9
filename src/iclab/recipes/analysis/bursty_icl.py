"""bursty-icl: reading and drawing the (burstiness × classes) grid."""

import numpy as np
import pandas as pd

from iclab.report import figure, plot_metric_by_seed


def icl_at(r, b: int, k: int) -> pd.Series:
    """Per-seed final ICL accuracy of the (B, K) cell."""
    grid = r["grid"]
    return grid[(grid.burstiness == b) & (grid.classes == k)].icl_accuracy


def grid_means(r) -> pd.DataFrame:
    return r["grid"].groupby(["burstiness", "classes"], sort=False).mean(
        numeric_only=True).drop(columns="seed").reset_index()


def plot_grid(r):
    config, means = r.config, grid_means(r).set_index(["burstiness", "classes"])
    fig, axes = figure(2, width=4.2)
    for ax, name in zip(axes, ("icl_accuracy", "iwl_accuracy"), strict=True):
        matrix = np.array([[means.loc[(b, k), name] for k in config.classes]
                           for b in config.burstiness])
        image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(config.classes)), [str(k) for k in config.classes])
        ax.set_yticks(range(len(config.burstiness)), [str(b) for b in config.burstiness])
        ax.set_xlabel("classes K")
        ax.set_ylabel("burstiness B (0 = none)")
        ax.set_title(name.replace("_", " "), fontsize=9)
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color="w",
                        fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def plot_curves(r):
    fig, axes = figure(2, width=4.2)
    for i, row in enumerate(grid_means(r).itertuples()):
        b, k = row.burstiness, row.classes
        for ax, name in zip(axes, ("icl_accuracy", "iwl_accuracy"), strict=True):
            plot_metric_by_seed(ax, r.metrics, f"B{b}-K{k}/{name}", f"B={b}, K={k}",
                                color=f"C{i}")
    for ax, name in zip(axes, ("ICL accuracy", "IWL accuracy"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7)
    return fig
