"""coord-check: drawing the coordinate checks (mean |x| per site against width or depth,
in the style of the μP papers' coordinate-check figures)."""

from iclab.report import figure


def _sites(frame):
    return sorted(s for s in frame.site.unique() if not s.startswith("delta_"))


def plot_width(r):
    coords = r["coords"]
    rows = coords[coords.axis == "width"]
    schemes = list(dict.fromkeys(rows.scheme))
    last = int(rows.step.max())
    steps = sorted({0, min(1, last), last})
    fig, axes = figure(len(steps), width=3.4, height=2.8 * len(schemes), rows=len(schemes))
    for i, scheme in enumerate(schemes):
        mine = rows[rows.scheme == scheme]
        for j, step in enumerate(steps):
            ax = axes[i * len(steps) + j]
            at = mine[mine.step == step]
            for k, site in enumerate(_sites(at)):
                curve = at[at.site == site].groupby("size").value.mean()
                ax.plot(curve.index, curve.to_numpy(), marker="o", ms=3, color=f"C{k}",
                        label=site)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{scheme}, t = {step}", fontsize=9)
            ax.set_xlabel("width")
            if j == 0:
                ax.set_ylabel("mean |x|")
    axes[0].legend(fontsize=7)
    return fig


def plot_depth(r):
    coords = r["coords"]
    rows = coords[(coords.axis == "depth") & (coords.site == "last")]
    schemes = list(dict.fromkeys(rows.scheme))
    fig, axes = figure(len(schemes), width=3.4)
    titles = {"mup": "μP, no depth scaling", "depth_mup": "depth-μP (1/√L)",
              "completep": "CompleteP (1/L)"}
    steps = sorted(rows.step.unique())
    for ax, scheme in zip(axes, schemes, strict=True):
        mine = rows[rows.scheme == scheme]
        for k, step in enumerate(steps):
            curve = mine[mine.step == step].groupby("size").value.mean()
            ax.plot(curve.index, curve.to_numpy(), marker="o", ms=3,
                    color=f"C{k % 10}", label=f"t = {step}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(titles.get(scheme, scheme), fontsize=9)
        ax.set_xlabel("depth (blocks)")
    axes[0].set_ylabel("last residual stream, mean |x|")
    axes[0].legend(fontsize=7)
    return fig
