"""function-classes: reading and drawing the tables (error curves by k, the training seeds,
out-of-distribution prompts)."""

import pandas as pd

from iclab.report import figure, plot_metric_by_seed

NETWORK = "2-layer NN (Adam)"
TITLES = {"linear": "linear functions", "sparse_linear": "sparse linear functions",
          "quadratic": "quadratic functions", "relu_net": "2-layer ReLU networks",
          "decision_tree": "decision trees"}


def xgboost_name(prompts: int) -> str:
    """The curve name of XGBoost, fitted on the first ``prompts`` evaluation prompts."""
    return f"XGBoost ({prompts} prompts)"


def curve(r, learner: str) -> pd.Series:
    """The mean normalised error of ``learner`` by k (in-context examples)."""
    rows = r["curves"]
    return rows[rows.learner == learner].set_index("k")["mean"]


def tf_seeds(r, ks) -> pd.Series:
    """Each training seed's mean normalised error over the prefixes ``ks``."""
    rows = r["transformer_seeds"]
    return rows[rows.k.isin(list(ks))].groupby("seed").error.mean()


def capacity_errors(r, k: int) -> pd.DataFrame:
    """Per model size and seed: the parameter count and the error at ``k``."""
    rows = r["capacity"]
    return rows[rows.k == k]


def capacity_ratio(r, k: int) -> pd.Series:
    """Per seed: the largest model's error at ``k`` divided by the smallest's."""
    rows = capacity_errors(r, k)
    small, large = rows.params.min(), rows.params.max()
    return (rows[rows.params == large].set_index("seed").error
            / rows[rows.params == small].set_index("seed").error)


def capacity_table(r) -> pd.DataFrame:
    """Seed means of the error at k = d and at the last k, by model size."""
    d, last = r.config.task.d, int(r["capacity"].k.max())
    rows = []
    for (name, params), one in r["capacity"].groupby(["model", "params"], sort=False):
        rows.append({"model": name, "parameters": params,
                     f"error at k = {d}": one[one.k == d].error.mean(),
                     f"error at k = {last}": one[one.k == last].error.mean()})
    return pd.DataFrame(rows).sort_values("parameters").reset_index(drop=True)


def plot_capacity(r):
    d, last = r.config.task.d, int(r["capacity"].k.max())
    fig, (ax,) = figure(1, width=5)
    for c, k in enumerate(dict.fromkeys((d, last))):
        rows = capacity_errors(r, k)
        ax.plot(rows.params, rows.error, "o", color=f"C{c}", ms=3, alpha=0.6)
        mean = rows.groupby("params").error.mean()
        ax.plot(mean.index, mean.values, "-", color=f"C{c}", label=f"k = {k}")
    ax.axhline(curve(r, "least squares")[last], color="gray", ls=":", lw=1,
               label=f"least squares, k = {last}")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"squared error / {r.config.task.normaliser:g}")
    ax.legend(fontsize=8)
    return fig


def plot_error_vs_k(r):
    curves, task = r["curves"], r.config.task
    fig, (ax,) = figure(1, width=6)
    for c, name in enumerate(dict.fromkeys(curves.learner)):
        rows = curves[curves.learner == name]
        ax.plot(rows.k, rows["mean"], "o-" if name == "transformer" else "--", color=f"C{c}",
                label=name, ms=3)
        ax.fill_between(rows.k, rows.low, rows.high, color=f"C{c}", alpha=0.2)
        seeds = r["transformer_seeds"]
        if name == "transformer" and seeds.seed.nunique() > 1:
            for _, one in seeds.groupby("seed"):  # each training seed, thin
                ax.plot(one.k, one.error, "-", color=f"C{c}", lw=0.7, alpha=0.5)
    ax.axvline(task.d, color="gray", ls=":", lw=1)
    ax.set_xlabel("in-context examples k")
    ax.set_ylabel(f"squared error / {task.normaliser:g}")
    ax.set_ylim(-0.05, 1.6)
    ax.legend(fontsize=8)
    return fig


def plot_loss(r):
    fig, (ax,) = figure(1, width=6)
    plot_metric_by_seed(ax, r.metrics, "test_loss", "transformer (all prefixes)")
    ax.set_yscale("log")
    ax.legend()
    return fig


def plot_ood(r):
    ood, d = r["ood"], r.config.task.d
    names = list(dict.fromkeys(ood.prompts))
    cols, rows = 4, -(-len(names) // 4)
    fig, axes = figure(cols, width=3.0, height=2.4 * rows, rows=rows)
    for ax, name in zip(axes, names, strict=False):
        for c, learner in enumerate(("transformer", "least squares", "averaging")):
            values = ood[(ood.prompts == name) & (ood.learner == learner)]
            ax.plot(values.k, values.error, "o-" if c == 0 else "--", ms=2, color=f"C{c}",
                    label=learner)
        ax.axvline(d, color="gray", ls=":", lw=1)
        ax.set_title(name, fontsize=8)
        ax.set_ylim(-0.05, 2.0)
    for ax in axes[len(names):]:
        ax.axis("off")
    axes[0].legend(fontsize=6)
    return fig


def error_table(r) -> pd.DataFrame:
    return r["curves"].pivot_table(index="k", columns="learner", values="mean",
                                   sort=False).reset_index()


def ood_table(r) -> pd.DataFrame:
    ood, d = r["ood"], r.config.task.d
    rows = []
    for name, one in ood.groupby("prompts", sort=False):
        error = one.set_index(["learner", "k"]).error
        at, last = min(d, int(one.k.max())), int(one.k.max())
        rows.append({"prompts": name, f"transformer k={d}": error["transformer", at],
                     f"least squares k={d}": error["least squares", at],
                     "transformer last k": error["transformer", last],
                     "least squares last k": error["least squares", last],
                     "averaging last k": error["averaging", last]})
    return pd.DataFrame(rows)
