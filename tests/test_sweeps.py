"""Sweeps: points of grid, zip and random axes, each a run folder keyed by a hash of its
resolved config; cached, retry, force and dry-run modes; a crashed or diverged point is
recorded and the rest finish; the points are read back through DuckDB."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.cli import main
from iclab.config import to_dict
from iclab.framework._sweep import Sweep, resolve, run_sweep
from iclab.store._sweeps import final_metrics, load_sweep

REF = "executor_recipe:RECIPE"


def test_grid_zip_and_random_points():
    sweep = Sweep(REF, grid=("train.seeds=1,2",), zip=("lrs=0.1;0.2,0.3", "fail=false,true"))
    assert sweep.points() == [
        {"train.seeds": "1", "lrs": "0.1", "fail": "false"},
        {"train.seeds": "1", "lrs": "0.2,0.3", "fail": "true"},
        {"train.seeds": "2", "lrs": "0.1", "fail": "false"},
        {"train.seeds": "2", "lrs": "0.2,0.3", "fail": "true"}]
    grid = Sweep(REF, grid=("train.seeds=1,2,3", "train.steps=10,20,30"), random=4, seed=5)
    drawn = grid.points()
    assert len(drawn) == 4 and len({tuple(p.values()) for p in drawn}) == 4
    assert drawn == grid.points()  # the same seed, the same draws
    assert all(p in Sweep(REF, grid=grid.grid).points() for p in drawn)
    ranged = Sweep(REF, grid=("train.seeds=1,2",), random=50, seed=1,
                   ranges=("task.noise=0.001:0.1:log", "train.steps=5:9:int"))
    points = ranged.points()
    noise = np.array([float(p["task.noise"]) for p in points])
    assert ((noise >= 0.001) & (noise <= 0.1)).all()
    assert np.mean(noise < 0.01) == pytest.approx(0.5, abs=0.2)  # log-uniform: half below
    assert {p["train.steps"] for p in points} == {"5", "6", "7", "8", "9"}
    for bad, says in [(Sweep(REF, zip=("lrs=0.1,0.2", "fail=true")), "equal length"),
                      (Sweep(REF, ranges=("task.noise=0:1",)), "--random N"),
                      (Sweep(REF, random=3, ranges=("task.noise=0:1:log",)), "LOW:HIGH"),
                      (Sweep(REF, grid=("fail=true",), random=2), "at most the 1 points"),
                      (Sweep(REF, grid=("fail=true", "fail=false")), "one axis only"),
                      (Sweep(REF, grid=("fail",)), "KEY=V1,V2")]:
        with pytest.raises(ConfigError, match=says):
            bad.points()


def test_a_point_is_keyed_by_the_hash_of_its_resolved_config(tmp_path):
    sweep_id, points = resolve(Sweep(REF, grid=("lrs=0.01,1e-2,0.02",)), tmp_path)
    assert len(points) == 2  # 0.01 and 1e-2 are one config: one point
    point = points[0]
    text = json.dumps({"recipe": REF, "mode": "full", "config": to_dict(point.config)},
                      sort_keys=True, separators=(",", ":"))
    assert point.hash == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert point.path == tmp_path / "pair" / f"cfg-{point.hash}"
    again_id, again = resolve(Sweep(REF, grid=("lrs=1e-2,0.02",)), tmp_path)
    assert again_id == sweep_id and [p.hash for p in again] == [p.hash for p in points]
    with pytest.raises(ConfigError, match="sweep point train.seeds=0"):
        resolve(Sweep(REF, grid=("train.seeds=1,0",)), tmp_path)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_sweep_runs_caches_retries_and_reads_its_points(tmp_path, capsys):
    """Four points: a diverging learning rate is an outcome (complete, NaN loss); a point
    whose measurement raises is recorded as failed and the others finish; a second run
    reuses every point; retry reruns the failed one; force reruns all."""
    sweep = Sweep(REF, base=("train.steps=20", "train.eval_every=10", "train.seeds=1"),
                  grid=("lrs=0.01,1e9", "fail=false,true"))
    sweep_id, states = run_sweep(sweep, tmp_path)
    assert states == ["complete", "failed", "complete", "failed"]
    record, table = load_sweep(sweep_id, tmp_path)
    assert record["axes"] == ["lrs", "fail"] and len(record["points"]) == 4
    assert table.state.tolist() == states
    assert "on purpose" in table.error[1]
    finals = table.set_index("lrs")
    diverged = finals.loc["1e9"]
    diverged = diverged[diverged.fail == "false"]
    assert math.isnan(diverged["metric:lr1e+09/test_loss"].iloc[0])
    assert diverged["metric:lr1e+09/diverged_step"].iloc[0] >= 1
    # the final metrics equal each point's own last evaluation, mean over seeds
    point = table.iloc[0]
    assert record["points"][0]["run"] == f"pair/{point.run_id}"
    from iclab.store import load_run

    own = load_run(point.path).metrics
    last = own[(own.metric == "lr0.01/test_loss") & (own.step == 20)].value.mean()
    assert point["metric:lr0.01/test_loss"] == pytest.approx(last, rel=1e-12)
    report = (tmp_path / "_sweeps" / f"{sweep_id}.html").read_text()
    assert report.count("<svg") >= 2 and "cfg-" in report

    stamps = {p: (p / "status.json").stat().st_mtime_ns for p in (tmp_path / "pair").iterdir()}
    assert run_sweep(sweep, tmp_path) == (sweep_id, states)  # cached: nothing reruns
    assert {p: (p / "status.json").stat().st_mtime_ns for p in stamps} == stamps
    assert run_sweep(sweep, tmp_path, mode="retry")[1] == states  # fails again, on purpose
    assert sum((p / "status.json").stat().st_mtime_ns != stamps[p] for p in stamps) == 2
    assert run_sweep(sweep, tmp_path, mode="force")[1] == states
    assert all((p / "status.json").stat().st_mtime_ns != stamps[p] for p in stamps)

    assert main(["runs", "--out", str(tmp_path), "--sweep", sweep_id[:5]]) == 0
    out = capsys.readouterr().out
    assert out.count("complete") == 2 and out.count("failed") >= 2
    assert main(["runs", "--out", str(tmp_path), "--sweep", "s-nothing"]) == 2


def test_points_trained_together_by_the_process_executor_match_one_by_one(tmp_path):
    """With --executor process every point's jobs go to one pool of processes, then each
    point is measured here: the same numbers as a sweep run point by point locally."""
    from iclab.framework import Executor
    from iclab.store import load_run

    sweep = Sweep(REF, base=("train.steps=20", "train.eval_every=10", "train.seeds=1"),
                  grid=("lrs=0.01;0.02,0.03",))
    local_id, local = run_sweep(sweep, tmp_path / "local")
    pooled_id, pooled = run_sweep(sweep, tmp_path / "pooled",
                                  executor=Executor("process", workers=2))
    assert local_id == pooled_id and local == pooled == ["complete", "complete"]
    for a, b in zip(load_sweep(local_id, tmp_path / "local")[1].path,
                    load_sweep(pooled_id, tmp_path / "pooled")[1].path, strict=True):
        assert Path(a).name == Path(b).name  # the same config hash
        ma, mb = load_run(a).metrics, load_run(b).metrics
        assert ma.equals(mb)
        assert len(list((Path(b) / "executor").glob("shard-*.log"))) >= 1


def test_points_that_differ_in_learning_rate_pack_into_one_program(tmp_path):
    """--pack: three learning rates train as one vmapped program (lr_grid) and each point
    is measured alone: its metrics and claims match a point-by-point sweep to float32
    rounding; each packed point names the others."""
    from iclab.store import load_run

    sweep = Sweep("executor_recipe:SOLO", grid=("optim.lr=0.003,0.01,0.03",))
    _, alone = run_sweep(sweep, tmp_path / "alone")
    sweep_id, packed = run_sweep(sweep, tmp_path / "packed", pack=True)
    assert alone == packed == ["complete"] * 3
    paths = load_sweep(sweep_id, tmp_path / "packed")[1].path.tolist()
    for path in paths:
        a, b = load_run(path), load_run(Path(str(path).replace("packed", "alone")))
        assert "packed_with" not in b.status
        assert set(a.status["packed_with"]) == {Path(p).name for p in paths} - {a.path.name}
        ma = a.metrics.sort_values(["metric", "seed", "step"], ignore_index=True)
        mb = b.metrics.sort_values(["metric", "seed", "step"], ignore_index=True)
        assert ma[["metric", "seed", "step"]].equals(mb[["metric", "seed", "step"]])
        np.testing.assert_allclose(ma.value, mb.value, rtol=2e-4, atol=1e-6)
        np.testing.assert_allclose(a.tables["final"].loss, b.tables["final"].loss, rtol=2e-4)
    with pytest.raises(ConfigError, match="--pack"):
        from iclab.framework import Executor

        run_sweep(sweep, tmp_path / "x", pack=True, executor=Executor("process"))


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "runs"
    code = main(["sweep", REF, "--out", str(root), "--grid", "lrs=0.01;0.01,0.02",
                 "--grid", "train.seeds=1,2", "--mode", "dry-run"])
    assert code == 0 and not root.exists()
    out = capsys.readouterr().out
    assert out.count("missing") == 4 and "6 job(s) in 2 static shape(s)" in out
    assert "0 point(s) that differ only in learning rates" in out
    assert main(["sweep", REF, "--out", str(root), "--grid", "task.d=3,4",
                 "--mode", "dry-run"]) == 0  # the model's width differs: two shapes
    assert "4 job(s) in 2 static shape(s)" in capsys.readouterr().out
    assert main(["sweep", REF, "--out", str(tmp_path), "--grid", "lrs=0.01",
                 "--mode", "sometimes"]) == 2
    assert "cached, retry, force, dry-run" in capsys.readouterr().err


def test_final_metrics_of_no_folders_is_empty():
    assert final_metrics([]).empty
