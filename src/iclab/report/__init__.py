"""Reports: matplotlib figures (no pyplot) in one self-contained HTML page."""

from iclab.report._figures import figure as figure
from iclab.report._figures import heatmap as heatmap
from iclab.report._figures import plot_metric_by_seed as plot_metric_by_seed
from iclab.report._figures import save_figure as save_figure
from iclab.report._html import write_report as write_report
