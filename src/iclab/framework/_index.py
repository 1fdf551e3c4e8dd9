"""``iclab index``: one self-contained page listing every run of a store root with its
claims status and a link to its report, its sweeps, and for each recipe its runs side by
side (each claim's measured value and result, and the final metrics they share)."""

import json
import math
from pathlib import Path

import pandas as pd

COMPARE = 12  # the most recent runs of a recipe compared side by side


def _claims(path: Path) -> list[dict]:
    file = path / "claims.json"
    try:
        return json.loads(file.read_text()) if file.exists() else []
    except (OSError, ValueError):
        return []


def _cell(value) -> str:
    from iclab.framework._report import _fmt

    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return _fmt(value)


def comparison(runs: pd.DataFrame) -> dict:
    """The runs of one recipe side by side: {columns: run ids, claims: [{id, cells:
    [(text, passed)]}], metrics: [{name, cells: [text]}]}."""
    from iclab.store._sweeps import final_metrics

    runs = runs.tail(COMPARE)
    ids = runs.run_id.tolist()
    claims: dict[str, dict] = {}
    for i, path in enumerate(runs.path):
        for row in _claims(Path(path)):
            cells = claims.setdefault(row["id"], {"id": row["id"], "cells": [None] * len(ids)})
            cells["cells"][i] = (_cell(row.get("measured")), bool(row.get("passed")))
    healthy = [Path(p) for p, s in zip(runs.path, runs.state, strict=True) if s != "damaged"]
    finals = final_metrics(healthy)
    metrics = []
    if not finals.empty:
        shared = finals.groupby("metric").run.nunique()
        keep = sorted(shared[shared == shared.max()].index)[:10]
        for name in keep:
            values = finals[finals.metric == name].set_index("run").value
            metrics.append({"name": name, "cells": [_cell(float(values[r])) if r in values
                                                    else "–" for r in ids]})
    return {"columns": ids, "claims": list(claims.values()), "metrics": metrics}


def write_index(root: str | Path = "runs") -> Path:
    """Write ``ROOT/index.html`` and return its path."""
    import datetime as dt
    from importlib import resources

    import jinja2

    from iclab.store import list_runs
    from iclab.store._run import _atomic_write_bytes
    from iclab.store._sweeps import sweep_records

    root = Path(root)
    runs = list_runs(root)
    recipes = []
    for recipe, group in runs.groupby("recipe", sort=True):
        rows = [{**row, "report": (Path(row["path"]) / "report.html").exists(),
                 "href": f"{Path(row['path']).relative_to(root)}/report.html"}
                for row in group.to_dict("records")]
        recipes.append({"name": recipe, "runs": rows, "compare": comparison(group)
                        if len(group) > 1 else None})
    sweeps = [{"id": r["id"], "recipe": r.get("recipe"), "points": len(r["points"]),
               "axes": ", ".join(r.get("axes", [])), "created": r.get("created", ""),
               "html": (root / "_sweeps" / f"{r['id']}.html").exists()}
              for r in sweep_records(root)]
    template = resources.files("iclab.report").joinpath("templates/index.html.j2").read_text()
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(default=True))
    html = env.from_string(template).render(
        root=str(root), recipes=recipes, sweeps=sweeps, total=len(runs),
        states=runs.state.value_counts().to_dict() if len(runs) else {},
        written=dt.datetime.now().isoformat(timespec="seconds"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / "index.html"
    _atomic_write_bytes(path, html.encode())
    return path
