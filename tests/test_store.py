import json

import numpy as np
import pandas as pd
import pytest

from iclab.store import RunDir, find_run, list_runs, load_metrics


def _rows(step, values):
    return {"step": [step] * len(values), "seed": list(range(len(values))),
            "metric": ["loss"] * len(values), "value": values}


def test_metrics_round_trip_through_parquet_and_duckdb(tmp_path):
    run = RunDir.create(tmp_path, "demo", {"a": 1}, run_id="r1")
    run.write_metrics("p0", _rows(0, [1.0, 2.0]))
    run.write_metrics("p1", _rows(10, [0.5, 0.25]))
    df = load_metrics(tmp_path)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["recipe", "run_id", "step", "seed", "metric", "value"]
    assert df.value.tolist() == [1.0, 0.5, 2.0, 0.25]  # ordered by metric, seed, step
    assert set(df.recipe) == {"demo"} and set(df.run_id) == {"r1"}


def test_rewriting_a_part_replaces_it(tmp_path):
    run = RunDir.create(tmp_path, "demo", {})
    run.write_metrics("p0", _rows(0, [1.0]))
    run.write_metrics("p0", _rows(0, [3.0]))
    assert run.metrics().value.tolist() == [3.0]


def test_list_and_find_runs(tmp_path):
    a = RunDir.create(tmp_path, "demo", {}, run_id="20260101-000000-aaaa")
    b = RunDir.create(tmp_path, "other", {}, run_id="20260101-000001-bbbb")
    b.write_claims([{"id": "x", "claim": "c", "measured": 1.0, "criterion": "<= 2",
                     "paper": None, "passed": True}])
    b.set_status("complete")
    runs = list_runs(tmp_path)
    assert runs.run_id.tolist() == [a.run_id, b.run_id]
    assert runs.state.tolist() == ["interrupted", "complete"]  # nobody holds a's lock
    assert runs.claims.tolist() == ["-", "1/1"]
    assert find_run("20260101-000001", tmp_path) == b.path
    assert find_run(str(a.path), tmp_path) == a.path
    with pytest.raises(FileNotFoundError, match="ambiguous"):
        find_run("20260101", tmp_path)
    with pytest.raises(FileNotFoundError, match="no run"):
        find_run("nope", tmp_path)


def test_checkpoint_round_trip(tmp_path):
    import jax.numpy as jnp

    run = RunDir.create(tmp_path, "demo", {})
    state = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.array(7)}
    run.save_checkpoint(state, 7)
    like = {"w": jnp.zeros((2, 3)), "step": jnp.array(0)}
    loaded = run.load_checkpoint(like)
    np.testing.assert_array_equal(loaded["w"], state["w"])
    assert run.checkpoint_step() == 7
    assert not list(run.path.glob(".*"))  # no temporary files left behind


def test_config_and_status_files(tmp_path):
    run = RunDir.create(tmp_path, "demo", {"task": {"d": 3}})
    assert json.loads((run.path / "config.json").read_text()) == {"task": {"d": 3}}
    assert run.status()["status"] == "running"
    with pytest.raises(FileExistsError):
        RunDir.create(tmp_path, "demo", {}, run_id=run.run_id)


def test_empty_store(tmp_path):
    assert list_runs(tmp_path / "none").empty
    assert load_metrics(tmp_path).empty


def test_log_axes_are_labelled_in_report_figures():
    from iclab.framework._report import label_log_axes
    from iclab.report import figure

    fig, (a, b) = figure(2)
    a.plot([1, 10, 100], [1, 2, 3])
    a.set_xscale("log")
    a.set_xlabel("width")
    a.set_yscale("log", base=2)
    a.set_ylabel("loss")
    b.set_xscale("log")
    b.set_xlabel("η (log)")  # says so already
    label_log_axes(fig)
    assert (a.get_xlabel(), a.get_ylabel(), b.get_xlabel()) == (
        "width (log scale)", "loss (log₂ scale)", "η (log)")
