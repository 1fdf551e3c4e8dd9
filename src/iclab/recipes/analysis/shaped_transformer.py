"""shaped-transformer: drawing the correlation's distributions, the KS distances and the
quantiles against depth."""

import numpy as np

from iclab.report import figure


def plot_distributions(r):
    samples = r["samples"]
    taus = sorted(samples.tau0.unique(), reverse=True)
    fig, axes = figure(len(taus), width=3.4)
    for ax, tau0 in zip(axes, taus, strict=True):
        rows = samples[np.isclose(samples.tau0, tau0)]
        widths = sorted(rows[rows.kind == "network"].width.unique())
        for k, n in enumerate(widths):
            rho = np.sort(rows[(rows.kind == "network") & (rows.width == n)].rho.to_numpy())
            shade = 0.25 + 0.75 * k / max(len(widths) - 1, 1)
            ax.plot(rho, np.linspace(0, 1, rho.size), color=(0.1, 0.3, 0.8, shade), lw=1,
                    label=f"n = {n}")
        rho = np.sort(rows[rows.kind == "sde"].rho.to_numpy())
        ax.plot(rho, np.linspace(0, 1, rho.size), "k--", lw=1, label="SDE")
        ax.set_xlabel("ρ at T")
        ax.set_ylabel("empirical CDF")
        ax.set_title(f"τ₀ = {tau0:g}", fontsize=9)
        ax.legend(fontsize=6)
    return fig


def plot_ks(r):
    ks = r["ks"]
    fig, axes = figure(1, width=3.8)
    ax = axes[0]
    for k, (tau0, rows) in enumerate(ks.groupby("tau0")):
        rows = rows.sort_values("width")
        ax.plot(rows.width, rows.ks, marker="o", ms=3, color=f"C{k}", label=f"τ₀ = {tau0:g}")
    ax.plot(sorted(ks.width.unique()), [ks.critical_5pct.iloc[0]] * ks.width.nunique(),
            color="0.6", lw=1, label="5 % critical value")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("width n (depth T·n)")
    ax.set_ylabel("KS distance, network vs SDE")
    ax.legend(fontsize=7)
    return fig


def plot_quantiles(r):
    q = r["quantiles"]
    fig, axes = figure(1, width=4.2)
    ax = axes[0]
    styles = {"network": ("C0", "-"), "sde": ("k", "--"), "softmax": ("0.6", "-")}
    strongest = q.tau0.min()
    for kind, (color, style) in styles.items():
        rows = q[(q.kind == kind) & np.isclose(q.tau0, strongest)].sort_values("t")
        for col in ("q10", "q25", "q50", "q75", "q90"):
            ax.plot(rows.t, rows[col], style, color=color, lw=1.4 if col == "q50" else 0.8,
                    label=kind if col == "q50" else None)
    ax.set_xlabel("t = layer / n")
    ax.set_ylabel("ρ (quantiles)")
    ax.legend(fontsize=7)
    return fig
