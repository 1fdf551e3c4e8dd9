"""incremental-rank: drawing the tables (the toy's loss and product entries against
rescaled time, the transformer's ΔW stable ranks along training)."""

import math

import numpy as np

from iclab.report import figure


def _rescale(r, alpha: float, steps):
    return np.asarray(steps) * r.config.toy.lr / math.log(1 / alpha)


def plot_rescaled_loss(r):
    fig, (ax,) = figure(1, width=6.5)
    toy = r["toy"]
    seed = int(toy.seed.min())
    for j, alpha in enumerate(sorted(toy.alpha.unique(), reverse=True)):
        rows = r.metric(f"toy_a{alpha:g}/loss")
        rows = rows[rows.seed == seed]
        ax.semilogy(_rescale(r, alpha, rows.step), rows.value, color=f"C{j}", lw=1.2,
                    label=f"α = {alpha:g}")
        row = toy[(toy.alpha == alpha) & (toy.seed == seed)].iloc[0]
        for column in [c for c in toy if c.startswith("tau")]:
            if np.isfinite(row[column]):
                ax.axvline(row[column], color=f"C{j}", lw=0.6, ls=":", alpha=0.8)
    ax.set_xlabel("t / log(1/α)")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    return fig


def plot_entries(r):
    fig, (ax,) = figure(1, width=6.5)
    toy, config = r["toy"], r.config.toy
    alpha, seed = float(toy.alpha.min()), int(toy.seed.min())
    for prefix, style, teacher in (("a", "-", config.attention), ("v", "--", config.values)):
        for i in range(config.dim):
            rows = r.metric(f"toy_a{alpha:g}/{prefix}{i}")
            rows = rows[rows.seed == seed]
            ax.plot(_rescale(r, alpha, rows.step), rows.value, style, color=f"C{i}", lw=1.2,
                    label=f"{prefix}{i}" if i < len(teacher) else None)
        for value in teacher:
            ax.axhline(value, color="gray", ls=":", lw=0.8)
    ax.set_xlabel("t / log(1/α)")
    ax.set_ylabel("product entries (a = w_Q⊙w_K, v = w_V⊙w_O)")
    ax.set_title(f"α = {alpha:g}")
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_transformer_ranks(r):
    curves = r["transformer_curves"]
    fig, axes = figure(2)
    for ax, product, name in ((axes[0], "dqk", "ΔW_KQ"), (axes[1], "dov", "ΔW_VO")):
        for j, scale in enumerate(sorted(curves.scale.unique(), reverse=True)):
            rows = curves[curves.scale == scale].groupby("step")[f"{product}_stable_rank"]
            mean = rows.mean()
            ax.plot(mean.index, mean.to_numpy(), color=f"C{j}", label=f"s = {scale:g}")
        ax.set_xlabel("step")
        ax.set_ylabel(f"stable rank of {name}")
        ax.legend(fontsize=8)
    return fig
