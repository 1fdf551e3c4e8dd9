"""wd-low-rank: drawing the tables (the toy's singular values and imbalance during GD, the
transformer's attention ranks against the attention weight decay)."""

import numpy as np

from iclab.report import figure


def plot_singular_values(r, diagonal):
    lambdas = sorted(r["toy"].lam.unique())
    fig, axes = figure(len(lambdas), width=3.0)
    seed = int(r["toy"].seed.min())
    for ax, lam in zip(axes, lambdas, strict=True):
        for i in range(len(diagonal)):
            rows = r.metric(f"toy_l{lam:g}/s{i + 1}")
            rows = rows[rows.seed == seed]
            ax.plot(rows.step, rows.value, color=f"C{i}", lw=1)
        for d in diagonal:
            ax.axhline(max(d - lam, 0.0), color="gray", ls=":", lw=0.8)
        ax.set_title(f"λ = {lam:g}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("singular values of ABᵀ")
    return fig


def plot_imbalance(r):
    fig, (ax,) = figure(1, width=6)
    toy = r["toy"]
    for j, lam in enumerate(sorted(toy.lam.unique())):
        rows = r.metric(f"toy_l{lam:g}/imbalance")
        for k, (_, curve) in enumerate(rows.groupby("seed")):
            ax.semilogy(curve.step, curve.value, color=f"C{j}", lw=1, alpha=0.7,
                        label=f"λ = {lam:g}" if k == 0 else None)
            if lam > 0 and k == 0:
                steps = curve.step.to_numpy()
                ax.semilogy(steps, curve.value.iloc[0] * np.exp(-2 * r.config.toy.lr * lam
                                                                 * steps),
                            color=f"C{j}", ls="--", lw=0.8)
    ax.set_ylim(1e-8, None)
    ax.set_xlabel("step")
    ax.set_ylabel("‖AᵀA − BᵀB‖_F")
    ax.legend(fontsize=8)
    return fig


def plot_ranks(r):
    table = r["attention"]
    fig, axes = figure(2)
    for ax, product, name in ((axes[0], "qk", "W_Kᵀ W_Q"), (axes[1], "ov", "W_O W_V")):
        for column, color, label in ((f"{product}_effective_rank", "C0", "effective rank"),
                                     (f"{product}_rank", "C1", "rank@0.01")):
            means = table.groupby("lam_attn")[column].mean()
            x = np.arange(len(means))
            ax.plot(x, means.to_numpy(), "o-", color=color, label=label)
            for i, lam in enumerate(means.index):
                ax.plot([i] * int((table.lam_attn == lam).sum()),
                        table[table.lam_attn == lam][column], ".", color=color, alpha=0.4)
        ax.set_xticks(np.arange(len(means)), [f"{v:g}" for v in means.index])
        ax.set_xlabel("λ_attn")
        ax.set_title(name)
        ax.legend(fontsize=8)
    return fig
