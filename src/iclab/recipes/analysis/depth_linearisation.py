"""depth-linearisation: drawing the distance from the linearisation against depth."""


from iclab.report import figure


def plot_distance(r):
    summary = r["summary"]
    optimizers = list(dict.fromkeys(summary.optimizer))
    fig, axes = figure(len(optimizers), width=3.6)
    for ax, optimizer in zip(axes, optimizers, strict=True):
        rows = summary[summary.optimizer == optimizer]
        for k, (alpha, curve) in enumerate(rows.groupby("alpha")):
            curve = curve.sort_values("depth")
            color = f"C{k}"
            ax.plot(curve.depth, curve.distance, marker="o", ms=3, color=color,
                    label=f"α = {alpha:g}")
            lo = 2.0 ** (curve.log2_distance - curve.log2_distance_std)
            hi = 2.0 ** (curve.log2_distance + curve.log2_distance_std)
            ax.fill_between(curve.depth, lo, hi, color=color, alpha=0.15)
            d0, v0 = curve.depth.iloc[0], curve.distance.iloc[0]
            depths = curve.depth.to_numpy(dtype=float)
            ax.plot(depths, v0 * (depths / d0) ** (1.5 * (alpha - 1)), "--", color=color,
                    lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("depth L (blocks)")
        ax.set_ylabel("Δ, distance from linearisation")
        ax.set_title("Adam" if optimizer == "adam" else "SGD", fontsize=9)
        ax.legend(fontsize=7)
    return fig
