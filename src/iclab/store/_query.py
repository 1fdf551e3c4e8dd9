"""DuckDB over the Parquet parts and JSON files of many run folders."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from iclab.store._health import diagnose, run_folders, state, warn_damaged


class DamagedRun(ValueError):
    """A run folder that cannot be read; the message names it and what is wrong."""


def _healthy(roots: tuple) -> list[Path]:
    """The readable run folders under ``roots``; each damaged one is skipped with a
    ``DamagedRunWarning`` naming it and what is wrong."""
    healthy = []
    for run in run_folders([Path(r) for r in roots]):
        problem = diagnose(run)
        if problem is None:
            healthy.append(run)
        else:
            warn_damaged(run, problem)
    return healthy


def load_metrics(*roots: str | os.PathLike) -> pd.DataFrame:
    """Metric rows of every run under ``roots`` (run folders or store roots) as pandas.

    Columns: recipe, run_id, step, seed, metric, value. A damaged run folder (see
    ``diagnose``) is skipped with a ``DamagedRunWarning``.

    Examples:
        >>> df = load_metrics("runs")  # doctest: +SKIP
        >>> df[df.metric == "test_loss"].groupby("step").value.mean()  # doctest: +SKIP
    """
    import duckdb

    frames = []
    for run in _healthy(roots):
        parts = sorted((run / "metrics").glob("*.parquet"))
        if not parts:
            continue
        files = [str(p) for p in parts]
        df = duckdb.execute(
            "SELECT step, seed, metric, value FROM read_parquet(?) ORDER BY metric, seed, step",
            [files]).df()
        df.insert(0, "run_id", run.name)
        df.insert(0, "recipe", run.parent.name)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["recipe", "run_id", "step", "seed", "metric", "value"])
    return pd.concat(frames, ignore_index=True)


def _duration(started: str | None, ended: str | None, running: bool) -> str:
    import datetime as dt

    try:
        start = dt.datetime.fromisoformat(started)
        end = dt.datetime.now() if running or not ended else dt.datetime.fromisoformat(ended)
    except (TypeError, ValueError):
        return "-"
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s")


RUN_COLUMNS = ["recipe", "run_id", "state", "mode", "overrides", "claims", "started",
               "duration", "problem", "path"]


def _run_row(run: Path) -> dict:
    row = dict.fromkeys(RUN_COLUMNS, "-")
    row.update(recipe=run.parent.name, run_id=run.name, path=str(run), problem="")
    problem = diagnose(run)
    if problem is not None:
        warn_damaged(run, problem)
        return {**row, "state": "damaged", "problem": problem}
    status = json.loads((run / "status.json").read_text())
    config = json.loads((run / "config.json").read_text())
    row["state"] = state(run, status)
    row["recipe"] = str(status.get("recipe") or config.get("recipe") or run.parent.name)
    row["mode"] = str(config.get("mode", "-"))
    row["overrides"] = " ".join(config.get("overrides") or []) or "-"
    if (run / "claims.json").exists():
        items = json.loads((run / "claims.json").read_text())
        row["claims"] = f"{sum(bool(c['passed']) for c in items)}/{len(items)}"
    row["started"] = str(status.get("started", "-"))
    row["duration"] = _duration(status.get("started"), status.get("ended"),
                                row["state"] == "running")
    if row["state"] == "failed":
        row["problem"] = str(status.get("error", ""))
    return row


def list_runs(root: str | os.PathLike = "runs") -> pd.DataFrame:
    """One row per run folder under ``root`` (in run-id order: ids begin with the start
    time; a sweep's points, ``cfg-HASH``, come after), damaged ones included.

    Columns: recipe, run_id, state (running, interrupted, failed, complete, damaged),
    mode, overrides, claims (passed/total), started, duration, problem (what is damaged,
    or a failed run's error), path. A damaged folder also raises a ``DamagedRunWarning``.
    """
    rows = [_run_row(run) for run in run_folders([Path(root)])]
    if not rows:
        return pd.DataFrame(columns=RUN_COLUMNS)
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return frame.sort_values("run_id", ignore_index=True)


def query(sql: str, *roots: str | os.PathLike) -> pd.DataFrame:
    """Run DuckDB SQL over the store: the views ``metrics`` (recipe, run_id, step, seed,
    metric, value; every readable run) and ``runs`` (``list_runs``' columns).

    Examples:
        >>> query("SELECT recipe, count(*) FROM runs GROUP BY recipe", "runs")  # doctest: +SKIP
    """
    import duckdb

    roots = roots or ("runs",)
    con = duckdb.connect()
    con.register("runs", pd.concat([list_runs(r) for r in roots], ignore_index=True))
    con.register("metrics", load_metrics(*roots))
    return con.execute(sql).df()


def find_run(run: str | os.PathLike, root: str | os.PathLike = "runs") -> Path:
    """Resolve RUN: a run folder path, or a run id (or unique prefix) under ``root``."""
    path = Path(run)
    if run_folders([path]) == [path]:
        return path
    matches = [p for p in run_folders([Path(root)]) if p.name.startswith(str(run))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FileNotFoundError(f"no run '{run}': not a run folder, and no run id under {root}/")
    raise FileNotFoundError(f"run id '{run}' is ambiguous: "
                            + ", ".join(m.name for m in matches))


def check_run(path: Path) -> Path:
    """``path`` if its run folder is readable; else ``DamagedRun`` naming what is wrong."""
    problem = diagnose(path)
    if problem is not None:
        raise DamagedRun(f"run {path} is damaged: {problem}")
    return path


@dataclass(frozen=True)
class LoadedRun:
    """A run folder as pandas: its saved config, status, tables, metrics, claims, checks."""

    path: Path
    config: dict
    status: dict
    tables: dict[str, pd.DataFrame]
    metrics: pd.DataFrame
    claims: pd.DataFrame
    checks: pd.DataFrame


def load_run(run: str | os.PathLike, root: str | os.PathLike = "runs") -> LoadedRun:
    """Load one run (a folder, or a run id / unique prefix under ``root``) as pandas.

    Raises:
        FileNotFoundError: no such run; DamagedRun: the folder cannot be read.

    Examples:
        >>> run = load_run("runs/icl-gd/20261201-101500-ab12")  # doctest: +SKIP
        >>> run.tables["seeds"], run.claims[["id", "measured", "passed"]]  # doctest: +SKIP
    """
    path = check_run(find_run(run, root))

    def read_json(name, default):
        file = path / name
        return json.loads(file.read_text()) if file.exists() else default

    tables = {p.stem: pd.read_parquet(p) for p in sorted((path / "tables").glob("*.parquet"))}
    metrics = load_metrics(path).drop(columns=["recipe", "run_id"])
    return LoadedRun(path=path, config=read_json("config.json", {}),
                     status=read_json("status.json", {}), tables=tables, metrics=metrics,
                     claims=pd.DataFrame(read_json("claims.json", [])),
                     checks=pd.DataFrame(read_json("checks.json", [])))
