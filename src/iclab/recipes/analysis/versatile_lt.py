"""versatile-lt: the paper's Table 1, and reading and drawing the tables (adjusted losses,
per-σ profiles, implicit weights, per-layer losses, FULL's P and Q, the noise-free GD++
column)."""

import numpy as np
import pandas as pd

from iclab.instruments import best_seed
from iclab.report import figure, heatmap, style
from iclab.solvers import analytic_one_layer_loss

# The paper's Table 1 (appendix): adjusted loss of GD++, DIAG and FULL at L = 1..7 and of the
# ridge baselines, per noise setting (the recipe's labels): the claims' and the report's
# "paper" values.
PAPER_TABLE1 = {
    "σmax=0": {
        "gdpp": [1.768, 0.341, 0.019, 9.91e-05, 1.14e-07, 2.37e-10, 2.65e-12],
        "diag": [1.767, 0.265, 0.013, 0.000119, 1.81e-07, 2.57e-10, 2.5e-12],
        "full": [1.768, 0.264, 0.012, 0.000163, 1.79e-07, 2.71e-10, 2.5e-12],
        "ConstRR": 0, "AdaRR": 0, "TunedRR": 0},
    "σmax=1": {
        "gdpp": [1.639, 0.295, 0.021, 0.014, 0.014, 0.009, 0.009],
        "diag": [1.639, 0.214, 0.015, 0.006, 0.004, 0.003, 0.002],
        "full": [1.64, 0.215, 0.015, 0.005, 0.002, 0.002, 0.002],
        "ConstRR": 0.009, "AdaRR": 0.003, "TunedRR": 0.002},
    "σmax=2": {
        "gdpp": [1.396, 0.243, 0.071, 0.066, 0.066, 0.066, 0.066],
        "diag": [1.396, 0.173, 0.048, 0.024, 0.016, 0.014, 0.014],
        "full": [1.397, 0.173, 0.049, 0.021, 0.015, 0.014, 0.01],
        "ConstRR": 0.066, "AdaRR": 0.016, "TunedRR": 0.01},
    "σmax=3": {
        "gdpp": [1.175, 0.265, 0.161, 0.16, 0.161, 0.161, 0.161],
        "diag": [1.175, 0.188, 0.087, 0.041, 0.029, 0.028, 0.027],
        "full": [1.176, 0.188, 0.075, 0.038, 0.026, 0.025, 0.025],
        "ConstRR": 0.161, "AdaRR": 0.034, "TunedRR": 0.023},
    "σmax=4": {
        "gdpp": [1.015, 0.347, 0.259, 0.258, 0.265, 0.265, 0.265],
        "diag": [1.015, 0.219, 0.109, 0.05, 0.041, 0.04, 0.04],
        "full": [1.016, 0.22, 0.101, 0.052, 0.038, 0.036, 0.035],
        "ConstRR": 0.265, "AdaRR": 0.053, "TunedRR": 0.037},
    "σmax=5": {
        "gdpp": [0.907, 0.366, 0.344, 0.344, 0.344, 0.344, 0.344],
        "diag": [0.906, 0.242, 0.118, 0.059, 0.051, 0.048, 0.047],
        "full": [0.907, 0.245, 0.117, 0.065, 0.048, 0.044, 0.047],
        "ConstRR": 0.365, "AdaRR": 0.068, "TunedRR": 0.049},
    "σmax=6": {
        "gdpp": [0.841, 0.44, 0.454, 0.454, 0.454, 0.454, 0.454],
        "diag": [0.841, 0.254, 0.121, 0.065, 0.058, 0.054, 0.052],
        "full": [0.842, 0.259, 0.124, 0.068, 0.059, 0.052, 0.05],
        "ConstRR": 0.454, "AdaRR": 0.081, "TunedRR": 0.06},
    "σmax=7": {
        "gdpp": [0.806, 0.53, 0.53, 0.53, 0.53, 0.53, 0.53],
        "diag": [0.806, 0.259, 0.123, 0.073, 0.062, 0.059, 0.059],
        "full": [0.806, 0.263, 0.127, 0.076, 0.065, 0.059, 0.057],
        "ConstRR": 0.53, "AdaRR": 0.092, "TunedRR": 0.068},
    "σ∈{1,3}": {
        "gdpp": [1.007, 0.305, 0.222, 0.222, 0.222, 0.222, 0.222],
        "diag": [1.007, 0.201, 0.098, 0.043, 0.026, 0.02, 0.018],
        "full": [1.008, 0.202, 0.076, 0.032, 0.016, 0.011, 0.01],
        "ConstRR": 0.222, "AdaRR": 0.051, "TunedRR": 0.021},
    "σ∈{1,3,5}": {
        "gdpp": [0.819, 0.427, 0.422, 0.422, 0.422, 0.422, 0.422],
        "diag": [0.819, 0.246, 0.119, 0.062, 0.051, 0.047, 0.046],
        "full": [0.82, 0.276, 0.113, 0.061, 0.048, 0.043, 0.035],
        "ConstRR": 0.422, "AdaRR": 0.084, "TunedRR": 0.054},
}


