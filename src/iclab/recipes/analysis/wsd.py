"""wsd: drawing the curves (excess loss with the schedules, sharpness against the edge of
stability, the fixed-batch loss)."""

from iclab.report import figure, mean_curve

COLORS = {"wsd": "C0", "cosine": "C1"}


def _decay_line(r, ax):
    config = r.config
    start = config.train.steps - int(config.optim.decay_fraction * config.train.steps)
    ax.axvline(start, color="gray", ls=":", lw=0.8)


def plot_losses(r):
    fig, (ax,) = figure(1, width=6.5)
    twin = ax.twinx()
    for name, color in COLORS.items():
        rows = r.metric(f"{name}/excess_loss")
        for _, curve in rows.groupby("seed"):
            ax.semilogy(curve.step, curve.value, color=color, lw=0.6, alpha=0.5)
        mean = mean_curve(rows)
        ax.semilogy(mean.index, mean.to_numpy(), color=color, lw=1.6, label=name)
        lr = mean_curve(r.metric(f"{name}/probe/lr"))
        twin.plot(lr.index, lr.to_numpy(), color=color, ls="--", lw=0.8)
    _decay_line(r, ax)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out loss − entropy rate")
    twin.set_ylabel("learning rate")
    ax.legend(fontsize=8)
    return fig


def plot_sharpness(r):
    fig, axes = figure(2)
    for name, color in COLORS.items():
        sharp = mean_curve(r.metric(f"{name}/probe/preconditioned_sharpness"))
        lr = mean_curve(r.metric(f"{name}/probe/lr")).reindex(sharp.index)
        axes[0].semilogy(sharp.index, (sharp * lr / 38).to_numpy(), color=color, label=name)
        hessian = mean_curve(r.metric(f"{name}/probe/sharpness"))
        axes[1].plot(hessian.index, hessian.to_numpy(), color=color, label=name)
    axes[0].axhline(1.0, color="gray", ls="--", lw=0.8)
    for ax in axes:
        _decay_line(r, ax)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("preconditioned sharpness × η / 38")
    axes[1].set_ylabel("top Hessian eigenvalue")
    return fig


def plot_fixed_batch(r):
    fig, (ax,) = figure(1, width=6.5)
    floor = float(r["summary"].entropy_rate.iloc[0])
    for name, color in COLORS.items():
        fixed = mean_curve(r.metric(f"{name}/probe/loss"))
        ax.semilogy(fixed.index, fixed.to_numpy() - floor, color=color, label=f"{name}: "
                    "fixed batch")
        held = mean_curve(r.metric(f"{name}/excess_loss"))
        ax.semilogy(held.index, held.to_numpy(), color=color, ls="--", lw=0.8,
                    label=f"{name}: held out")
    _decay_line(r, ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss − entropy rate")
    ax.legend(fontsize=8)
    return fig
