"""super-consistency: drawing the scaled sharpness against the edge of stability and the
kernel's distance from initialisation, per width."""

from iclab.report import figure

TITLES = {"mup": "μP", "ntk": "NTK"}


def _per_width(r, value: str, edge: bool):
    curves = r["curves"]
    schemes = list(dict.fromkeys(curves.scheme))
    fig, axes = figure(len(schemes), width=3.8)
    for ax, scheme in zip(axes, schemes, strict=True):
        mine = curves[curves.scheme == scheme]
        for k, (width, rows) in enumerate(mine.groupby("width")):
            mean = rows.groupby("step")[value].mean()
            ax.plot(mean.index, mean.to_numpy(), color=f"C{k}", label=f"width {width}")
        if edge:
            ax.axhline(2 / r.config.optim.lr, color="gray", ls="--", lw=0.8)
            ax.set_yscale("log")
        ax.set_title(TITLES.get(scheme, scheme), fontsize=9)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    return fig, axes


def plot_sharpness(r):
    fig, axes = _per_width(r, "sharpness", edge=True)
    axes[0].set_ylabel("λ_max(D^½ H D^½)")
    return fig


def plot_kernel(r):
    fig, axes = _per_width(r, "kernel_distance", edge=False)
    axes[0].set_ylabel("‖Θ_t − Θ₀‖ / ‖Θ₀‖")
    return fig
