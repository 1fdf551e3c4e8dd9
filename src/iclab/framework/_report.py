"""Evaluate a recipe's spec on a run folder's tables and render its report.

``render(run)`` needs the run folder alone (config, tables, metrics): it is what
``iclab report RUN`` calls, and what ``iclab run`` calls at its end.
"""

import io
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from iclab.framework._spec import Claim, MissingTable, Results, evaluate, measured_text

TABLES = "tables"


def write_tables(run, tables: dict[str, pd.DataFrame]) -> None:
    """Write each table as ``tables/{name}.parquet`` (atomic per file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"measure() returned {type(frame).__name__} for table {name!r}; "
                            "a table is a pandas DataFrame")
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(frame.reset_index(drop=True),
                                            preserve_index=False), sink)
        run.write_bytes(f"{TABLES}/{name}.parquet", sink.getvalue().to_pybytes())


def read_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of a run folder by name (an empty dict before the measurement)."""
    folder = Path(path) / TABLES
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def load_results(run, recipe=None) -> tuple[Any, Results]:
    """The recipe of a run folder (unless given: the registry's, or the one of your own
    that ``config.json``'s ``recipe_ref`` names) and its ``Results`` (typed config, tables,
    metrics)."""
    from iclab.config import from_dict
    from iclab.framework._recipe import saved_recipe

    saved = run.config()
    recipe = recipe if recipe is not None else saved_recipe(saved)
    config = from_dict(recipe.config_type, saved["config"])
    return recipe, Results(config, read_tables(run.path), run.metrics(), saved.get("mode",
                                                                                    "full"))


def _applies(row: Claim, results: Results) -> bool:
    try:
        return row.when is None or bool(row.when(results))
    except MissingTable:
        return True  # evaluated below as "not measured"


def evaluate_rows(rows: list[Claim], results: Results) -> list[dict]:
    """Every row that applies to ``results``, evaluated (rows of ``claims.json``)."""
    return [evaluate(row, results).to_json() for row in rows if _applies(row, results)]


def label_log_axes(fig) -> None:
    """Say "(log scale)" (or "(log₂ scale)", …) in the label of every logarithmic axis of
    ``fig`` that does not already say log, so that curves can be read off."""
    for ax in fig.axes:
        for axis, get, put in ((ax.xaxis, ax.get_xlabel, ax.set_xlabel),
                               (ax.yaxis, ax.get_ylabel, ax.set_ylabel)):
            scale = axis.get_scale()
            label = get()
            if scale in ("log", "symlog") and label and "log" not in label.lower():
                base = getattr(axis.get_transform(), "base", 10)
                name = {10: "log", 2: "log₂"}.get(base, f"log base {base:g}")
                put(f"{label} ({'sym' if scale == 'symlog' else ''}{name} scale)")


