"""mesa: config validation, analytic helpers and a fast smoke run of the pipeline."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from iclab._errors import ConfigError
from iclab.cli import main
from iclab.config import apply_overrides
from iclab.recipes.mesa import quick_config
from iclab.solvers import (
    ar_gd_from_zero_lr,
    ar_gd_predictions,
    ar_preconditioned_inputs,
    tune_ar_ridge,
)
from iclab.tasks import DynamicsTask


def test_depths_must_include_one_and_task_must_be_linear():
    assert apply_overrides(quick_config(), ["depths=1,3"]).depths == (1, 3)
    with pytest.raises(ConfigError, match="depths"):
        apply_overrides(quick_config(), ["depths=2,3"])
    with pytest.raises(ConfigError, match="task.dynamics"):
        apply_overrides(quick_config(), ["task.dynamics=nonlinear"])
    plain = apply_overrides(quick_config(), ["plain.task.dynamics=nonlinear",
                                             "plain.task.hidden_dim=15"]).plain
    assert (plain.task.dynamics, plain.task.hidden_dim, plain.enabled) == ("nonlinear", 15, False)
    with pytest.raises(ConfigError, match="plain.softmax_layers"):
        apply_overrides(quick_config(), ["plain.softmax_layers=1"])


def test_gd_from_zero_step_size_is_the_least_squares_optimum(key):
    batch = DynamicsTask(state_dim=3, length=12).sample_batch(key, 64)
    eta = ar_gd_from_zero_lr(batch.inputs, batch.targets)
    a = np.asarray(jax.vmap(lambda s: ar_gd_predictions(s, jnp.zeros((3, 3)), 1.0))(
        batch.inputs), np.float64)
    y = np.asarray(batch.targets, np.float64)
    assert eta == pytest.approx(np.sum(a * y) / np.sum(a * a), rel=1e-4)
    loss = lambda e: np.sum((e * a - y) ** 2)
    assert loss(eta) < min(loss(0.99 * eta), loss(1.01 * eta))


def test_ridge_tuning_finds_the_grid_minimum(key):
    batch = DynamicsTask(state_dim=3, length=12, noise_std=0.3).sample_batch(key, 128)
    lam, log_lam = tune_ar_ridge(batch.inputs, batch.targets)
    assert lam == pytest.approx(10 ** log_lam) and -5.25 <= log_lam <= 2.25


def test_preconditioned_target_solves_the_regularised_system(key):
    s = DynamicsTask(state_dim=3, length=6).sample(key).inputs
    target = np.asarray(ar_preconditioned_inputs(s, 0.5), np.float64)
    s64 = np.asarray(s, np.float64)
    for t in range(6):
        h = s64[:t].T @ s64[:t] + np.eye(3) / 0.5
        np.testing.assert_allclose(h @ target[t], s64[t], rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # end to end through the CLI (~40 s); `make slow`
def test_smoke_run_writes_claims_probes_and_report(tmp_path):
    code = main(["run", "mesa", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "depths=1,2", "--set", "train.steps=40", "--set", "train.eval_every=20",
                 "--set", "task.length=12", "--set", "task.state_dim=4",
                 "--set", "baselines.steps=20", "--set", "probe.sequences=128",
                 "--set", "eval.sequences=128", "--set", "train.batch_size=32",
                 "--set", "fixed_teacher=false"])
    assert code in (0, 1)
    (run,) = (tmp_path / "mesa").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    checks = json.loads((run / "checks.json").read_text())
    assert [c["id"] for c in checks] == ["t1_loss", "noise_floor"]
    assert [c["id"] for c in claims] == [
        "lsa1_is_prop1", "lsa1_structured", "mesa_beats_lsa1", "mesa_tracks_ridge",
        "depth_helps", "deep_approaches_mesa", "prop2_matches_lsa", "compressed_matches_lsa",
        "probe_depth", "probe_time", "precond_probe_depth"]
    assert all(c["measured"] is not None for c in claims)
    assert (run / "report.html").read_text().count("<svg") == 3  # no fixed-teacher figure
    assert json.loads((run / "status.json").read_text())["status"] == "complete"


@pytest.mark.slow  # 1.5–2.5 CPU minutes of compiling; make test is near its budget
def test_plain_tokens_on_a_partially_observed_system_run_with_their_claims(tmp_path):
    code = main(["run", "mesa", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "depths=1", "--set", "train.steps=10", "--set", "train.eval_every=10",
                 "--set", "task.length=10", "--set", "task.state_dim=3",
                 "--set", "baselines.steps=10", "--set", "probe.sequences=64",
                 "--set", "eval.sequences=64", "--set", "train.batch_size=16",
                 "--set", "fixed_teacher=false", "--set", "plain.enabled=true",
                 "--set", "plain.task.state_dim=3", "--set", "plain.task.hidden_dim=5",
                 "--set", "plain.task.length=10", "--set", "plain.softmax_layers=2",
                 "--set", "plain.dim=8", "--set", "plain.key_size=4", "--set", "plain.heads=2",
                 "--set", "plain.positions=4", "--set", "plain.train.steps=20",
                 "--set", "plain.train.eval_every=10", "--set", "plain.train.batch_size=16",
                 "--set", "plain.optim.warmup_steps=5", "--set", "plain.few_shot_pairs=3",
                 "--set", "plain.prompt_tokens=2", "--set", "plain.prompt_steps=5",
                 "--set", "plain.prompt_batch=8"])
    assert code in (0, 1)
    (run,) = (tmp_path / "mesa").iterdir()
    claims = {c["id"]: c for c in json.loads((run / "claims.json").read_text())}
    plain = list(claims)[-8:]
    assert plain == ["plain_hybrid_beats_softmax", "plain_softmax_matches_prop2",
                     "plain_binds_tokens", "plain_probe_depth", "plain_precond_probe_depth",
                     "few_shot_learns", "eos_helps", "prefix_helps_early"]
    assert all(np.isfinite(claims[k]["measured"]) for k in plain)
    per_t = pd.read_parquet(run / "tables" / "plain_per_t.parquet")
    assert set(per_t.learner) == {"AR ridge, tuned λ", "Prop. 2 (2 steps)",
                                  "plain-softmax-2", "plain-hybrid-mesa"}  # no oracle: C* hides
    few_shot = pd.read_parquet(run / "tables" / "few_shot.parquet")
    assert set(few_shot.learner) == {"softmax TF", "softmax TF + EOS",
                                     "softmax TF + EOS + prefix", "LSQ on the pairs",
                                     "LSQ on D_mesa (spurious pairs)"}
    assert sorted(set(few_shot.pair)) == [1, 2, 3]
    assert (run / "report.html").read_text().count("<svg") == 5


def test_gap_per_t_pairs_seeds_and_compares_a_baseline_with_the_seed_mean():
    from iclab.recipes.analysis.mesa import gap_per_t

    rows = lambda name, seed, losses: [{"learner": name, "seed": seed, "t": t + 1, "loss": v}
                                       for t, v in enumerate(losses)]
    tables = {"per_t": pd.DataFrame(rows("LSA", 0, [1.0, 2.0]) + rows("LSA", 1, [3.0, 2.0])
                                    + rows("base", -1, [2.0, 4.0])),
              "other": pd.DataFrame(rows("comp", 0, [np.e, 2.0]) + rows("comp", 1, [3.0, 2.0]))}
    baseline = gap_per_t(tables, "base", "LSA")
    assert list(baseline.index) == [-1]
    assert baseline[-1] == pytest.approx(0.5 * abs(np.log(4.0 / 2.0)))
    paired = gap_per_t(tables, "comp", "LSA", "other")
    np.testing.assert_allclose(paired.loc[[0, 1]].to_numpy(), [0.5, 0.0])
