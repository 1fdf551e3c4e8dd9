"""lr-transfer: drawing loss against learning rate per width or depth (the μP papers'
transfer figures), with each shape's fitted optimum."""

import numpy as np

from iclab.report import figure

TITLES = {"sp": "SP", "mup": "μP", "depth_mup": "depth-μP (1/√L)",
          "completep": "CompleteP (1/L)"}


def _panels(r, axis: str, label: str):
    losses, optima = r["losses"], r["optima"]
    rows = losses[losses.axis == axis]
    schemes = list(dict.fromkeys(rows.scheme))
    fig, axes = figure(len(schemes), width=3.6)
    for ax, scheme in zip(axes, schemes, strict=True):
        mine = rows[rows.scheme == scheme]
        sizes = sorted(mine["size"].unique())
        for k, size in enumerate(sizes):
            curve = mine[mine["size"] == size].groupby("lr").loss.mean().sort_index()
            color = f"C{k % 10}"
            ax.plot(np.log2(curve.index), curve.to_numpy(), marker="o", ms=3, color=color,
                    label=f"{label} {size}")
            best = optima[(optima.axis == axis) & (optima.scheme == scheme)
                          & (optima["size"] == size)]
            if len(best) and np.isfinite(best.lr_star.iloc[0]):
                x = np.log2(best.lr_star.iloc[0])
                y = np.interp(x, np.log2(curve.index), curve.to_numpy())
                ax.plot([x], [y], marker="*", ms=10, color=color, mec="black", mew=0.5)
        finite = mine.loss[np.isfinite(mine.loss)]
        if len(finite):
            low = finite.min()
            ax.set_ylim(low - 0.05 * abs(low), min(finite.max(), low + 2.5))
        ax.set_title(TITLES.get(scheme, scheme), fontsize=9)
        ax.set_xlabel("log₂ learning rate")
    axes[0].set_ylabel("held-out loss at the end")
    axes[0].legend(fontsize=7)
    return fig


def plot_width(r):
    return _panels(r, "width", "width")


def plot_depth(r):
    return _panels(r, "depth", "depth")
