"""The declarative part of a recipe: claims, checks, figures and report sections.

A recipe's spec is data at the top of its file. Each row reads its number from the
run's *tables* (the Parquet files its measurement wrote), so the framework can
evaluate it again from a run folder alone (``iclab report RUN``).
"""

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
REDUCTIONS = ("mean", "min", "max")


class MissingTable(KeyError):
    """A table that the run folder does not (yet) hold: the run stopped before measuring."""


@dataclass(frozen=True)
class Source:
    """A comparison value and where it comes from.

    Args:
        value: the number (or a short text such as "≈ 1", "0.018–0.023").
        where: its provenance: "Table 1", "Fig. 2", "Theorem 2", or for reference code
            the notebook / run it was read from.
    """

    value: float | str
    where: str = ""

    def to_json(self) -> dict:
        return {"value": self.value, "where": self.where}


def paper(value: float | str, where: str = "") -> Source:
    """A value stated in the paper (``where``: its table, figure or equation)."""
    return Source(value, where)


def reference(value: float | str, where: str = "") -> Source:
    """A value read from the paper's reference code or a run of it."""
    return Source(value, where)


class Results:
    """What a spec reads: the run's config (typed), its tables and its metric history.

    Args:
        config: the recipe's config dataclass.
        tables: name → pandas DataFrame (the run folder's ``tables/*.parquet``).
        metrics: long-format metric rows (step, seed, metric, value).
        mode: "quick" or "full".
    """

    def __init__(self, config: Any, tables: dict[str, pd.DataFrame], metrics: pd.DataFrame,
                 mode: str = "full"):
        self.config, self.tables, self.metrics, self.mode = config, tables, metrics, mode

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.tables:
            raise MissingTable(name)
        return self.tables[name]

    def scalar(self, name: str, column: str = "value", **where) -> float:
        """One number from a table: the single row matching ``where`` (column == value)."""
        rows = self[name]
        for key, value in where.items():
            rows = rows[rows[key] == value]
        if len(rows) != 1:
            raise ValueError(f"table {name!r} has {len(rows)} rows matching {where}, not 1")
        return float(rows[column].iloc[0])

    def metric(self, name: str) -> pd.DataFrame:
        """The history of one metric: rows step, seed, value."""
        return self.metrics[self.metrics.metric == name]


@dataclass(frozen=True)
class Claim:
    """One row of a claims (or checks) table.

    The number is ``value(results)``: a float, or one value per seed (array or Series),
    reduced by ``reduce`` ("mean", "min", "max") and then mapped by ``transform`` (e.g.
    ``lambda m: abs(m - 1)`` for "within 2 % of 1"). The row passes when
    ``measured <op> threshold``; NaN fails.

    With per-seed values and ``reduce="mean"``, the report gives the per-seed values and,
    from 3 seeds on, a 95 % Student-t interval of the mean, mapped through ``transform``
    (the range of ``transform`` over the interval). A row whose interval holds values on
    both sides of the threshold is *fragile*; pass/fail is still decided on ``measured``.

    Args:
        id: short stable identifier.
        statement: the claim in words, including how the number is read.
        value: results → float or per-seed values.
        op: one of "<=", ">=", "<", ">".
        threshold: the criterion's number, fixed before the first measurement.
        paper: the paper's value with its table / figure, if known.
        reference: the reference code's value with its source, if known.
        reduce: how per-seed values become the statistic.
        transform: optional map of the reduced statistic.
        note: a line shown under the table (e.g. what a failure would mean).
        when: optional results → bool; the row is left out when it is false (e.g. a
            baseline from an optional extra that is not installed).
    """

    id: str
    statement: str | Callable[[Any], str]
    value: Callable[[Results], Any]
    op: str
    threshold: float
    paper: Source | None = None
    reference: Source | None = None
    reduce: str = "mean"
    transform: Callable[[float], float] | None = None
    note: str = ""
    when: Callable[[Results], bool] | None = None

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"Claim {self.id}: op {self.op!r} is not one of {list(OPS)}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"Claim {self.id}: reduce {self.reduce!r} not in {REDUCTIONS}")


@dataclass(frozen=True)
class Figure:
    """A report figure: ``plot(results)`` returns a matplotlib ``Figure``.

    Args:
        name: file name of the SVG (``figures/{name}.svg``).
        caption: shown under the figure.
        plot: results → matplotlib Figure (object API, no pyplot).
        when: optional results → bool; the figure is drawn only when it is true.
    """

    name: str
    caption: str | Callable[[Results], str]
    plot: Callable[[Results], Any]
    when: Callable[[Results], bool] | None = None