def _svg(fig) -> str:
    """The figure as SVG text, byte-identical for the same input (no date, fixed ids);
    its logarithmic axes labelled as such (``label_log_axes``)."""
    import matplotlib

    label_log_axes(fig)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "iclab"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG document's ``<svg>`` element for inlining into a page, every element id (and
    each reference to one) prefixed with ``prefix`` so that several figures on one page
    have unique ids (matplotlib names clip paths and glyphs alike in every figure)."""
    import re

    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'(href=")#([^"]+)"', lambda m: f'{m.group(1)}#{prefix}-{m.group(2)}"', svg)
    return re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)


def _text(value, results: Results) -> str:
    return value(results) if callable(value) else value


def _draw_figures(recipe, results: Results, folder: Path) -> tuple[list[dict], list[str]]:
    figures, skipped = [], []
    folder.mkdir(parents=True, exist_ok=True)
    for spec in recipe.spec("figures", results.config):
        try:
            if spec.when is not None and not spec.when(results):
                continue
            svg = _svg(spec.plot(results))
        except MissingTable as err:
            skipped.append(f"{spec.name} (no table {err})")
            continue
        except Exception as err:  # noqa: BLE001 - a figure never breaks the report
            skipped.append(f"{spec.name} ({type(err).__name__}: {err})")
            continue
        (folder / f"{spec.name}.svg").write_text(svg)
        figures.append({"name": spec.name, "svg": inline_svg(svg, f"fig{len(figures)}"),
                        "caption": _text(spec.caption, results)})
    return figures, skipped


def _sections(recipe, results: Results) -> list[dict]:
    out = []
    for spec in recipe.spec("sections", results.config):
        try:
            if spec.when is not None and not spec.when(results):
                continue
            text = _text(spec.text, results)
            table = None
            if spec.table is not None:
                frame = results[spec.table] if isinstance(spec.table, str) \
                    else spec.table(results)
                table = {"columns": [str(c) for c in frame.columns],
                         "rows": frame.astype(object).values.tolist()}
        except MissingTable:
            continue
        out.append({"title": spec.title, "text": text, "table": table})
    return out


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):  # a Source
        where = f" ({value['where']})" if value.get("where") else ""
        return _fmt(value["value"]) + where
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def divergences(metrics: pd.DataFrame) -> list[dict]:
    """Every seed that diverged: [{job, seed, step}] from the ``diverged_step`` metric
    rows (``"{tag}/diverged_step"`` for a job with a tag), in job and seed order."""
    if metrics is None or metrics.empty:
        return []
    rows = metrics[metrics.metric.str.endswith("diverged_step")]
    out = [{"job": m.rsplit("/", 1)[0] if "/" in m else "", "seed": int(seed),
            "step": int(value)}
           for m, seed, value in zip(rows.metric, rows.seed, rows.value, strict=True)]
    return sorted(out, key=lambda r: (r["job"], r["seed"]))


def _provenance_line(record: dict, status: dict) -> str:
    """iclab version and commit, the library versions, device, start and end."""
    if not record:
        return ""
    commit = str(record.get("commit") or "")
    parts = [f"iclab {record.get('iclab')}"
             + (f" (commit {commit[:12]}{' +dirty' if commit.endswith('+dirty') else ''})"
                if commit else "")]
    parts += [f"{p} {record[p]}" for p in ("python", "jax", "jaxlib", "equinox", "optax")
              if record.get(p)]
    if record.get("device"):
        parts.append(record["device"])
    if status.get("started"):
        parts.append(f"started {status['started']}")
    if status.get("finished"):  # set before the first render: a re-render is identical
        parts.append(f"finished {status['finished']}")
    return " · ".join(parts)


def render(run, recipe=None) -> tuple[list[dict], list[dict]]:
    """Evaluate the claims and checks of a run folder and write its report.

    Writes ``report.html`` and ``figures/*.svg`` always; ``claims.json`` and
    ``checks.json`` only when every table the spec reads is present (a run interrupted
    before its measurement keeps no claims file that looks complete). Returns the
    evaluated (claims, checks). Needs no training and no model. ``recipe``: a recipe
    that is not in the registry (one defined in a script); default: by the saved name.
    """
    import platform

    import jinja2

    recipe, results = load_results(run, recipe)
    claims = evaluate_rows(recipe.spec("claims", results.config), results)
    checks = evaluate_rows(recipe.spec("checks", results.config), results)
    measured = all(row["status"] != "not measured" for row in claims + checks)
    if measured:
        run.write_claims(claims)
        run.write_json("checks.json", checks)
    figures, skipped = _draw_figures(recipe, results, run.path / "figures")
    status = run.status()
    diverged = divergences(results.metrics)
    template = resources.files("iclab.report").joinpath("templates/report.html.j2").read_text()
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(default=True))
    html = env.from_string(template).render(
        title=recipe.title(results.config) if callable(recipe.title) else recipe.title,
        recipe=recipe.name, paper=recipe.paper, mode=results.mode,
        run_id=run.run_id, run_path=str(run.path), claims=claims, checks=checks,
        n_passed=sum(c["passed"] for c in claims),
        n_checks_passed=sum(c["passed"] for c in checks), complete=measured,
        figures=figures, skipped=skipped, sections=_sections(recipe, results), fmt=_fmt,
        measured_text=lambda c: measured_text(c) + (" (diverged)" if diverged and
                                                    c.get("status") == "non-finite" else ""),
        timestamp=status.get("finished") or status.get("started", ""),
        machine=status.get("machine") or f"{platform.machine()} · {platform.python_version()}",
        provenance=_provenance_line(run.provenance(), status), diverged=diverged,
        config_json=json.dumps(run.config(), indent=2))
    run.write_text("report.html", html)
    return claims, checks
