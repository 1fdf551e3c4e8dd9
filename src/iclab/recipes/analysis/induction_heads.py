"""induction-heads: reading and drawing the tables (emergence times, disentangled dynamics,
subspace check, attention patterns)."""

import math

import numpy as np
import pandas as pd

from iclab.framework import table_matrix
from iclab.instruments import loglog_slope
from iclab.report import figure, plot_metric_by_seed

PROGRESS = ("gamma3_tilde", "beta2_tilde", "alpha3_tilde")


def excess_accuracy(rows: pd.DataFrame) -> float:
    """The largest query accuracy above the no-circuit optimum among the rows."""
    return float((rows.accuracy - rows.no_circuit_accuracy).max())

def dis_slope(r, points: int | None = None) -> float:
    """Log-log slope of t_ICL over the largest ``points`` N (all N if None)."""
    times = r["dis_times"]
    times = times if points is None else times.iloc[-points:]
    return loglog_slope(times.n, times.t_icl)


def order_margin(r) -> float:
    """min over N of min(t_β₂ − t_γ₃, t_α₃ − t_β₂) / t_ICL (NaN if a time is missing)."""
    t = r["dis_times"]
    gaps = np.minimum(t.t_beta2 - t.t_gamma3, t.t_alpha3 - t.t_beta2) / t.t_icl
    return float(np.min(gaps.to_numpy()))  # NaN propagates: a missing time fails


def drop_gap(r) -> float:
    s = r["standard"]
    gaps = (s.t_score - s.t_acc).abs() / s.t_acc
    return float(gaps.mean()) if len(gaps) else math.nan


def subspace_max(r, population: str, column: str) -> float:
    rows = r["subspace"]
    return float(rows[rows.population == population][column].max())


