"""Figure helpers on matplotlib's object API (no pyplot, no global state)."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def figure(ncols: int = 1, width: float = 4.2, height: float = 3.2, rows: int = 1):
    """A Figure with ``rows`` × ``ncols`` axes (``width`` per column, ``height`` in all),
    returned as a flat array in row-major order."""
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(rows, ncols, squeeze=False).reshape(-1)
    return fig, axes


def mean_curve(rows: pd.DataFrame) -> pd.Series:
    """The mean over seeds of long-format metric rows (step, seed, value), indexed by step."""
    return rows.groupby("step").value.mean().sort_index()


def plot_metric_by_seed(ax, metrics: pd.DataFrame, metric: str, label: str | None = None,
                        color: str = "C0") -> None:
    """Each seed's curve (thin) and the mean over seeds (thick) of one metric vs step."""
    rows = metrics[metrics.metric == metric]
    table = rows.pivot_table(index="step", columns="seed", values="value")
    for seed in table.columns:
        ax.plot(table.index, table[seed], color=color, alpha=0.3, lw=0.8)
    ax.plot(table.index, table.mean(axis=1), color=color, lw=2, label=label or metric)
    ax.set_xlabel("step")


def heatmap(ax, matrix: np.ndarray, title: str) -> None:
    """A symmetric-colour heatmap of a matrix with its colour bar."""
    matrix = np.asarray(matrix)
    limit = float(np.abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def style(ax, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
          xscale: str | None = None, yscale: str | None = None, legend: float | None = None,
          xticks=None, ylim=None) -> None:
    """Axis labels, title, scales, ticks, limits and a legend (``legend``: its font size)
    in one call."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title, fontsize=9)
    if xscale is not None:
        ax.set_xscale(xscale)
    if yscale is not None:
        ax.set_yscale(yscale)
    if xticks is not None:
        ax.set_xticks(list(xticks))
    if ylim is not None:
        ax.set_ylim(*ylim)
    if legend is not None:
        ax.legend(fontsize=legend)


def plot_metrics_by_seed(ax, metrics: pd.DataFrame, series: dict[str, str]) -> None:
    """Several metrics on one axis, each as ``plot_metric_by_seed`` in its own colour:
    ``series`` maps a metric name to its label."""
    for i, (metric, label) in enumerate(series.items()):
        plot_metric_by_seed(ax, metrics, metric, label, color=f"C{i}")


def power_law_guide(ax, x, anchor: float, exponent: float, at: int = 0, **style) -> None:
    """A dashed guide y ∝ x^exponent through ``anchor`` at ``x[at]`` (log-log plots)."""
    x = np.asarray(x, float)
    ax.plot(x, anchor * (x / x[at]) ** exponent, **{"color": "grey", "ls": "--", **style})
