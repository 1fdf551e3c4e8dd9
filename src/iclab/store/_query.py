"""DuckDB over the Parquet parts and JSON files of many run folders."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


def _run_folders(roots: list[Path]) -> list[Path]:
    found = []
    for root in roots:
        if (root / "status.json").exists():
            found.append(root)
        else:
            found += [p.parent for p in sorted(root.glob("*/*/status.json"))]
    return found


def load_metrics(*roots: str | os.PathLike) -> pd.DataFrame:
    """Metric rows of every run under ``roots`` (run folders or store roots) as pandas.

    Columns: recipe, run_id, step, seed, metric, value.

    Examples:
        >>> df = load_metrics("runs")  # doctest: +SKIP
        >>> df[df.metric == "test_loss"].groupby("step").value.mean()  # doctest: +SKIP
    """
    import duckdb

    frames = []
    for run in _run_folders([Path(r) for r in roots]):
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


def list_runs(root: str | os.PathLike = "runs") -> pd.DataFrame:
    """One row per run under ``root``: recipe, run_id, status, started, claims passed/total, path.

    The run table is built with DuckDB's JSON reader over every ``status.json``.
    """
    import duckdb

    runs = _run_folders([Path(root)])
    columns = ["recipe", "run_id", "status", "started", "claims", "path"]
    if not runs:
        return pd.DataFrame(columns=columns)
    status = duckdb.execute(
        "SELECT recipe, run_id, status, CAST(started AS VARCHAR) AS started, filename "
        "FROM read_json(?, filename = true, union_by_name = true, format = 'auto')",
        [[str(r / "status.json") for r in runs]]).df()
    claims = []
    for path in status["filename"]:
        claim_file = Path(path).parent / "claims.json"
        if claim_file.exists():
            items = json.loads(claim_file.read_text())
            claims.append(f"{sum(c['passed'] for c in items)}/{len(items)}")
        else:
            claims.append("-")
    status["claims"] = claims
    status["path"] = [str(Path(p).parent) for p in status.pop("filename")]
    return status.sort_values("started", ignore_index=True)[columns]


def find_run(run: str | os.PathLike, root: str | os.PathLike = "runs") -> Path:
    """Resolve RUN: a run folder path, or a run id (or unique prefix) under ``root``."""
    path = Path(run)
    if (path / "status.json").exists():
        return path
    matches = [p for p in _run_folders([Path(root)]) if p.name.startswith(str(run))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FileNotFoundError(f"no run '{run}': not a run folder, and no run id under {root}/")
    raise FileNotFoundError(f"run id '{run}' is ambiguous: "
                            + ", ".join(m.name for m in matches))


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

    Examples:
        >>> run = load_run("runs/icl-gd/20261201-101500-ab12")  # doctest: +SKIP
        >>> run.tables["seeds"], run.claims[["id", "measured", "passed"]]  # doctest: +SKIP
    """
    path = find_run(run, root)

    def read_json(name, default):
        file = path / name
        return json.loads(file.read_text()) if file.exists() else default

    tables = {p.stem: pd.read_parquet(p) for p in sorted((path / "tables").glob("*.parquet"))}
    metrics = load_metrics(path).drop(columns=["recipe", "run_id"])
    return LoadedRun(path=path, config=read_json("config.json", {}),
                     status=read_json("status.json", {}), tables=tables, metrics=metrics,
                     claims=pd.DataFrame(read_json("claims.json", [])),
                     checks=pd.DataFrame(read_json("checks.json", [])))
