"""mesa: reading and drawing the tables (per-t losses, probes, the fixed-teacher control)."""

import numpy as np
import pandas as pd

from iclab.report import figure, plot_metric_by_seed

RIDGE, PROP1, GD0 = "AR ridge, tuned λ", "Prop. 1 (GD from learned Φ₀)", "1 GD step from 0"
PROP2 = "Prop. 2 ({} steps)"
NEXT, PRECOND = "next state s_{t+1}", "preconditioned (SSᵀ+I/λ)⁻¹s_t"
PAST = "previous state s_{t−1}"
FEW_SHOT, FEW_SHOT_EOS = "softmax TF", "softmax TF + EOS"
FEW_SHOT_PREFIX = "softmax TF + EOS + prefix"
LSQ_CLEAN, LSQ_MESA = "LSQ on the pairs", "LSQ on D_mesa (spurious pairs)"


def mean_loss(r, learner: str, table: str = "per_t") -> pd.Series:
    """Mean loss over t of a learner, per seed (baselines: one value, seed −1)."""
    rows = r[table]
    return rows[rows.learner == learner].groupby("seed").loss.mean()


def probe_error(r, target: str, table: str = "probes") -> np.ndarray:
    """1 − R² of the probes of ``target``, (layers + 1, T)."""
    rows = r[table][r[table].target == target]
    return 1 - rows.pivot_table(index="layer", columns="t", values="r2").to_numpy()


