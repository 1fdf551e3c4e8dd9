"""Results store: one folder per run, Parquet files as the source of truth, DuckDB to query.

Layout of ``<root>/<recipe>/<run_id>/``::

    config.json        the full recipe config (rebuilds the run)
    status.json        {"status": "running" | "interrupted" | "failed" | "complete",
                        "recipe", "run_id", "started", "ended", "error", ...}
    provenance.json    versions (iclab, git commit, Python, JAX, ...), device, command line
    lock               held (flock) by the process writing the run
    metrics/*.parquet  long format: step, seed, metric, value (one part per chunk)
    checkpoint.eqx     training state of all seeds (atomic write), for --resume
    tables/*.parquet   the measured tables (what the claims and figures read)
    claims.json        the evaluated claims: id, claim, measured, criterion, paper,
                       reference, passed, per_seed, interval, fragile
    checks.json        the same for the checks (hold by construction; not claims)
    figures/*.svg      the report's figures
    report.html        self-contained report
    timing.json        where the last process's time went: its phases and, per job, the
                       steps and seconds compiling, stepping and the rest (not a result)
"""

from iclab.store._health import DamagedRunWarning as DamagedRunWarning
from iclab.store._health import diagnose as diagnose
from iclab.store._health import run_folders as run_folders
from iclab.store._health import state as state
from iclab.store._query import DamagedRun as DamagedRun
from iclab.store._query import LoadedRun as LoadedRun
from iclab.store._query import check_run as check_run
from iclab.store._query import find_run as find_run
from iclab.store._query import list_runs as list_runs
from iclab.store._query import load_metrics as load_metrics
from iclab.store._query import load_run as load_run
from iclab.store._query import query as query
from iclab.store._run import STATES as STATES
from iclab.store._run import MetricRows as MetricRows
from iclab.store._run import RunBusy as RunBusy
from iclab.store._run import RunDir as RunDir
from iclab.store._run import new_run_id as new_run_id
from iclab.store._run import strict_json as strict_json
from iclab.store._sinks import MetricSink as MetricSink
from iclab.store._sinks import Sinks as Sinks
from iclab.store._sinks import SinkWarning as SinkWarning
from iclab.store._sinks import TensorBoardSink as TensorBoardSink
from iclab.store._sinks import Tracking as Tracking
from iclab.store._sinks import WandbSink as WandbSink

__all__ = [  # the public API (what the docs site renders)
    "DamagedRunWarning",
    "diagnose",
    "run_folders",
    "state",
    "DamagedRun",
    "LoadedRun",
    "check_run",
    "find_run",
    "list_runs",
    "load_metrics",
    "load_run",
    "query",
    "STATES",
    "MetricRows",
    "RunBusy",
    "RunDir",
    "new_run_id",
    "strict_json",
    "MetricSink",
    "Sinks",
    "SinkWarning",
    "TensorBoardSink",
    "Tracking",
    "WandbSink",
]
