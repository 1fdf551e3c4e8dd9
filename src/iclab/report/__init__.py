"""Figure helpers for reports (matplotlib object API, no pyplot); the HTML page is rendered
by ``iclab.framework.render`` from ``templates/report.html.j2``."""

from iclab.report._figures import figure as figure
from iclab.report._figures import heatmap as heatmap
from iclab.report._figures import mean_curve as mean_curve
from iclab.report._figures import plot_metric_by_seed as plot_metric_by_seed
from iclab.report._figures import plot_metrics_by_seed as plot_metrics_by_seed
from iclab.report._figures import power_law_guide as power_law_guide
from iclab.report._figures import style as style

__all__ = [  # the public API (what the docs site renders)
    "figure",
    "heatmap",
    "mean_curve",
    "plot_metric_by_seed",
    "plot_metrics_by_seed",
    "power_law_guide",
    "style",
]
