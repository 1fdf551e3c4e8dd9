"""bursty-icl: reading and drawing the (burstiness × classes) grid, the sweeps at its
largest cell and the induction head's emergence."""

import numpy as np
import pandas as pd

from iclab.report import figure, plot_metric_by_seed


def _base(r) -> dict:
    return {"zipf": r.config.task.zipf, "within_class_noise": r.config.task.within_class_noise}


def cell(r, b: int, k: int, **arrays) -> pd.DataFrame:
    """Per-seed final values of one cell; ``arrays`` (zipf, within_class_noise) default to
    the task's own, i.e. the grid's cell."""
    grid, want = r["grid"], {**_base(r), **arrays}
    mask = (grid.burstiness == b) & (grid.classes == k)
    for name, value in want.items():
        mask &= np.isclose(grid[name], value)
    return grid[mask]


def icl_at(r, b: int, k: int) -> pd.Series:
    """Per-seed final ICL accuracy of the (B, K) grid cell."""
    return cell(r, b, k).icl_accuracy


def _means(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.groupby(keys, sort=False).mean(numeric_only=True).drop(
        columns="seed").reset_index()


def _grid_rows(r) -> pd.DataFrame:
    grid, base = r["grid"], _base(r)
    mask = np.isclose(grid.zipf, base["zipf"]) & np.isclose(grid.within_class_noise,
                                                             base["within_class_noise"])
    return grid[mask]


def grid_means(r) -> pd.DataFrame:
    return _means(_grid_rows(r), ["burstiness", "classes"]).drop(
        columns=["zipf", "within_class_noise"])


def _top(r) -> pd.DataFrame:
    grid = r["grid"]
    return grid[(grid.burstiness == max(r.config.burstiness))
                & (grid.classes == max(r.config.classes))]


def sweep_means(r) -> pd.DataFrame:
    """The largest (B, K) at every swept α and ε, mean over seeds."""
    return _means(_top(r), ["zipf", "within_class_noise"]).sort_values(
        ["within_class_noise", "zipf"])


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


def cell_tag(task, b: int, k: int, zipf: float, noise: float) -> str:
    """B4-K512 for a grid cell; B4-K512-a1 / B4-K512-e0.4 for a sweep's (α, ε other than
    the task's own)."""
    tag = f"B{b}-K{k}"
    if not np.isclose(zipf, task.zipf):
        tag += f"-a{zipf:g}"
    if not np.isclose(noise, task.within_class_noise):
        tag += f"-e{noise:g}"
    return tag


def _tag(r, b, k, zipf, noise) -> str:
    return cell_tag(r.config.task, b, k, zipf, noise)


def plot_curves(r):
    fig, axes = figure(2, width=4.2)
    cells = r["grid"][["burstiness", "classes", "zipf", "within_class_noise"]].drop_duplicates()
    for i, row in enumerate(cells.itertuples()):
        tag = _tag(r, row.burstiness, row.classes, row.zipf, row.within_class_noise)
        for ax, name in zip(axes, ("icl_accuracy", "iwl_accuracy"), strict=True):
            plot_metric_by_seed(ax, r.metrics, f"{tag}/{name}", tag, color=f"C{i % 10}")
    for ax, name in zip(axes, ("ICL accuracy", "IWL accuracy"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7)
    return fig


def plot_mechanism(r):
    config, base = r.config, _base(r)
    tag = _tag(r, max(config.burstiness), max(config.classes), base["zipf"],
               base["within_class_noise"])
    n = config.task.n_pairs
    fig, axes = figure(2, width=4.2)
    plot_metric_by_seed(axes[0], r.metrics, f"{tag}/icl_accuracy", "ICL accuracy", color="C0")
    plot_metric_by_seed(axes[0], r.metrics, f"{tag}/context_label_fraction",
                        "prediction is a context label", color="C1")
    axes[0].axhline(0.5, color="grey", ls=":", lw=0.8)
    axes[0].set_ylabel(f"{tag}, ICL sequences")
    axes[0].legend(fontsize=7)
    plot_metric_by_seed(axes[1], r.metrics, f"{tag}/induction_attention",
                        "layer 2: query → its labels", color="C2")
    plot_metric_by_seed(axes[1], r.metrics, f"{tag}/previous_item_attention",
                        "layer 1: label → its item", color="C3")
    axes[1].axhline((n // 2) / (2 * n + 1), color="C2", ls=":", lw=0.8)
    axes[1].axhline(np.mean(1 / (2 * np.arange(n) + 2)), color="C3", ls=":", lw=0.8)
    axes[1].set_ylabel("attention on the pattern")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("step")
    return fig


def plot_sweeps(r):
    top, base = _top(r), _base(r)
    fig, axes = figure(2, width=4.2)
    for ax, axis, other in ((axes[0], "zipf", "within_class_noise"),
                            (axes[1], "within_class_noise", "zipf")):
        rows = top[np.isclose(top[other], base[other])].sort_values(axis)
        for name, color in (("icl_accuracy", "C0"), ("iwl_accuracy", "C1")):
            ax.scatter(rows[axis], rows[name], s=10, color=color, alpha=0.6)
            means = rows.groupby(axis)[name].mean()
            ax.plot(means.index, means.values, color=color, label=name.split("_")[0].upper())
        ax.set_xlabel("Zipf exponent α" if axis == "zipf" else "within-class noise ε")
        ax.set_ylabel("final accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    return fig