# Its σ_max = 0 column (noise-free), L = 1..7.
PAPER_NOISE_FREE = {k: PAPER_TABLE1["σmax=0"][k] for k in ("gdpp", "diag")}


def paper_column(config, label: str) -> dict | None:
    """The paper's Table 1 column of a noise setting, if the task is the paper's (D = 10,
    N = 20, x, w ~ N(0, I), noise-free query) and no depth exceeds its 7; else None."""
    task = config.task
    if (task.d, task.n_context, task.query_noise) != (10, 20, False) or \
            analytic_one_layer_loss(task) is None or max(config.layers) > 7:
        return None
    return PAPER_TABLE1.get(label)


def best(r, label: str, variant: str, depth: int) -> float:
    rows = r["models"]
    rows = rows[(rows.label == label) & (rows.variant == variant) & (rows.depth == depth)]
    return float(rows.adjusted.iloc[best_seed(rows.adjusted)])


def setting(r, label: str) -> pd.Series:
    rows = r["settings"]
    return rows[rows.label == label].iloc[0]


def unseen_ratio(r, label: str) -> float:
    """Off the training levels of a categorical setting: the mean over the profile's σ
    that are not a training level of the deepest DIAG's adjusted loss over FULL's."""
    s = next(s for s in r.config.settings() if s["label"] == label)
    prof = r["profile"][r["profile"].label == label]
    unseen = ~np.isclose(prof.sigma.to_numpy()[:, None], np.asarray(
        s["task"].noise_levels)[None]).any(axis=1)
    prof = prof[unseen]
    return float(prof[prof.learner == "diag"].adjusted.mean()
                 / prof[prof.learner == "full"].adjusted.mean())


NAME = {"full": "FULL", "diag": "DIAG", "gdpp": "GD++"}


RIDGES = ("ConstRR", "AdaRR", "TunedRR")


