"""Render a run's claims, tables and inline SVG figures into ``report.html``."""

import datetime as _dt
import json
import math
import platform
from importlib import resources

import jinja2


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def write_report(run, title: str, recipe: str, paper: str, mode: str, claims: list[dict],
                 figures: list[dict], sections: list[dict] | None = None) -> str:
    """Write ``run.path / "report.html"``: one file, figures inlined as SVG, no external assets.

    Args:
        figures: ``[{"svg": str, "caption": str}]``.
        sections: ``[{"title": str, "text": str, "table": {"columns": [...], "rows": [[...]]}}]``.
    """
    template_text = resources.files("iclab.report").joinpath("templates/report.html.j2").read_text()
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(default=True))
    html = env.from_string(template_text).render(
        title=title, recipe=recipe, paper=paper, mode=mode, run_id=run.run_id,
        run_path=str(run.path), claims=claims, n_passed=sum(c["passed"] for c in claims),
        figures=figures, sections=sections or [], fmt=_fmt,
        timestamp=_dt.datetime.now().isoformat(timespec="seconds"),
        machine=f"{platform.machine()} · {platform.python_version()}",
        config_json=json.dumps(run.config(), indent=2))
    run.write_text("report.html", html)
    return html
