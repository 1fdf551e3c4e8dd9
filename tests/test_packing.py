"""Packing a recipe's jobs over their data (``Job.pack``, ``iclab run --pack``): every
member trains as its job alone does (to float32 rounding), the run folder reads as an
unpacked one, and a packed run killed mid-way resumes from its own checkpoint to the
numbers of an uninterrupted packed run."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import iclab
from executor_recipe import NOISY, NoisyConfig
from iclab._errors import ConfigError
from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer, regression_problem
from iclab.framework import pack_jobs
from iclab.models import DiagonalLSA
from iclab.tasks import LinearRegressionTask

HERE = Path(__file__).parent
REF = "executor_recipe:NOISY"
TASK = LinearRegressionTask(d=4, n_context=8, input_dist="gaussian", noise_dist="uniform",
                            query_noise=False)


def _init(key):
    return DiagonalLSA(0.01 * jax.random.normal(key, (2, 4)), 2, "pq")


def test_data_groups_train_as_their_problems_do_alone():
    """Three noise levels × 2 seeds in one Trainer: each member's final test loss and
    metric history equal those of its own Trainer to 1e-5, its rows are named by its
    group's tag with its own seed (σ_max = 0 is traced like any other)."""
    train = TrainConfig(steps=60, batch_size=32, eval_every=20, seeds=2, seed=4)
    optim = OptimConfig(name="adam", lr=3e-3)
    tasks = [dataclasses.replace(TASK, noise_std=s) for s in (0.5, 2.0, 0.0)]
    evals = [t.sample_batch(jax.random.key(9), 200) for t in tasks]
    alone = []
    for task, data in zip(tasks, evals, strict=True):
        trainer = Trainer(regression_problem(task, _init), optim, train)
        trainer.fit(data)
        alone.append(trainer.history)
    packed = Trainer(regression_problem(tasks[0], _init), optim, train,
                     data=[t.array_fields() for t in tasks], group_tags=["a", "b", "c"])
    assert packed.members == 6
    state = packed.fit(jax.tree.map(lambda *a: jnp.stack(a), *evals))
    history = packed.history
    assert sorted(history.seed.unique()) == [4, 5]
    for tag, rows in zip("abc", alone, strict=True):
        mine = history[history.metric.str.startswith(tag + "/")].copy()
        mine["metric"] = mine.metric.str.slice(2)
        merged = mine.merge(rows, on=["step", "seed", "metric"])
        assert len(merged) == len(rows) == len(mine) == 2 * (4 + 3)  # test, train loss
        np.testing.assert_allclose(merged.value_x, merged.value_y, rtol=1e-5)
    assert int(state.step[0]) == 60


def test_data_groups_are_refused_where_they_cannot_pack():
    problem = regression_problem(TASK, _init)
    plain = Problem(problem.init_model, problem.sample_batch, problem.loss, problem.evaluate)
    with pytest.raises(ValueError, match="Packable"):
        Trainer(plain, OptimConfig(), TrainConfig(steps=4), data=[{"noise_std": 1.0}])
    with pytest.raises(ValueError, match="lr_grid"):
        Trainer(problem, OptimConfig(), TrainConfig(steps=4, lr_grid=(0.1, 0.2)),
                data=[{"noise_std": 1.0}])
    with pytest.raises(ValueError, match="2 group tags for 1"):
        Trainer(problem, OptimConfig(), TrainConfig(steps=4), data=[{"noise_std": 1.0}],
                group_tags=["a", "b"])
    with pytest.raises(ConfigError, match="one of noise_std"):
        TASK.with_arrays(d=3)