def pair_loss(r, learner: str, which=None) -> pd.Series:
    """Few-shot loss per seed: at one pair (an index into the pairs), over the first half
    of the pairs ("early") or the mean over all (None)."""
    rows = r["few_shot"]
    curves = rows[rows.learner == learner].pivot_table(index="pair", columns="seed",
                                                        values="loss")
    if which is None:
        return curves.mean(axis=0)
    if which == "early":
        return curves.iloc[: max(1, len(curves) // 2)].mean(axis=0)
    return curves.iloc[which]


def structure_share(r, model: str) -> pd.Series:
    """A 1-layer model's block-identity share, per seed."""
    rows = r["structure"]
    return rows[(rows.model == model) & (rows.layer == 1)].set_index("seed").share


def gap_per_t(r, learner: str, reference: str, table: str = "per_t",
              ref_table: str = "per_t") -> pd.Series:
    """mean over t of |ln L_learner(t) / L_reference(t)|: per seed where ``learner`` has
    seeds (paired with the reference's same seed), else one value against the
    reference's mean over seeds."""
    rows, ref = r[table], r[ref_table]
    ref = ref[ref.learner == reference].pivot_table(index="t", columns="seed", values="loss")
    own = rows[rows.learner == learner].pivot_table(index="t", columns="seed", values="loss")
    if list(own.columns) == [-1]:
        return pd.Series([float(np.abs(np.log(own[-1] / ref.mean(axis=1))).mean())], [-1])
    return np.abs(np.log(own / ref[own.columns])).mean(axis=0)


def ratio_over_depth(r) -> float:
    """max over K of L̄_{next K} / L̄_K for the trained LSAs (below 1: depth helps)."""
    deep = [float(mean_loss(r, f"LSA-{k}").mean()) for k in sorted(r.config.depths)]
    return max(b / a for a, b in zip(deep[:-1], deep[1:], strict=True))


def first_step_loss(r) -> float:
    """The trained 1-layer LSA's loss at t = 1 (mean over seeds)."""
    rows = r["per_t"]
    return float(rows[(rows.learner == "LSA-1") & (rows.t == 1)].loss.mean())


STYLES = {"oracle (knows W*)": ("k", ":"), RIDGE: ("C3", "--"), GD0: ("C7", ":"),
          PROP1: ("C1", "--"), "softmax kernel regression": ("C8", "-.")}


def plot_loss_per_t(r):
    per_t, task = r["per_t"], r.config.task
    fig, (ax,) = figure(1, width=7.5, height=4.2)
    baselines = per_t[per_t.seed < 0]
    for i, (name, rows) in enumerate(baselines.groupby("learner", sort=False)):
        color, ls = STYLES.get(name, (f"C{5 + i % 3}", "--"))
        ax.plot(rows.t, rows.loss, color=color, ls=ls, lw=1.2, label=name)
    models = per_t[per_t.seed >= 0]
    for i, (name, rows) in enumerate(models.groupby("learner", sort=False)):
        stats = rows.groupby("t").loss.agg(["mean", lambda x: float(np.std(x))])
        mean, std = stats["mean"].to_numpy(), stats.iloc[:, 1].to_numpy()
        color = "C2" if name.startswith("mesa") else f"C{[0, 4, 9, 6, 5][i % 5]}"
        ax.plot(stats.index, mean, color=color, lw=2, label=f"{name} (trained)")
        ax.fill_between(stats.index, mean - std, mean + std, color=color, alpha=0.2)
    if "compressed_per_t" in r.tables:
        for name, rows in r["compressed_per_t"].groupby("learner"):
            mean = rows.groupby("t").loss.mean()
            ax.plot(mean.index, mean.values, color="C6", ls="--", lw=1.5,
                    label=f"{name} (trained weights, compressed)")
    ax.axhline(task.first_step_loss(), color="grey", lw=0.6)
    ax.axhline(task.noise_floor(), color="grey", lw=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("½ E‖ŝ_{t+1} − s_{t+1}‖²")
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_learning_curves(r):
    names = list(dict.fromkeys(r["per_t"][r["per_t"].seed >= 0].learner))
    ridge, prop1 = float(mean_loss(r, RIDGE).mean()), float(mean_loss(r, PROP1).mean())
    fig, axes = figure(len(names), width=3.2)
    for ax, name in zip(axes, names, strict=True):
        plot_metric_by_seed(ax, r.metrics, f"{name}/test_loss", name)
        ax.axhline(ridge, color="C3", ls="--", lw=1)
        ax.axhline(prop1, color="C1", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel("mean test loss (dashed: ridge, Prop. 1)")
    return fig


def plot_probes(r):
    targets = list(dict.fromkeys(r["probes"].target))
    fig, axes = figure(len(targets), width=5.0, height=3.4)
    for ax, target in zip(axes, targets, strict=True):
        r2 = 1 - probe_error(r, target)
        image = ax.imshow(r2, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                          extent=(0.5, r2.shape[1] + 0.5, r2.shape[0] - 0.5, -0.5))
        ax.set_title(f"probe R²: {target}", fontsize=9)
        ax.set_xlabel("time step t")
        ax.set_ylabel("layer (0 = tokens)")
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def plot_fixed_teacher(r):
    fixed, per_t = r["fixed_teacher"], r["per_t"]
    curve = lambda rows, name: rows[rows.learner == name].groupby("t").loss.mean()
    fig, (ax,) = figure(1, width=5.5)
    for rows, name, style, label in (
            (fixed, "LSA-1", dict(color="C0", lw=2), "LSA-1 (trained)"),
            (fixed, GD0, dict(color="C7", ls=":"), "1 GD step from 0, tuned η"),
            (fixed, "oracle", dict(color="k", ls=":"), "oracle"),
            (per_t, "LSA-1", dict(color="C0", alpha=0.4), "LSA-1 on random systems")):
        c = curve(rows, name)
        ax.plot(c.index, c.values, label=label, **style)
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.legend(fontsize=7)
    return fig


def loss_table(r) -> pd.DataFrame:
    per_t = r["per_t"]
    curves = per_t.groupby(["learner", "t"], sort=False).loss.mean().reset_index()
    out = curves.groupby("learner", sort=False).loss.agg(
        mean_loss="mean", t_1="first", t_T="last").reset_index()
    trained = set(per_t[per_t.seed >= 0].learner)
    out["learner"] = [f"{n} (trained, mean of seeds)" if n in trained else n for n in out.learner]
    return out


def plot_plain(r):
    per_t = r["plain_per_t"]
    fig, (ax, bx) = figure(2, width=5.0, height=3.6)
    for i, (name, rows) in enumerate(per_t.groupby("learner", sort=False)):
        stats = rows.groupby("t").loss.agg(["mean", "std"]).fillna(0.0)
        trained = bool((rows.seed >= 0).any())
        ax.plot(stats.index, stats["mean"], color=f"C{i}", lw=2 if trained else 1.2,
                ls="-" if trained else "--", label=name + (" (trained)" if trained else ""))
        if trained:
            ax.fill_between(stats.index, stats["mean"] - stats["std"],
                            stats["mean"] + stats["std"], color=f"C{i}", alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("½ E‖ŝ_{t+1} − s_{t+1}‖²")
    ax.legend(fontsize=7)
    probes = r["plain_probes"]
    for j, (target, rows) in enumerate(probes.groupby("target", sort=False)):
        r2 = rows[rows.t > 1].groupby("layer").r2.mean()
        bx.plot(r2.index, r2.values, marker="o", color=f"C{j}", label=target)
    bx.set_xlabel("layer (0 = embedded tokens)")
    bx.set_ylabel("probe R², mean over t ≥ 2")
    bx.legend(fontsize=7)
    return fig


def plot_few_shot(r):
    rows = r["few_shot"]
    fig, (ax,) = figure(1, width=5.5)
    for i, (name, group) in enumerate(rows.groupby("learner", sort=False)):
        mean = group.groupby("pair").loss.mean()
        ax.plot(mean.index, mean.values, marker="o", ms=3, color=f"C{i}",
                ls="--" if name.startswith("LSQ") else "-", label=name)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("pair i (prediction of y_i from the pairs before)")
    ax.set_ylabel("½ E‖ŷ_i − y_i‖²")
    ax.legend(fontsize=7)
    return fig