def plot_setting(r, label: str):
    config, entry = r.config, setting(r, label)
    models = r["models"][r["models"].label == label]
    fig, axes = figure(4, width=3.6)
    ax = axes[0]
    for c, variant in enumerate(config.variants):
        ax.plot(config.layers, [best(r, label, variant, L) for L in config.layers], "o-",
                color=f"C{c}", label=NAME[variant])
        rows = models[models.variant == variant]  # every seed, as dots: the spread
        ax.scatter(rows.depth, rows.adjusted, color=f"C{c}", s=8, alpha=0.4)
    for c, name in enumerate(RIDGES):
        ax.axhline(entry[name], color=f"C{c + 3}", ls="--", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layers")
    ax.set_ylabel("adjusted loss (best seed)")
    ax.set_title(label, fontsize=9)
    ax.legend(fontsize=7)
    prof, ax = r["profile"][r["profile"].label == label], axes[1]
    for c, variant in enumerate(config.variants):
        rows = prof[prof.learner == variant]
        ax.plot(rows.sigma, rows.adjusted, "-", color=f"C{c}",
                label=f"{NAME[variant]} L={max(config.layers)}")
    for c, name in enumerate(RIDGES):
        rows = prof[prof.learner == name]
        ax.plot(rows.sigma, rows.adjusted, "--", color=f"C{c + 3}", label=name)
    s = next(s for s in config.settings() if s["label"] == label)
    if s["kind"] == "uniform":
        ax.axvspan(0, s["scale"], color="gray", alpha=0.1)
    else:
        for level in s["task"].noise_levels:
            ax.axvline(level, color="gray", alpha=0.3)
    ax.set_xlabel("noise σ of the sequence")
    ax.set_ylabel("adjusted loss")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.legend(fontsize=7)
    implicit, ax = r["implicit"][r["implicit"].label == label], axes[2]
    for name, rows in implicit.groupby("reference", sort=False):
        ax.plot(rows.layer, rows.error, "o-", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel("‖w^l − w_ref‖² / ‖w_ref‖²")
    ax.set_title(f"implicit weights, {implicit.variant.iloc[0].upper()}", fontsize=9)
    ax.legend(fontsize=7)
    layers, ax = r["layers"][r["layers"].label == label], axes[3]
    deepest = models[(models.depth == max(config.layers)) & np.isfinite(models.adjusted)]
    for c, variant in enumerate(config.variants):  # the seeds that did not diverge
        rows = layers[(layers.variant == variant) & layers.seed.isin(
            deepest[deepest.variant == variant].seed)]
        for i, (_, one) in enumerate(rows.groupby("seed")):
            ax.plot(one.layer, one.adjusted.clip(lower=1e-6), "o-", color=f"C{c}", ms=3,
                    alpha=0.7, label=f"{NAME[variant]} L={max(config.layers)}" if i == 0
                    else None)
    style(ax, "read-out after layer l", "adjusted loss (every seed)",
          "inside the deepest model", yscale="log", legend=7)
    return fig


def weights_label(r) -> str:
    """The setting whose FULL weights are drawn: the first categorical one (the paper's
    Fig. 4 uses {1, 3}), else the first."""
    labels = r["full_weights"].label.unique().tolist()
    kinds = {s["label"]: s["kind"] for s in r.config.settings()}
    return next((x for x in labels if kinds.get(x) == "categorical"), labels[0])


def plot_full_weights(r):
    label = weights_label(r)
    rows = r["full_weights"][r["full_weights"].label == label]
    depth = int(rows.layer.max())
    fig, axes = figure(depth, width=2.4, height=4.4, rows=2)
    for m, name in enumerate(("Q", "P")):
        for layer in range(1, depth + 1):
            one = rows[(rows.matrix == name) & (rows.layer == layer)]
            matrix = one.pivot(index="row", columns="col", values="value").to_numpy()
            heatmap(axes[m * depth + layer - 1], matrix, f"{name}{layer} ({label})")
    return fig


def plot_noise_free(r):
    column = r["noise_free"]
    fig, (ax,) = figure(1, width=4.6)
    for method, marker, color, label in (("gdpp", "o-", "C2", "GD++ (fitted, float64)"),
                                         ("gd", "s-", "C5", "GD (fitted step sizes)")):
        rows = column[column.method == method]
        ax.plot(rows.layer, rows.loss, marker, color=color, label=label)
    layers = list(range(1, len(PAPER_NOISE_FREE["gdpp"]) + 1))
    ax.plot(layers, PAPER_NOISE_FREE["gdpp"], "x:", color="C2", label="GD++, paper")
    ax.plot(layers, PAPER_NOISE_FREE["diag"], "x:", color="C1", label="DIAG, paper")
    ax.set_yscale("log")
    ax.set_xlabel("layers")
    ax.set_ylabel("loss (= adjusted loss; σ = 0)")
    ax.set_title("σmax = 0", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def adjusted_table(r) -> pd.DataFrame:
    config, rows = r.config, []
    for s in config.settings():
        label, table = s["label"], paper_column(config, s["label"])
        models, entry = r["models"][r["models"].label == label], setting(r, label)
        for variant in config.variants:
            for depth in config.layers:
                one = models[(models.variant == variant) & (models.depth == depth)]
                rows.append([label, variant, depth, best(r, label, variant, depth),
                             float(one.adjusted.mean()),
                             table[variant][depth - 1] if table else None])
        rows += [[label, name, "–", entry[name], entry[name], table[name] if table else None]
                 for name in RIDGES]
        if np.isfinite(entry.analytic_adjusted):
            rows.append([label, "analytic 1-layer, same sequences", 1, entry.analytic_adjusted,
                         entry.analytic_adjusted, None])
            population = entry.analytic_population - entry.oracle
            rows.append([label, "analytic 1-layer, population − oracle", 1, population,
                         population, None])
    return pd.DataFrame(rows, columns=["noise", "method", "layers", "best", "mean", "paper"])


def noise_free_table(r) -> pd.DataFrame:
    column = r["noise_free"]
    gdpp, gd = column[column.method == "gdpp"], column[column.method == "gd"]
    return pd.DataFrame({"layers": gdpp.layer.to_numpy(), "GD++": gdpp.loss.to_numpy(),
                         "GD++ (paper)": [PAPER_NOISE_FREE["gdpp"][L - 1] if L <= 7 else None
                                          for L in gdpp.layer], "GD": gd.loss.to_numpy(),
                         "GD++ last layer ω_xx": gdpp.omega_xx.to_numpy(),
                         "GD++ last layer ω_yx": gdpp.omega_yx.to_numpy()})
