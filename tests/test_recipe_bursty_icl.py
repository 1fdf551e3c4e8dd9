"""bursty-icl: token layout, config validation and a smoke run of the grid."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.cli import main
from iclab.config import apply_overrides
from iclab.engine import Trainer
from iclab.instruments import item_label_scores, rise_times
from iclab.recipes.bursty_icl import experiment, make_problem, quick_config
from iclab.store import load_run
from iclab.tasks import BurstyClassificationTask, bursty_tokens


def test_item_label_scores_on_constructed_patterns():
    """A head that puts the query's mass on the label tokens of its class, and a first
    layer whose label rows sit on their own item, score 1; uniform causal attention
    scores |{j: ℓ_j = target}| / (2N + 1) and the mean over label rows of 1/(2j + 2)."""
    labels, target = jnp.array([3, 1, 3, 0]), jnp.array(3)
    n = labels.shape[0]
    t = 2 * n + 1
    first = np.zeros((t, t))
    first[np.arange(t), np.maximum(np.arange(t) - 1, 0)] = 1.0  # every row: previous token
    second = np.eye(t)
    second[-1] = 0.0
    second[-1, [1, 5]] = 0.5                                       # labels 0 and 2 carry 3
    ind, prev = item_label_scores(jnp.array(np.stack([[first], [second]])), labels, target)
    assert float(ind) == pytest.approx(1.0) and float(prev) == pytest.approx(1.0)
    uniform = np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]
    ind, prev = item_label_scores(jnp.array(np.stack([[uniform], [uniform]])), labels, target)
    assert float(ind) == pytest.approx(2 / t)
    assert float(prev) == pytest.approx(np.mean(1 / (2 * np.arange(n) + 2)))
    # the largest over heads: a second, uniform head does not lower the score
    both = np.stack([[first, uniform], [second, uniform]])
    assert float(item_label_scores(jnp.array(both), labels, target)[0]) == pytest.approx(1.0)


def test_rise_times_of_a_ramp_and_of_a_flat_curve():
    steps = np.arange(0, 1100, 100)
    ramp = np.clip((steps - 400) / 400, 0, 1) * 0.5 + 0.5   # 0.5 until 400, 1.0 from 800
    times = rise_times(steps, ramp, baseline=0.5)
    assert times == {0.2: 500.0, 0.5: 600.0, 0.8: 800.0}
    assert np.isnan(rise_times(steps, np.full(steps.shape, 0.4), baseline=0.5)[0.5])


def test_traced_zipf_and_noise_sample_what_the_task_does():
    """``zipf`` and ``within_class_noise`` are array fields: passed as traced values they
    draw the same sequences as the task with those numbers."""
    task = BurstyClassificationTask(classes=64, zipf=1.0, within_class_noise=0.4, p_bursty=0.5)
    key = jax.random.key(3)
    direct = task.sample_batch(key, 32)
    traced = jax.jit(lambda v: task.with_arrays(**v).sample_batch(key, 32))(
        {"zipf": jnp.float32(1.0), "within_class_noise": jnp.float32(0.4)})
    np.testing.assert_array_equal(direct.labels, traced.labels)
    np.testing.assert_allclose(direct.items, traced.items, rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # three compiled 2-layer trainers (~30 s); `make slow`
def test_sweep_cells_pack_with_the_largest_cell_and_train_as_they_do_alone():
    """The α sweep's cell and the grid's largest cell share a pack label; trained packed,
    each member equals its own Trainer to float32 rounding."""
    config = apply_overrides(quick_config(), [
        "burstiness=4", "classes=16", "zipf=1.0", "train.steps=30", "train.eval_every=15",
        "train.batch_size=16", "eval_sequences=32", "model.dim=16", "model.key_size=8",
        "task.dim=15"])
    jobs = experiment(config)
    assert [j.tag for j in jobs] == ["B4-K16", "B4-K16-a1"]
    assert {j.pack for j in jobs} == {"B4-K16"}
    alone = []
    for job in jobs:
        trainer = Trainer(job.problem, job.optim, job.train)
        trainer.fit(job.eval_data)
        alone.append(trainer.history)
    packed = Trainer(jobs[0].problem, jobs[0].optim, jobs[0].train,
                     data=[j.problem.packable.values for j in jobs],
                     group_tags=[j.tag for j in jobs])
    packed.fit(jax.tree.map(lambda *a: jnp.stack(a), *[j.eval_data for j in jobs]))
    for job, rows in zip(jobs, alone, strict=True):
        mine = packed.history[packed.history.metric.str.startswith(job.tag + "/")].copy()
        mine["metric"] = mine.metric.str.slice(len(job.tag) + 1)
        merged = mine.merge(rows, on=["step", "seed", "metric"])
        assert len(merged) == len(rows) > 0
        np.testing.assert_allclose(merged.value_x, merged.value_y, rtol=2e-5, atol=1e-6)
    assert make_problem(config, dataclasses.replace(config.task, classes=16)).packable.family \
        == jobs[0].problem.packable.family


def test_bursty_tokens_interleave_items_and_one_hot_labels():
    items = jnp.arange(6.0).reshape(2, 3)
    tokens = np.asarray(bursty_tokens(items, jnp.array([1, 0]), jnp.array([9.0, 9, 9]), 2))
    np.testing.assert_array_equal(tokens, [[0, 1, 2, 0, 0], [0, 0, 0, 0, 1],
                                           [3, 4, 5, 0, 0], [0, 0, 0, 1, 0],
                                           [9, 9, 9, 0, 0]])


def test_grid_values_are_validated():
    config = apply_overrides(quick_config(), ["burstiness=0,2", "classes=16,64"])
    assert config.task_for(0, 16).p_bursty == 0.0 and config.task_for(2, 64).burstiness == 2
    with pytest.raises(ConfigError, match="burstiness"):
        apply_overrides(quick_config(), ["burstiness=3"])
    with pytest.raises(ConfigError, match="classes"):
        apply_overrides(quick_config(), ["classes=4"])
    with pytest.raises(ConfigError, match="zipf"):
        apply_overrides(quick_config(), ["zipf=-1"])


@pytest.mark.slow  # end to end through the CLI (~30 s); `make slow`
def test_smoke_run_writes_the_grid(tmp_path):
    code = main(["run", "bursty-icl", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "burstiness=4", "--set", "classes=8,16", "--set", "zipf=1.0",
                 "--set", "train.steps=40", "--set", "train.eval_every=20",
                 "--set", "eval_sequences=64", "--set", "train.batch_size=32"])
    assert code in (0, 1)
    (run,) = (tmp_path / "bursty-icl").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == [
        "icl_emerges", "no_icl_few_classes", "abrupt_icl", "induction_head_forms",
        "previous_item_head", "head_with_icl", "zipf_keeps_icl", "zipf_adds_iwl"]
    tables = load_run(run).tables
    grid = tables["grid"]
    assert set(zip(grid.burstiness, grid.classes, grid.zipf, strict=True)) == {
        (4, 8, 0.0), (4, 16, 0.0), (4, 16, 1.0)}
    assert grid.icl_accuracy.between(0, 1).all() and list(grid.seed) == [0, 0, 0]
    assert grid.induction_attention.between(0, 1).all()
    assert list(tables["transition"].seed) == [0]
    assert (run / "report.html").read_text().count("<svg") == 4
