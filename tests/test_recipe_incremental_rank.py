"""incremental-rank: the toy's first stage against the linearised gradient flow, and a
smoke run of the whole recipe (tables, claims evaluated, figures drawn)."""

import json
import math

import numpy as np
import pytest

from iclab.cli import main
from iclab.engine import OptimConfig, TrainConfig, Trainer
from iclab.recipes.incremental_rank import ToyConfig, toy_problem
from iclab.store import load_run


def test_first_stage_time_matches_the_reduced_dynamics():
    """Near the origin the attention is uniform (a = O(α²)), so while the other entries
    stay at O(α²) the loss in entry j of v = w_V ⊙ w_O is L_j(v) = −c_j v + ½ q_j v² with
    c_j = mean over examples of Σ_n x̄_j y_nj and q_j = mean of Σ_n x̄_j² (x̄: the mean
    token). Gradient descent on the two scalars (w_V,j, w_O,j) of that reduced loss is run
    here in numpy: the entry it activates first (|Δv| ≥ θ) and the step at which it does
    must be the recipe's. (Analytically: u = (w_V + w_O)/√2 grows by 1 + η c_j per step, so
    the step is ≈ log(2θ/u₀²) / (2 log(1 + η c_j)).)"""
    config = ToyConfig(scales=(1e-2, 1e-3), seeds=1)
    alpha = 1e-3
    problem = toy_problem(config, alpha)
    x, y = (np.asarray(a, np.float64) for a in problem.sample_batch(None, 0))
    mean_token = x.mean(axis=1, keepdims=True)
    c = np.mean(np.sum(mean_token * y, axis=1), axis=0)
    q = np.mean(np.sum(mean_token**2 * np.ones_like(x), axis=1), axis=0)
    trainer = Trainer(problem, OptimConfig(name="sgd", lr=config.lr),
                      TrainConfig(steps=400, batch_size=config.examples, eval_every=1))
    state = trainer.init()
    head = trainer.models(state)[0]
    wv, wo = (np.asarray(w, np.float64) for w in (head.wv, head.wo))
    theta = config.active * min(abs(v) for v in config.attention + config.values)
    reduced = np.full(config.dim, np.inf)
    for j in range(config.dim):  # GD on (w_V, w_O) of L_j(v) = −c v + ½ q v²
        a, b = wv[j], wo[j]
        for step in range(400):
            if abs(a * b - wv[j] * wo[j]) >= theta:
                reduced[j] = step
                break
            grad_v = -c[j] + q[j] * a * b
            a, b = a - config.lr * grad_v * b, b - config.lr * grad_v * a
    first = int(np.argmin(reduced))
    assert np.isfinite(reduced[first])
    trainer.fit(problem.sample_batch(None, 0), state=state)
    history = trainer.history
    v = history[history.metric == f"v{first}"].set_index("step").value
    moved = (v - v.iloc[0]).abs() >= theta
    assert moved.any() and moved.idxmax() == pytest.approx(reduced[first], abs=1)
    for j in range(config.dim):  # no other entry (of v or a) moved first
        for name in (f"a{j}", f"v{j}"):
            if name == f"v{first}":
                continue
            other = history[history.metric == name].set_index("step").value
            assert ((other - other.iloc[0]).abs().loc[:moved.idxmax() - 1] < theta).all()


def test_toy_steps_reach_the_horizon_and_bad_scales_are_refused():
    config = ToyConfig()
    for alpha in config.scales:
        steps = config.steps(alpha)
        assert steps % config.eval_every == 0
        assert steps * config.lr / math.log(1 / alpha) >= config.horizon
    from iclab._errors import ConfigError

    with pytest.raises(ConfigError, match="toy.scales"):
        ToyConfig(scales=(1e-3, 1e-2))
    with pytest.raises(ConfigError, match="toy.dim"):
        ToyConfig(dim=2)


@pytest.mark.slow  # end to end through the CLI (~15–60 s); `make slow`
def test_short_run_writes_every_table_and_figure(tmp_path):
    """The toy at two scales to a short horizon and a 500-step transformer smoke run."""
    code = main(["run", "incremental-rank", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "toy.scales=0.01,0.001", "--set", "toy.seeds=1",
                 "--set", "init_scales=1,0.1", "--set", "train.steps=500",
                 "--set", "eval_tasks=64", "--set", "train.batch_size=32"])
    assert code in (0, 1)
    (path,) = (tmp_path / "incremental-rank").iterdir()
    run = load_run(path)
    toy = run.tables["toy"]
    assert sorted(toy.alpha) == [0.001, 0.01]
    assert (toy.final_active == 5).all() and (toy.max_jump == 1).all()
    taus = toy[[f"tau{k}" for k in range(1, 6)]].to_numpy()
    assert (np.diff(taus, axis=1) >= 0).all()  # stages in order
    curves = run.tables["transformer_curves"]
    assert sorted(curves.scale.unique()) == [0.1, 1.0] and (curves.step > 0).all()
    assert (curves.dqk_stable_rank >= 1 - 1e-5).all()  # stable rank ≥ 1 for ΔW ≠ 0
    claims = json.loads((path / "claims.json").read_text())
    assert {c["id"] for c in claims} == {
        "toy_one_entry_per_stage", "toy_learns_every_entry", "toy_rescaled_collapse",
        "transformer_rank_grows", "smaller_init_lower_rank"}
    assert len(list((path / "figures").glob("*.svg"))) == 3
    assert np.isfinite(run.tables["transformer"].accuracy).all()