def test_pack_jobs_packs_one_label_optimiser_training_and_family():
    """The NOISY recipe's three σ jobs pack; its fourth (another learning rate) does not;
    neither does a job with a stopping rule, one without a label, nor a job whose task
    differs in more than its array fields."""
    jobs = NOISY.experiment(NoisyConfig())
    packed = pack_jobs(jobs)
    assert [j.tag for j in packed] == ["pack-lsa", "s3"]
    assert [j.tag for j in packed[0].packed] == ["s0", "s1", "s2"]
    assert jax.tree.leaves(packed[0].eval_data)[0].shape[0] == 3
    other = dataclasses.replace(jobs[1].problem.packable, family=("regression", None))
    variants = [dataclasses.replace(jobs[1], stop=lambda step, m: False),
                dataclasses.replace(jobs[1], pack=""),
                dataclasses.replace(jobs[1], problem=dataclasses.replace(
                    jobs[1].problem, packable=other))]
    for variant in variants:
        again = pack_jobs([jobs[0], variant, jobs[2]])
        assert [j.tag for j in again] == ["pack-lsa", "s1"], variant
        assert [j.tag for j in again[0].packed] == ["s0", "s2"]


def _values(run_path) -> np.ndarray:
    metrics = iclab.load_run(run_path).metrics.sort_values(["metric", "seed", "step"])
    return metrics[["metric", "seed", "step", "value"]].to_numpy()


def test_a_packed_run_reads_as_an_unpacked_one(tmp_path):
    """``pack=True`` is recorded; the packed job has its own checkpoint; the metric rows
    and the measured table are those of the unpacked run to float32 rounding."""
    plain = iclab.run(REF, out=tmp_path)
    packed = iclab.run(REF, out=tmp_path, pack=True)
    assert json.loads((packed.path / "config.json").read_text())["pack"] is True
    assert sorted(p.name for p in packed.path.glob("checkpoint-*.json")) == [
        "checkpoint-pack-lsa.json", "checkpoint-s3.json"]
    a, b = _values(plain.path), _values(packed.path)
    assert (a[:, :3] == b[:, :3]).all()
    np.testing.assert_allclose(a[:, 3].astype(float), b[:, 3].astype(float), rtol=1e-5)
    np.testing.assert_allclose(plain.tables["final"].loss, packed.tables["final"].loss,
                               rtol=1e-5)


@pytest.mark.slow  # packing and kill-and-resume are each tested in make test
def test_a_packed_process_run_killed_mid_way_resumes_to_a_packed_runs_numbers(tmp_path):
    """A packed run on the process executor, killed (SIGKILL) after its first checkpoint,
    resumed locally (packed again, from ``config.json``): every metric equals an
    uninterrupted packed local run's bit for bit."""
    long = ["train.steps=400", "train.eval_every=50", "train.batch_size=256"]
    reference = iclab.run(REF, out=tmp_path / "local", set=long, pack=True)
    root = tmp_path / "killed"
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    sets = [a for item in long for a in ("--set", item)]
    proc = subprocess.Popen([sys.executable, "-m", "iclab.cli", "run", REF, *sets, "--pack",
                             "--out", str(root), "--executor", "process", "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        record = root / "noisy"
        found = list(record.glob("*/checkpoint-pack-lsa.json")) if record.exists() else []
        if found and json.loads(found[0].read_text() or '{"step": 0}')["step"] >= 50:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (path,) = list(root.glob("noisy/*"))
    assert json.loads((path / "checkpoint-pack-lsa.json").read_text())["step"] < 400
    result = subprocess.run([sys.executable, "-m", "iclab.cli", "run", "--resume", str(path)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (_values(path) == _values(reference.path)).all()


def test_a_traced_fixed_noise_level_samples_what_the_task_does():
    """A fixed σ as a tracer (0 included) draws the batch of the task with that σ."""
    for sigma in (0.0, 1.5):
        task = dataclasses.replace(TASK, noise_dist="fixed", noise_std=sigma)
        traced = jax.jit(lambda s, k, t=task: t.with_arrays(noise_std=s).sample_batch(k, 16))
        plain = task.sample_batch(jax.random.key(1), 16)
        again = traced(jnp.asarray(sigma), jax.random.key(1))
        for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(again), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
