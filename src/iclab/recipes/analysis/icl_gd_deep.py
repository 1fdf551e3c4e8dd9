"""icl-gd-deep: reading and drawing the tables (loss by depth, per-layer read-outs,
behavioural matching)."""

import numpy as np
import pandas as pd

from iclab.report import figure, plot_metric_by_seed


def _family(frame: pd.DataFrame, recurrent: bool) -> pd.DataFrame:
    """The rows of one weight sharing (tables without the column: all rows)."""
    if "recurrent" not in frame:
        return frame
    return frame[frame.recurrent == recurrent]


def _families(r) -> list[bool]:
    depths = r["depths"]
    return list(dict.fromkeys(depths.recurrent)) if "recurrent" in depths else [True]


def per_depth(r, depth: int, recurrent: bool = True) -> pd.DataFrame:
    seeds = _family(r["seeds"], recurrent)
    return seeds[seeds.depth == depth]


def readout_gap(r, depth: int) -> float:
    """Mean over layers l = 1..K of |log(L_TF^l / L_GD++^l)| − |log(L_TF^l / L_GD^l)| for the
    read-outs inside the recurrent K-layer models (TF: mean over seeds); negative: closer
    to GD++."""
    layers = _family(r["layers"], True)
    rows = layers[layers.depth == depth]
    curve = {name: rows[rows.learner == name].groupby("layer").loss.mean().sort_index()
             for name in ("trained LSA", "GD", "GD++")}
    tf = curve["trained LSA"].to_numpy()
    return float(np.mean(np.abs(np.log(tf / curve["GD++"].to_numpy())))
                 - np.mean(np.abs(np.log(tf / curve["GD"].to_numpy()))))


NAMES = {True: "recurrent", False: "non-recurrent"}


def plot_loss_vs_depth(r):
    fig, (ax,) = figure(1, width=5.5)
    for i, rec in enumerate(_families(r)):
        depths, seeds = _family(r["depths"], rec), _family(r["seeds"], rec)
        tf, pp = ("C0", "C2") if i == 0 else ("C1", "C4")
        ax.scatter(seeds.depth, seeds.loss, color=tf, alpha=0.4, s=12)
        ax.plot(depths.depth, seeds.groupby("depth").loss.mean().loc[depths.depth], "o-",
                color=tf, label=f"trained LSA, {NAMES[rec]} (mean; dots: seeds)")
        ax.plot(depths.depth, depths.gdpp_loss, "^--", color=pp,
                label=f"GD++, tuned ({NAMES[rec]})")
        if i == 0:
            ax.plot(depths.depth, depths.gd_loss, "s--", color="C3", label="GD, tuned η")
            ax.set_xticks(depths.depth)
    ax.set_xlabel("layers / steps K")
    ax.set_ylabel("½ MSE on the query")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return fig


def plot_layer_readouts(r):
    first = _families(r)[0]
    layers, depths = r["layers"], list(_family(r["depths"], first).depth)
    fig, axes = figure(len(depths), width=3.6)
    for ax, depth in zip(axes, depths, strict=True):
        rows = _family(layers[layers.depth == depth], first)
        for learner, style, color in (("trained LSA", "o-", "C0"), ("GD", "s--", "C3"),
                                      ("GD++", "^--", "C2")):
            curve = rows[rows.learner == learner].groupby("layer").loss.mean()
            ax.plot(curve.index, curve.values, style, color=color,
                    label=f"{learner} ({NAMES[first]})" if learner != "GD" else learner)
        if len(_families(r)) > 1:
            other = _family(layers[layers.depth == depth], not first)
            curve = other[other.learner == "trained LSA"].groupby("layer").loss.mean()
            ax.plot(curve.index, curve.values, "o:", color="C1",
                    label=f"trained LSA ({NAMES[not first]})")
        ax.set_yscale("log")
        ax.set_xticks(range(1, depth + 1))
        ax.set_xlabel("read-out after layer l")
        ax.set_title(f"K = {depth}", fontsize=9)
    axes[0].set_ylabel("½ MSE")
    axes[0].legend(fontsize=7)
    return fig


def plot_learning_curves(r):
    families = _families(r)
    depths = _family(r["depths"], families[0])
    fig, axes = figure(len(depths), width=3.6)
    for ax, row in zip(axes, depths.itertuples(), strict=True):
        for i, rec in enumerate(families):
            name = f"K{row.depth}" if rec else f"K{row.depth}-nr"
            plot_metric_by_seed(ax, r.metrics, f"{name}/test_loss",
                                f"trained LSA, {NAMES[rec]}", color=f"C{i}")
        ax.axhline(row.gd_loss, color="C3", ls="--", label="GD")
        ax.axhline(row.gdpp_loss, color="C2", ls="--", label=f"GD++ ({NAMES[families[0]]})")
        ax.set_yscale("log")
        ax.set_title(f"K = {row.depth}", fontsize=9)
    axes[0].legend(fontsize=7)
    return fig


def plot_behaviour(r):
    first = _families(r)[0]
    behaviour = _family(r["behaviour"], first)
    depths = list(_family(r["depths"], first).depth)
    fig, axes = figure(2, width=4.5)
    for c, name in enumerate(dict.fromkeys(behaviour.learner)):
        rows = behaviour[behaviour.learner == name]
        for ax, key in zip(axes, ("spd", "ilwd"), strict=True):
            ax.plot(rows.depth, rows[key], "o-", color=f"C{c}", label=name)
    for ax, label in zip(axes, ("SPD (squared prediction difference)",
                                "ILWD (implicit weight difference)"), strict=True):
        ax.set_xlabel(f"layers K of the trained model ({NAMES[first]})")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.set_xticks(depths)
    axes[0].legend(fontsize=7)
    return fig


def per_depth_table(r) -> pd.DataFrame:
    keys = ["depth", "recurrent"] if "recurrent" in r["seeds"] else ["depth"]
    stats = r["seeds"].groupby(keys).agg(tf_loss=("loss", "mean"),
                                         tf_std=("loss", lambda x: float(np.std(x))),
                                         cos_gd=("cos_gd", "mean"),
                                         cos_gdpp=("cos_gdpp", "mean"))
    return r["depths"].merge(stats.reset_index(), on=keys)