def plot_phase_change(r):
    fig, axes = figure(3, width=4.2)
    for i, n in enumerate(r.config.n_values):
        for ax, name in zip(axes, ("loss", "accuracy", "induction_score"), strict=True):
            plot_metric_by_seed(ax, r.metrics, f"N{n}/{name}", f"N = {n}", color=f"C{i}")
    for ax, label in zip(axes, ("query loss (cross-entropy)", "query accuracy",
                                "layer-2 induction score at the query"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    axes[1].axhline(r.config.threshold, color="grey", lw=0.6)
    axes[0].legend(fontsize=7)
    return fig


def plot_emergence_time(r):
    s = r["standard"]
    means = s.groupby("n").t_acc.mean()
    n_values = means.index.to_numpy(float)
    fig, (ax,) = figure(1, width=5.0)
    ax.scatter(s.n, s.t_acc, color="C0", alpha=0.4, s=14)
    ax.plot(n_values, means.values, "o-", color="C0",
            label=f"mean over seeds (slope {loglog_slope(n_values, means.values):.2f})")
    if np.all(np.isfinite(means.values)):
        ax.plot(n_values, means.values[0] * (n_values / n_values[0]) ** 2, "--", color="grey",
                label="∝ N² (Musat et al.)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context pairs N")
    ax.set_ylabel(f"emergence step (accuracy ≥ {r.config.threshold})")
    ax.legend(fontsize=7)
    return fig


def plot_attention(r):
    attention = r["attention"]
    layers = list(dict.fromkeys(attention.name))
    fig, axes = figure(len(layers), width=4.2, height=4.0)
    for i, (layer, ax) in enumerate(zip(layers, axes, strict=True)):
        ax.imshow(table_matrix(attention, layer), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {i + 1}, head 1", fontsize=9)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    return fig


def plot_disentangled_dynamics(r):
    dis = r.config.disentangled
    series = lambda name: r.metrics[r.metrics.metric == name].sort_values("step")
    fig, axes = figure(2, width=4.6)
    for i, n in enumerate(dis.n_values):
        rows = series(f"dis_N{n}/loss")
        axes[0].plot(dis.lr * rows.step, rows.value, color=f"C{i}", label=f"N = {n}")
    axes[0].axhline(dis.emergence_loss, color="grey", lw=0.6)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("time (lr · steps)")
    axes[0].set_ylabel("population loss (½ MSE)")
    axes[0].legend(fontsize=7)
    n_big = dis.n_values[-1]
    for name, label, color in (("gamma3", "γ₃ copy", "C2"), ("beta2", "β₂ match", "C1"),
                               ("alpha3", "α₃ previous token", "C0")):
        rows = series(f"dis_N{n_big}/{name}")
        axes[1].plot(dis.lr * rows.step, rows.value, color=color, label=label)
    for name in [f"alpha{i}" for i in (1, 2)] + [f"beta{i}" for i in (1, 3, 4, *range(5, 13))] \
            + [f"gamma{i}" for i in (1, 2, 4)]:
        rows = series(f"dis_N{n_big}/{name}")
        axes[1].plot(dis.lr * rows.step, rows.value, color="grey", lw=0.5, alpha=0.6)
    axes[1].axhline(dis.rise_level, color="grey", lw=0.6, ls=":")
    axes[1].set_xlabel("time (lr · steps)")
    axes[1].set_ylabel(f"coordinate (N = {n_big})")
    axes[1].legend(fontsize=7)
    return fig


def plot_disentangled_emergence(r):
    t, dis = r["dis_times"], r.config.disentangled
    n = t.n.to_numpy(float)
    fig, (ax,) = figure(1, width=5.0)
    for key, label, color in (("t_icl", "t_ICL (loss ≤ ½ L(0))", "C3"),
                              ("t_alpha3", "α₃ rise", "C0"), ("t_beta2", "β₂ rise", "C1"),
                              ("t_gamma3", "γ₃ rise", "C2")):
        ax.plot(n, t[key], "o-", color=color, label=label)
    if np.all(np.isfinite(t.t_icl)):
        last = float(t.t_icl.iloc[-1])
        ax.plot(n, last * (n / n[-1]) ** 2, "--", color="grey", label="∝ N²")
        ax.plot(n, last * (n / n[-1]), ":", color="grey", label="∝ N")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context pairs N")
    ax.set_ylabel("time (lr · steps)")
    ax.set_title(f"slope of t_ICL: {dis_slope(r, dis.slope_points):.2f} (largest "
                 f"{dis.slope_points} N), {dis_slope(r):.2f} (all)", fontsize=8)
    ax.legend(fontsize=7)
    return fig


def plot_subspace(r):
    rows = r["subspace"]
    fig, (ax,) = figure(1, width=5.0)
    for population, label in (("symmetric", "symmetry-closed population"),
                              ("haar", "i.i.d. Haar-rotated batch (control)")):
        one = rows[rows.population == population]
        ax.plot(one.step, np.maximum(one.residual, 1e-18), label=label)
    ax.axhline(1e-6, color="grey", lw=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖W − PW‖ / ‖W‖")
    ax.legend(fontsize=7)
    return fig


def plot_progress(r):
    n_values = r.config.n_values
    fig, axes = figure(len(n_values), width=3.6)
    for ax, n in zip(axes, n_values, strict=True):
        seed0 = lambda name, n=n: r.metrics[(r.metrics.metric == f"N{n}/{name}")
                                       & (r.metrics.seed == 0)].sort_values("step")
        for name, label, color in (("gamma3_tilde", "γ̃₃", "C2"), ("beta2_tilde", "β̃₂", "C1"),
                                   ("alpha3_tilde", "α̃₃", "C0")):
            rows = seed0(name)
            ax.plot(rows.step, rows.value / (float(np.abs(rows.value).max()) or 1.0),
                    color=color, label=label)
        rows = seed0("accuracy")
        ax.plot(rows.step, rows.value, color="k", lw=0.8, ls="--", label="accuracy")
        ax.set_title(f"standard model, N = {n}", fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel("progress measure / max |·|")
    axes[0].legend(fontsize=7)
    return fig


def per_n_table(r) -> pd.DataFrame:
    return r["standard"].groupby("n").agg(
        t_acc_mean=("t_acc", "mean"), t_acc_std=("t_acc", lambda x: float(np.std(x))),
        t_score_mean=("t_score", "mean"), final_acc=("final_accuracy", "mean"),
        final_induction=("final_induction", "mean"), final_prev_token=("final_previous", "mean"),
        stopped_at=("stopped_at", "max"), **{f"{k} half-rise": (f"half_rise_{k}", "mean")
                                             for k in PROGRESS}).reset_index()


def standard_slope_text(r) -> str:
    means = r["standard"].groupby("n").t_acc.mean()
    return ("Emergence: the first step with accuracy ≥ threshold; final values at the stopping "
            "step; half-rise: the first step at which |measure| reaches half its largest value "
            "(means over seeds). Log-log slope of t_acc over N (Adam, cross-entropy — outside "
            "the assumptions of Musat et al.'s theorem; reported, not claimed): "
            f"{loglog_slope(means.index, means.values):.3f}.")


def disentangled_text(r) -> str:
    dis, t = r.config.disentangled, r["dis_times"]
    local = [loglog_slope(t.n.iloc[i:i + 2], t.t_icl.iloc[i:i + 2]) for i in range(len(t) - 1)]
    return (f"Time in units of the coordinate flow (lr · steps, lr = {dis.lr:g}); t_ICL: first "
            f"time the loss ≤ {dis.emergence_loss:g}; rise times: first time the coordinate ≥ "
            f"{dis.rise_level:g}. Slope over the largest {dis.slope_points} N: "
            f"{dis_slope(r, dis.slope_points):.3f}; over all N: {dis_slope(r):.3f}; between "
            "neighbouring N: " + ", ".join(f"{x:.2f}" for x in local) + "; rise-time slopes "
            "γ₃ / β₂ / α₃: " + " / ".join(f"{loglog_slope(t.n, t[f't_{k}']):.2f}"
                                          for k in ("gamma3", "beta2", "alpha3")) + ".")


def subspace_text(r) -> str:
    rows = r["subspace"]
    sym = rows[rows.population == "symmetric"]
    return ("Full model in float64 from zero: max relative residual outside the 19-dimensional "
            f"subspace {sym.residual.max():.2e} on the symmetry-closed population "
            f"({int(sym.sequences.iloc[0])} sequences) and "
            f"{subspace_max(r, 'haar', 'residual'):.2e} on as many i.i.d. Haar-rotated "
            "sequences (invariant only on average).")


# -- part 4: the language ---------------------------------------------------------------
def language_rows_of(r, model: str) -> pd.DataFrame:
    """The language table's rows of one depth ("2-layer" or "1-layer"), by seed."""
    rows = r["language"]
    return rows[rows.model == model].sort_values("seed")


def language_gap(r) -> float:
    """Mean over the 2-layer seeds of |t_prefix − t_icl| / t_icl (NaN if either never
    reaches its level)."""
    rows = language_rows_of(r, "2-layer")
    return float(((rows.t_prefix - rows.t_icl).abs() / rows.t_icl).mean())


def language_text(r) -> str:
    lang = r.config.language
    corpus = lang.corpus
    return (f"Trained on next-token prediction over random blocks of {corpus.min_length}–"
            f"{corpus.length} tokens (V = {corpus.vocab}) tiled to "
            f"{corpus.length * corpus.repeats}, {lang.train.steps} steps; probed on "
            f"[BOS, r_1 … r_L, r_1 … r_L] with L = {lang.probe_length}. icl_score: loss on "
            "the second copy minus the first at the same offset (nats; a guess costs ln V = "
            f"{math.log(corpus.vocab):.2f}); prefix_matching: the last layer's best head; "
            "t_icl, t_prefix: the first evaluation with icl_score ≤ −½ ln V and with "
            "prefix_matching ≥ 0.5; the *_ablated columns: the same model with every head of "
            "that layer zero-ablated; ablation_rise: the second copy's loss with layer 2 "
            "ablated minus without.")


def plot_language(r):
    half = 0.5 * math.log(r.config.language.corpus.vocab)
    fig, axes = figure(2, width=4.6)
    for i, layers in enumerate((2, 1)):
        for ax, name in zip(axes, ("icl_score", "prefix_matching"), strict=True):
            plot_metric_by_seed(ax, r.metrics, f"lm_L{layers}/{name}", f"{layers} layer(s)",
                                color=f"C{i}")
    axes[0].axhline(-half, color="grey", lw=0.6)
    axes[1].axhline(0.5, color="grey", lw=0.6)
    axes[0].set_ylabel("ICL score on repeated tokens (nats)")
    axes[1].set_ylabel("prefix-matching score, last layer")
    axes[0].legend(fontsize=7)
    return fig


def plot_language_losses(r):
    lang = r.config.language
    rows = r["language_positions"].groupby(["model", "position"]).loss.mean().reset_index()
    fig, (ax,) = figure(1, width=6.0)
    for i, (model, part) in enumerate(rows.groupby("model", sort=False)):
        ax.plot(part.position, part.loss, color=f"C{i}", label=model)
    ax.axhline(math.log(lang.corpus.vocab), color="grey", lw=0.6)
    ax.axvline(lang.probe_length + 0.5, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("position t (predicting token t + 1)")
    ax.set_ylabel("next-token loss (nats)")
    ax.legend(fontsize=7)
    return fig
