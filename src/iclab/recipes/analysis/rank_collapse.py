"""rank-collapse: drawing the token cosine and the projections' gradients against depth."""

import numpy as np

from iclab.report import figure

LABELS = {"no_residual": "no residual", "post_ln": "Post-LN", "pre_ln": "Pre-LN",
          "pre_ln_sqrt_depth": "Pre-LN, 1/√L branches", "shaped": "Pre-LN, shaped attention"}


def plot_cosine(r):
    summary, layers = r["summary"], r["layers"]
    fig, axes = figure(2, width=3.8)
    for k, (variant, rows) in enumerate(summary.groupby("variant", sort=False)):
        rows = rows.sort_values("depth")
        color = f"C{k}"
        axes[0].plot(rows.depth, rows.rho, marker="o", ms=3, color=color,
                     label=LABELS.get(variant, variant))
        axes[0].fill_between(rows.depth, rows.rho - rows.rho_std, rows.rho + rows.rho_std,
                             color=color, alpha=0.15)
        deep = layers[layers.variant == variant]
        axes[1].plot(deep.layer, deep.rho, color=color)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("depth (blocks)")
    axes[0].set_ylabel("ρ, last block")
    axes[0].set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("block of the deepest model")
    axes[1].set_ylabel("ρ")
    axes[1].set_ylim(0, 1.02)
    return fig


def plot_gradients(r):
    summary = r["summary"]
    variants = list(dict.fromkeys(summary.variant))
    fig, axes = figure(len(variants), width=2.8)
    for ax, variant in zip(axes, variants, strict=True):
        rows = summary[summary.variant == variant].sort_values("depth")
        for name, style in (("q", "-"), ("k", "--"), ("v", ":")):
            values = rows[f"grad_{name}"].to_numpy()
            ax.plot(rows.depth, np.where(values > 0, values, np.nan), ls=style, color="C0",
                    label=f"∇W_{name.upper()}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(LABELS.get(variant, variant), fontsize=8)
        ax.set_xlabel("depth")
    axes[0].set_ylabel("last layer's gradient norm")
    axes[0].legend(fontsize=7)
    return fig