@dataclass(frozen=True)
class Section:
    """A report section: a title, a text and a table, each possibly a function of results.

    ``table`` returns a DataFrame (its columns become the header) or is the name of a
    table of the run.
    """

    title: str
    text: str | Callable[[Results], str] = ""
    table: str | Callable[[Results], pd.DataFrame] | None = None
    when: Callable[[Results], bool] | None = None


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean: m ± t_{(1+level)/2, n−1} · s / √n (s: sample std)."""
    from scipy.stats import t

    x = np.asarray(values, float)
    n = x.size
    half = float(t.ppf(0.5 + level / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return float(x.mean() - half), float(x.mean() + half)


def _image(transform, low: float, high: float) -> tuple[float, float]:
    if transform is None:
        return low, high
    grid = np.linspace(low, high, 1001)
    values = np.array([transform(float(g)) for g in grid])
    return float(values.min()), float(values.max())


@dataclass
class Outcome:
    """An evaluated claim or check (one row of ``claims.json`` / ``checks.json``)."""

    id: str
    claim: str
    measured: float | None
    criterion: str
    paper: dict | None
    reference: dict | None
    passed: bool
    per_seed: list[float] | None = None
    interval: list[float] | None = None
    fragile: bool = False
    error: str | None = None
    note: str = ""
    status: str = ""
    """"pass", "fail", "non-finite" (measured NaN or ±inf: it fails), "error" (the value
    could not be computed from the tables, e.g. all seeds diverged) or "not measured"
    (a table is missing: the run stopped before its measurement)."""
    nonfinite: str | None = None
    """"nan", "inf" or "-inf" when the measured statistic is not finite (``measured`` is
    then None: claims.json is strict JSON)."""

    def __post_init__(self):
        if not self.status:
            self.status = ("not measured" if self.error else "non-finite" if self.nonfinite
                           else "pass" if self.passed else "fail")

    def to_json(self) -> dict:
        return dict(self.__dict__)


def measured_text(row: dict) -> str:
    """A claims.json row's measured value as text: the number, "nan" / "inf" / "-inf"
    for a non-finite statistic, "not measured" or "error"."""
    if row.get("measured") is not None:
        return f"{row['measured']:.5g}"
    status = row.get("status", "")
    if status in ("not measured", "error"):
        return status
    return row.get("nonfinite") or "nan"


def _finite_or_none(x: float) -> float | None:
    return None if (x is None or not math.isfinite(x)) else float(x)


def _nonfinite(x: float) -> str | None:
    return None if math.isfinite(x) else "nan" if math.isnan(x) else \
        ("inf" if x > 0 else "-inf")


def evaluate(row: Claim, results: Results) -> Outcome:
    """Evaluate one claim or check on ``results``; a missing table gives a failing row."""
    statement = row.statement(results.config) if callable(row.statement) else row.statement
    criterion = f"{row.op} {row.threshold:g}"
    base = dict(id=row.id, claim=statement, criterion=criterion,
                paper=row.paper.to_json() if row.paper else None,
                reference=row.reference.to_json() if row.reference else None, note=row.note)
    try:
        raw = row.value(results)
    except MissingTable as err:
        return Outcome(measured=None, passed=False, error=f"not measured (no table {err})",
                       **base)
    except Exception as err:  # noqa: BLE001 - e.g. a statistic of all-NaN (diverged) values
        return Outcome(measured=None, passed=False, status="error",
                       error=f"could not be evaluated ({type(err).__name__}: {err})", **base)
    per_seed, interval, fragile = None, None, False
    if np.ndim(raw) == 0:
        measured = float(raw)
    else:
        values = np.asarray(raw, float).reshape(-1)
        per_seed = [float(v) for v in values]
        measured = float({"mean": np.mean, "min": np.min, "max": np.max}[row.reduce](values))
        if row.reduce == "mean" and values.size >= 3 and np.all(np.isfinite(values)):
            interval = list(_image(row.transform, *mean_interval(values)))
        if row.transform is not None:
            measured = float(row.transform(measured))
    if per_seed is None and row.transform is not None:
        measured = float(row.transform(measured))
    passed = math.isfinite(measured) and OPS[row.op](measured, row.threshold)
    if interval is not None:
        sides = {OPS[row.op](interval[0], row.threshold), OPS[row.op](interval[1], row.threshold)}
        fragile = len(sides) == 2
    per_seed = None if per_seed is None else [_finite_or_none(v) for v in per_seed]
    return Outcome(measured=_finite_or_none(measured), passed=bool(passed), per_seed=per_seed,
                   interval=interval, fragile=fragile, nonfinite=_nonfinite(measured), **base)
