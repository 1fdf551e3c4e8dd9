"""icl-gd-deep: reading and drawing the tables (loss by depth, per-layer read-outs,
behavioural matching)."""

import numpy as np
import pandas as pd

from iclab.report import figure, plot_metric_by_seed


def per_depth(r, depth: int) -> pd.DataFrame:
    seeds = r["seeds"]
    return seeds[seeds.depth == depth]


def readout_gap(r, depth: int) -> float:
    """Mean over layers l = 1..K of |log(L_TF^l / L_GD++^l)| − |log(L_TF^l / L_GD^l)| for the
    read-outs inside the K-layer models (TF: mean over seeds); negative: closer to GD++."""
    rows = r["layers"][r["layers"].depth == depth]
    curve = {name: rows[rows.learner == name].groupby("layer").loss.mean().sort_index()
             for name in ("trained LSA", "GD", "GD++")}
    tf = curve["trained LSA"].to_numpy()
    return float(np.mean(np.abs(np.log(tf / curve["GD++"].to_numpy())))
                 - np.mean(np.abs(np.log(tf / curve["GD"].to_numpy()))))


def plot_loss_vs_depth(r):
    depths, seeds = r["depths"], r["seeds"]
    fig, (ax,) = figure(1, width=5.5)
    ax.scatter(seeds.depth, seeds.loss, color="C0", alpha=0.4, s=12)
    ax.plot(depths.depth, seeds.groupby("depth").loss.mean().loc[depths.depth], "o-",
            color="C0", label="trained LSA (mean; dots: seeds)")
    ax.plot(depths.depth, depths.gd_loss, "s--", color="C3", label="GD, tuned η")
    ax.plot(depths.depth, depths.gdpp_loss, "^--", color="C2", label="GD++, tuned")
    ax.set_xlabel("layers / steps K")
    ax.set_ylabel("½ MSE on the query")
    ax.set_yscale("log")
    ax.set_xticks(depths.depth)
    ax.legend(fontsize=8)
    return fig


def plot_layer_readouts(r):
    layers, depths = r["layers"], list(r["depths"].depth)
    fig, axes = figure(len(depths), width=3.6)
    for ax, depth in zip(axes, depths, strict=True):
        rows = layers[layers.depth == depth]
        for learner, style, color in (("trained LSA", "o-", "C0"), ("GD", "s--", "C3"),
                                      ("GD++", "^--", "C2")):
            curve = rows[rows.learner == learner].groupby("layer").loss.mean()
            ax.plot(curve.index, curve.values, style, color=color, label=learner)
        ax.set_yscale("log")
        ax.set_xticks(range(1, depth + 1))
        ax.set_xlabel("read-out after layer l")
        ax.set_title(f"K = {depth}", fontsize=9)
    axes[0].set_ylabel("½ MSE")
    axes[0].legend(fontsize=7)
    return fig


def plot_learning_curves(r):
    depths = r["depths"]
    fig, axes = figure(len(depths), width=3.6)
    for ax, row in zip(axes, depths.itertuples(), strict=True):
        plot_metric_by_seed(ax, r.metrics, f"K{row.depth}/test_loss", "trained LSA")
        ax.axhline(row.gd_loss, color="C3", ls="--", label="GD")
        ax.axhline(row.gdpp_loss, color="C2", ls="--", label="GD++")
        ax.set_yscale("log")
        ax.set_title(f"K = {row.depth}", fontsize=9)
    axes[0].legend(fontsize=7)
    return fig


def plot_behaviour(r):
    behaviour, depths = r["behaviour"], list(r["depths"].depth)
    fig, axes = figure(2, width=4.5)
    for c, name in enumerate(dict.fromkeys(behaviour.learner)):
        rows = behaviour[behaviour.learner == name]
        for ax, key in zip(axes, ("spd", "ilwd"), strict=True):
            ax.plot(rows.depth, rows[key], "o-", color=f"C{c}", label=name)
    for ax, label in zip(axes, ("SPD (squared prediction difference)",
                                "ILWD (implicit weight difference)"), strict=True):
        ax.set_xlabel("layers K of the trained model")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.set_xticks(depths)
    axes[0].legend(fontsize=7)
    return fig


def per_depth_table(r) -> pd.DataFrame:
    stats = r["seeds"].groupby("depth").agg(tf_loss=("loss", "mean"),
                                            tf_std=("loss", lambda x: float(np.std(x))),
                                            cos_gd=("cos_gd", "mean"),
                                            cos_gdpp=("cos_gdpp", "mean"))
    return r["depths"].merge(stats.reset_index(), on="depth")
