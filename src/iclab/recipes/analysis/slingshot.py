"""slingshot: drawing the tables (norm, loss and accuracy curves per ε with the detected
onsets; slingshot counts against ε)."""

import numpy as np

from iclab.report import figure


def plot_curves(r):
    runs, events = r["runs"], r["slingshots"]
    epsilons = sorted(runs.eps.unique())
    seed = int(runs.seed.min())
    fig, axes = figure(len(epsilons), width=3.6, height=7.5, rows=3)
    for col, eps in enumerate(epsilons):
        top, middle, bottom = axes[col], axes[len(epsilons) + col], axes[2 * len(epsilons) + col]
        def pick(name, eps=eps):
            rows = r.metric(f"eps{eps:g}/{name}")
            return rows[rows.seed == seed]

        norm = pick("readout_norm")
        top.plot(norm.step, norm.value, color="C0", lw=1)
        loss = pick("train_set_loss")
        middle.semilogy(loss.step, np.maximum(loss.value, 1e-9), color="C3", lw=0.8)
        for name, color, label in (("train_set_accuracy", "C2", "train"),
                                   ("test_accuracy", "C1", "test")):
            rows = pick(name)
            bottom.plot(rows.step, rows.value, color=color, lw=1, label=label)
        onsets = (events[(events.eps == eps) & (events.seed == seed)
                         & events.slingshot.astype(bool)].onset if len(events) else [])
        for ax in (top, middle, bottom):
            for onset in onsets:
                ax.axvline(onset, color="gray", ls=":", lw=0.6)
        top.set_title(f"Adam ε = {eps:g}")
        bottom.set_xlabel("step")
    axes[0].set_ylabel("‖W_out‖_F")
    axes[len(epsilons)].set_ylabel("training-set loss")
    axes[2 * len(epsilons)].set_ylabel("accuracy")
    axes[2 * len(epsilons)].legend(fontsize=8)
    return fig


def plot_detections(r):
    runs, events = r["runs"], r["slingshots"]
    fig, axes = figure(2)
    epsilons = sorted(runs.eps.unique())
    x = np.arange(len(epsilons))
    axes[0].plot(x, runs.groupby("eps").slingshots.mean().reindex(epsilons), "o-")
    for i, eps in enumerate(epsilons):
        values = runs[runs.eps == eps].slingshots
        axes[0].plot([i] * len(values), values, ".", color="C0", alpha=0.4)
    axes[0].set_xticks(x, [f"{e:g}" for e in epsilons])
    axes[0].set_xlabel("Adam ε")
    axes[0].set_ylabel("slingshots per seed")
    sling = events[events.slingshot.astype(bool)] if len(events) else events
    for i, eps in enumerate(epsilons if len(sling) else []):
        rows = sling[sling.eps == eps]
        axes[1].semilogy(rows.onset, rows.norm_ratio - 1, ".", color=f"C{i}",
                         label=f"ε = {eps:g}")
    axes[1].set_xlabel("onset step")
    axes[1].set_ylabel("norm ratio − 1 across the burst")
    if len(sling):
        axes[1].legend(fontsize=8)
    return fig
