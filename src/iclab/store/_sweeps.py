"""Sweeps in the store: ``ROOT/_sweeps/ID.json`` records a sweep's points (each a run
folder); their states, claims and final metrics are read from the folders, the metrics in
one DuckDB query over every point's Parquet parts."""

import json
import os
import warnings
from pathlib import Path

import pandas as pd

from iclab.store._health import diagnose, warn_damaged


def sweep_records(root: str | os.PathLike = "runs") -> list[dict]:
    """Every readable sweep record under ``root`` (oldest first); an unreadable one is
    skipped with a ``DamagedRunWarning``."""
    from iclab.store._health import DamagedRunWarning

    out = []
    for path in sorted((Path(root) / "_sweeps").glob("*.json")):
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or not isinstance(record.get("points"), list):
                raise ValueError("no list of points")
        except (OSError, ValueError) as err:
            warnings.warn(f"skipping damaged sweep record {path}: {err}", DamagedRunWarning,
                          stacklevel=2)
            continue
        out.append(record)
    return sorted(out, key=lambda r: (str(r.get("created", "")), str(r.get("id", ""))))


def find_sweep(sweep: str, root: str | os.PathLike = "runs") -> dict:
    """The record of sweep ``sweep`` (an id or unique prefix) under ``root``."""
    matches = [r for r in sweep_records(root) if str(r.get("id", "")).startswith(sweep)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FileNotFoundError(f"no sweep '{sweep}' under {root}/_sweeps/")
    raise FileNotFoundError(f"sweep id '{sweep}' is ambiguous: "
                            + ", ".join(r["id"] for r in matches))


def final_metrics(folders: list[Path]) -> pd.DataFrame:
    """The mean over seeds of every metric at its last step, per run folder: columns run,
    metric, step, value (one DuckDB query over all the folders' metric parts)."""
    import duckdb

    files = [str(p) for folder in folders for p in sorted((folder / "metrics").glob(
        "*.parquet"))]
    if not files:
        return pd.DataFrame(columns=["run", "metric", "step", "value"])
    frame = duckdb.execute(
        """WITH m AS (SELECT parse_dirpath(parse_dirpath(filename)) AS folder, step, seed,
                             metric, value FROM read_parquet(?, filename = true)),
                last AS (SELECT folder, metric, max(step) AS step FROM m GROUP BY ALL)
           SELECT m.folder, m.metric, m.step, avg(m.value) AS value
           FROM m JOIN last USING (folder, metric, step) GROUP BY ALL
           ORDER BY m.folder, m.metric""", [files]).df()
    frame.insert(0, "run", [Path(f).name for f in frame.pop("folder")])
    return frame


def load_sweep(sweep: str, root: str | os.PathLike = "runs") -> tuple[dict, pd.DataFrame]:
    """A sweep's record and one row per point: the swept values, run_id, state, claims
    (passed/total), ``claim:ID`` (each claim's measured value), and ``metric:NAME`` (each
    final metric's mean over seeds). A damaged point reads "damaged" (with a warning)."""
    from iclab.store._health import state

    record = find_sweep(sweep, root)
    rows, healthy = [], []
    for point in record["points"]:
        folder = Path(root) / point["run"]
        row = {**point["values"], "run_id": folder.name, "state": "missing",
               "claims": "-", "path": str(folder)}
        if folder.exists():
            problem = diagnose(folder)
            if problem is not None:
                warn_damaged(folder, problem)
                row["state"] = "damaged"
            else:
                healthy.append(folder)
                row["state"] = state(folder)
                status = json.loads((folder / "status.json").read_text())
                row["error"] = status.get("error", "")
                claims = json.loads((folder / "claims.json").read_text()) \
                    if (folder / "claims.json").exists() else []
                if claims:
                    row["claims"] = f"{sum(bool(c['passed']) for c in claims)}/{len(claims)}"
                for claim in claims:
                    value = claim.get("measured")
                    row[f"claim:{claim['id']}"] = value if isinstance(value, int | float) \
                        and not isinstance(value, bool) else float("nan")
        rows.append(row)
    frame = pd.DataFrame(rows)
    finals = final_metrics(healthy)
    if not finals.empty:
        wide = finals.pivot(index="run", columns="metric", values="value")  # NaN kept
        wide.columns = [f"metric:{c}" for c in wide.columns]
        frame = frame.merge(wide, how="left", left_on="run_id", right_index=True)
    return record, frame
