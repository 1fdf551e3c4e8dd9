"""Concurrent writers: eight processes creating runs in one store root, and the same eight
writing their own job's metric parts and checkpoints into one shared run folder, while
this process lists and queries the store: no row is lost, no listing breaks."""

import subprocess
import sys
import warnings

from iclab.store import DamagedRunWarning, RunDir, list_runs, load_metrics

WRITER = """
import sys
import numpy as np
from iclab.store import MetricRows, RunDir

root, shared, me = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = RunDir(shared)
for r in range(3):
    own = RunDir.create(root, "writers", {"writer": me, "run": r})
    for part in range(10):
        rows = MetricRows()
        for seed in range(4):
            rows.add(part, seed, "loss", me + r / 10 + part / 100 + seed / 1000)
        own.write_metrics(f"train-{part:09d}", rows)
        # the shared run: this writer's own job (tag w{me}), its parts and checkpoint
        rows = MetricRows()
        rows.add(r * 10 + part, 0, f"w{me}/loss", float(me))
        run.write_metrics(f"w{me}-{r * 10 + part:09d}", rows)
        run.save_checkpoint({"x": np.full(3, me, np.float32)}, r * 10 + part,
                            f"checkpoint-w{me}")
    own.set_status("complete")
"""


def test_eight_processes_write_one_store_and_one_run_without_loss(tmp_path):
    root = tmp_path / "runs"
    shared = RunDir.create(root, "shared", {"recipe": "shared"})
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(shared.path),
                               str(me)], stderr=subprocess.PIPE, text=True)
             for me in range(8)]
    listings = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedRunWarning)  # a damaged listing fails
        while any(p.poll() is None for p in procs):
            runs = list_runs(root)
            assert set(runs.state) <= {"running", "interrupted", "complete"}
            load_metrics(root)
            listings += 1
    for p in procs:
        assert p.wait() == 0, p.stderr.read()[-2000:]
    assert listings >= 1
    runs = list_runs(root)
    mine = runs[runs.recipe == "writers"]
    assert len(mine) == 24 and set(mine.state) == {"complete"}
    assert mine.run_id.is_unique
    metrics = load_metrics(root)
    own = metrics[metrics.recipe == "writers"]
    assert len(own) == 24 * 10 * 4
    assert own.groupby("run_id").size().eq(40).all()
    assert not list((root / "writers").glob(".*"))  # no draft folder left behind
    rows = load_metrics(shared.path)
    assert sorted(rows.metric.unique()) == [f"w{me}/loss" for me in range(8)]
    assert rows.groupby("metric").step.nunique().eq(30).all()
    assert (rows.value == rows.metric.str.slice(1, 2).astype(float)).all()
    assert shared.checkpoint_steps() == {f"checkpoint-w{me}": 29 for me in range(8)}
