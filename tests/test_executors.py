"""Executors: a run's jobs trained in other processes (a process pool, submitit's local
stand-in for SLURM, a local Ray instance) reach the numbers of a local run, also when the
driver and its workers are killed mid-way and the run is resumed elsewhere."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import iclab
from executor_recipe import RECIPE
from iclab._errors import ConfigError
from iclab.cli import main
from iclab.framework import Executor
from iclab.framework._executors import shards, unfinished
from iclab.framework._recipe import recipe_reference
from iclab.store import RunDir

HERE = Path(__file__).parent
REF = "executor_recipe:RECIPE"
# long enough (2 × 400 steps) to be killed mid-way (checkpoints every 50), short enough for
# make test
STEPS = 400
LONG = [f"train.steps={STEPS}", "train.eval_every=50", "train.batch_size=256"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _values(run_path) -> np.ndarray:
    metrics = iclab.load_run(run_path).metrics.sort_values(["metric", "seed", "step"])
    return metrics[["metric", "seed", "step", "value"]].to_numpy()


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "iclab.cli", *args]


def _env() -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}


def test_bad_executor_options_are_one_line_errors(tmp_path, capsys):
    for argv, says in [(["--executor", "nowhere"], "local, process, slurm, ray"),
                       (["--executor", "slurm", "--cluster", "moon"], "slurm, local"),
                       (["--executor", "process", "--no-wait"], "--executor slurm or ray"),
                       (["--executor", "ray", "--gpu-memory-fraction", "1.5"], "(0, 1]"),
                       (["--executor", "process", "--jobs-per-shard", "0"], "> 0"),
                       (["--executor", "slurm", "--max-requeues", "-1"], ">= 0")]:
        assert main(["run", REF, "--out", str(tmp_path), *argv]) == 2, argv
        assert says in _one_error_line(capsys), argv
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing written
    with pytest.raises(ConfigError, match="no Recipe 'NOPE'"):
        iclab.get_recipe("executor_recipe:NOPE")


def test_shards_start_with_the_costliest_jobs_and_only_unfinished_jobs_are_sent(tmp_path):
    from dataclasses import replace

    jobs = RECIPE.experiment(RECIPE.quick())
    jobs = [replace(jobs[0], tag="a", cost=1.0), replace(jobs[1], tag="b", cost=3.0),
            replace(jobs[0], tag="c", cost=2.0)]
    assert shards(jobs, 1) == [["b"], ["c"], ["a"]]
    assert shards(jobs, 2) == [["b", "c"], ["a"]]
    run = RunDir.create(tmp_path, "pair", {"recipe": "pair", "config": {}})
    run.save_checkpoint({"x": np.zeros(1)}, jobs[1].train.steps, "checkpoint-b")
    run.save_checkpoint({"x": np.zeros(1)}, 20, "checkpoint-a")
    assert [job.tag for job in unfinished(run, jobs)] == ["a", "c"]
    run.mark_stopped(20, "checkpoint-a")  # its own stopping rule ended it: final
    assert [job.tag for job in unfinished(run, jobs)] == ["c"]
    assert run.checkpoint_steps()["checkpoint-a"] == 20


def test_a_recipe_of_your_own_is_referenced_by_module_and_a_main_one_is_refused():
    assert recipe_reference(RECIPE) == REF
    assert recipe_reference(iclab.get_recipe("icl-gd")) == "icl-gd"
    from dataclasses import replace

    local = replace(RECIPE, name="local")  # not at any module's top level
    with pytest.raises(ConfigError, match="cannot be rebuilt by another process"):
        recipe_reference(local)
    with pytest.raises(ConfigError, match="cannot be rebuilt by another process"):
        iclab.run(local, out="unused", executor=Executor("process"))


def test_a_process_run_killed_mid_way_resumes_locally_to_a_local_runs_numbers(tmp_path):
    """The driver and its two worker processes are killed (SIGKILL to the process group)
    after the first checkpoint; ``--resume`` with the default local executor finishes the
    jobs where they stopped; every metric and the claims equal an uninterrupted local run's
    bit for bit."""
    reference = iclab.run(REF, out=tmp_path / "local", set=LONG)
    root = tmp_path / "killed"
    sets = [a for item in LONG for a in ("--set", item)]
    proc = subprocess.Popen(_cli("run", REF, *sets, "--out", str(root), "--executor",
                                 "process", "--workers", "2"), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        records = list(root.glob("pair/*/checkpoint-*.json")) if root.exists() else []
        if records and any(json.loads(p.read_text() or '{"step": 0}')["step"] >= 50
                           for p in records):
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (path,) = list(root.glob("pair/*"))
    run = RunDir(path)
    steps = run.checkpoint_steps()
    assert any(step < STEPS for step in steps.values()) or len(steps) < 2, steps
    assert iclab.store.state(path) == "interrupted"
    assert sorted(p.name for p in (path / "executor").glob("shard-*.log")) == [
        "shard-0.log", "shard-1.log"]

    result = subprocess.run(_cli("run", "--resume", str(path)), env=_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    resumed = iclab.load_run(path)
    assert resumed.status["status"] == "complete"
    assert (_values(path) == _values(reference.path)).all()
    assert resumed.claims.measured.tolist() == reference.claims.measured.tolist()


def test_a_slurm_array_killed_mid_way_resumes_to_a_local_runs_numbers(tmp_path):
    """``--executor slurm --no-wait`` (submitit's local cluster standing in for SLURM)
    submits the job array, records it and exits; the jobs are killed mid-way (SIGKILL to
    their process group, as a node failure); ``--resume --no-wait`` resubmits what is
    unfinished; a second ``--resume`` waits for that submission's live jobs instead of
    submitting them twice, then measures: every metric equals a local run's bit for bit."""
    reference = iclab.run(REF, out=tmp_path / "local", set=LONG)
    root = tmp_path / "slurm"
    sets = [a for item in LONG for a in ("--set", item)]
    slurm = ["--executor", "slurm", "--cluster", "local"]
    log = tmp_path / "driver.log"  # (not a pipe: the jobs would hold it open)
    with open(log, "w") as sink:
        proc = subprocess.Popen(_cli("run", REF, *sets, "--out", str(root), *slurm,
                                     "--no-wait"), env=_env(), stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
        assert proc.wait(timeout=300) == 0, log.read_text()[-2000:]
    (path,) = list(root.glob("pair/*"))
    status = json.loads((path / "status.json").read_text())
    assert status["status"] == "interrupted" and len(status["submitted"]) == 2
    record = json.loads((path / "executor.json").read_text())
    assert record["cluster"] == "local" and {tuple(j["tags"]) for j in record["jobs"]} == {
        ("lr0.01",), ("lr0.003",)}
    run = RunDir(path)
    deadline = time.time() + 300
    while time.time() < deadline and not any(s >= 50 for s in run.checkpoint_steps().values()):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the array's controllers and tasks
    time.sleep(0.5)
    steps = run.checkpoint_steps()
    assert any(step < STEPS for step in steps.values()) or len(steps) < 2, steps

    with open(log, "w") as sink:
        again = subprocess.Popen(_cli("run", "--resume", str(path), *slurm, "--no-wait"),
                                 env=_env(), stdout=sink, stderr=subprocess.STDOUT)
        assert again.wait(timeout=300) == 0, log.read_text()[-2000:]
    assert "submitted" in log.read_text()
    final = subprocess.run(_cli("run", "--resume", str(path), *slurm), env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    # the jobs of the second submission, if still running, are waited for, not resubmitted
    assert "submitted 1 job" not in final.stdout and "submitted 2 job" not in final.stdout
    assert iclab.load_run(path).status["status"] == "complete"
    assert (_values(path) == _values(reference.path)).all()


@pytest.mark.slow  # an optional extra end to end (25 s); the shards it gets are tested above
def test_ray_tasks_on_a_local_instance_reach_a_local_runs_numbers(tmp_path):
    import ray
    reference = iclab.run(REF, out=tmp_path / "local")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": str(HERE), "JAX_PLATFORMS": "cpu"}})
    try:
        run = iclab.run(REF, out=tmp_path / "ray", executor=Executor("ray", cpus_per_job=1))
    finally:
        ray.shutdown()
    assert run.status["status"] == "complete"
    assert (_values(run.path) == _values(reference.path)).all()
