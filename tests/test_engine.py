import json
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import eval_batch, small_trainer, tree_allclose
from iclab._errors import ConfigError
from iclab.engine import (
    FitJob,
    OptimConfig,
    Problem,
    TrainConfig,
    Trainer,
    default_workers,
    fit_concurrently,
    make_optimizer,
    map_concurrently,
)
from iclab.solvers import tune_gd_lr
from iclab.store import RunDir


def test_training_lowers_the_loss_towards_one_gd_step():
    trainer = small_trainer(steps=300, eval_every=100, lr=3e-2)
    batch = eval_batch()
    before = trainer.evaluate(trainer.init(), batch)["test_loss"][0]
    after = trainer.evaluate(trainer.fit(batch), batch)["test_loss"][0]
    _, gd = tune_gd_lr(batch, 1)
    assert after < 0.5 * before
    assert after < 1.3 * gd


def test_vmapped_seeds_equal_separate_runs():
    batch = eval_batch()
    together = small_trainer(seeds=3, seed=10).fit(batch)
    for s in range(3):
        alone = small_trainer(seeds=1, seed=10 + s).fit(batch)
        one = jax.tree.map(lambda a, s=s: a[s:s + 1], together.params)
        assert tree_allclose(one, alone.params, rtol=1e-5, atol=1e-6)


def test_seeds_differ():
    state = small_trainer(seeds=2).init()
    w = np.asarray(state.params.blocks[0].attn.w_q)
    assert not np.allclose(w[0], w[1])


def test_chunking_does_not_change_the_result():
    batch = eval_batch()
    a = small_trainer(steps=60, eval_every=20).fit(batch)
    b = small_trainer(steps=60, eval_every=15).fit(batch)
    assert tree_allclose(a.params, b.params, rtol=1e-5, atol=1e-6)


def test_same_config_and_seed_give_identical_numbers():
    batch = eval_batch()
    a, b = small_trainer().fit(batch), small_trainer().fit(batch)
    assert tree_allclose(a.params, b.params, rtol=0, atol=0)


def test_no_recompilation_after_the_first_chunk():
    """One ahead-of-time program per chunk length, compiled once and reused (an AOT
    program refuses arguments of other types, so reuse proves the state's types are
    stable), and its compile time is kept apart from the timed steps."""
    import jax

    trainer = small_trainer()
    state = trainer.init()
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    for _ in range(3):
        state, _ = trainer.chunk(state, 10)
    assert list(trainer._compiled) == [10] and trainer.compile_seconds > 0
    assert len(compiles) == 1


def test_interrupted_training_resumes_to_the_same_numbers(tmp_path):
    batch = eval_batch()
    reference = small_trainer(steps=80).fit(batch)

    run = RunDir.create(tmp_path, "unit", {"x": 1})

    class Kill(Exception):
        pass

    def kill_at_40(step, *_):
        if step == 40:
            raise Kill

    with pytest.raises(Kill):
        small_trainer(steps=80).fit(batch, run=run, progress=kill_at_40)
    assert run.checkpoint_step() == 40
    kept = run.metrics()
    assert sorted(kept.step.unique()) == [0, 20, 40]  # nothing finished is lost
    resumed = small_trainer(steps=80).fit(batch, run=run)
    assert tree_allclose(resumed.params, reference.params, rtol=0, atol=0)
    assert sorted(run.metrics().step.unique()) == [0, 20, 40, 60, 80]
    assert int(resumed.step[0]) == 80


def test_early_stopping_rule_holds_across_resume(tmp_path):
    batch = eval_batch()
    seen = []

    def stop(step, metrics):
        seen.append(step)
        return step >= 40 and bool(np.all(metrics["test_loss"] < 10.0))

    run = RunDir.create(tmp_path, "unit", {})
    state = small_trainer(steps=100).fit(batch, run=run, stop=stop)
    assert int(state.step[0]) == 40 and seen == [0, 20, 40]
    assert sorted(run.metrics().step.unique()) == [0, 20, 40]
    resumed = small_trainer(steps=100).fit(batch, run=run, stop=stop)  # stops at once
    assert int(resumed.step[0]) == 40 and seen[-1] == 40
    assert sorted(run.metrics().step.unique()) == [0, 20, 40]
    # through fit_concurrently (every recipe's path) a job its rule stopped is final
    other = RunDir.create(tmp_path, "unit", {})
    fit_concurrently([FitJob(small_trainer(steps=100), batch, tag="x", stop=stop)], run=other)
    assert json.loads((other.path / "checkpoint-x.json").read_text()) == {"step": 40,
                                                                          "stopped": True}
    assert other.finished_checkpoints({"checkpoint-x": 100}) == {"checkpoint-x"}


def test_metrics_rows_are_long_format(tmp_path):
    run = RunDir.create(tmp_path, "unit", {})
    small_trainer(steps=40, seeds=2, seed=3).fit(eval_batch(), run=run)
    df = run.metrics()
    assert set(df.columns) >= {"step", "seed", "metric", "value"}
    assert set(df.seed) == {3, 4}
    assert set(df.metric) == {"test_loss", "train_loss"}
    assert len(df[(df.metric == "test_loss")]) == 2 * 3  # steps 0, 20, 40 × 2 seeds


def test_learning_rate_is_injected_not_baked():
    opt = make_optimizer(OptimConfig(lr=0.003, clip_norm=1.0), 100)
    state = opt.init({"w": np.zeros(3)})
    assert float(optax.tree_utils.tree_get(state, "learning_rate")) == pytest.approx(0.003)


@pytest.mark.parametrize("kwargs, key", [({"lr": -1.0}, "optim.lr"), ({"b2": 1.5}, "optim.b2"),
                                         ({"name": "lion"}, "optim.name")])
def test_bad_optimizer_values(kwargs, key):
    with pytest.raises(ConfigError) as err:
        OptimConfig(**kwargs)
    assert err.value.key == key


def test_bad_train_values():
    with pytest.raises(ConfigError, match="train.steps"):
        TrainConfig(steps=0)


def test_scheduled_sampling_sees_the_step():
    """``sample_scheduled`` replaces ``sample_batch`` in training and receives the step:
    here the batch is the step itself, so the losses are 0, 1, 2, … across chunks."""
    import equinox as eqx
    import jax.numpy as jnp

    from iclab.engine import Problem, Trainer

    class Scalar(eqx.Module):
        w: jax.Array

    problem = Problem(init_model=lambda key: Scalar(jnp.zeros(())),
                      sample_batch=lambda key, n: jnp.full((n,), -1.0),
                      loss=lambda m, batch: jnp.mean(batch) + 0.0 * m.w,
                      evaluate=lambda m, batch: {"w": m.w},
                      sample_scheduled=lambda key, n, step: jnp.full((n,), step, jnp.float32))
    trainer = Trainer(problem, OptimConfig(name="sgd", lr=0.1), TrainConfig(steps=6, batch_size=2,
                                                                          eval_every=3))
    state = trainer.init()
    state, first = trainer.chunk(state, 3)
    state, second = trainer.chunk(state, 3)
    np.testing.assert_array_equal(np.concatenate([first[0], second[0]]), np.arange(6.0))


def test_concurrent_training_equals_one_at_a_time(tmp_path):
    """Models trained side by side in threads get bit-identical parameters, and each
    writes its own metrics and checkpoint under its tag."""
    batch = eval_batch()
    trainers = [small_trainer(seed=0, lr=1e-2), small_trainer(seed=1, lr=3e-2)]
    jobs = [FitJob(t, batch, tag=f"m{i}", cost=i) for i, t in enumerate(trainers)]
    alone = fit_concurrently(jobs, workers=1)
    run = RunDir.create(tmp_path, "unit", {})
    together = fit_concurrently(jobs, run=run, workers=2)  # the larger cost starts first
    for a, b in zip(alone, together, strict=True):
        assert tree_allclose(a.params, b.params, rtol=0, atol=0)
    assert not tree_allclose(alone[0].params, alone[1].params)
    assert {run.checkpoint_step(f"checkpoint-m{s}") for s in range(2)} == {60}
    assert {m.split("/")[0] for m in run.metrics().metric.unique()} == {"m0", "m1"}


def test_map_concurrently_equals_the_serial_loop_and_raises_the_first_error():
    """Baseline fits side by side (threads) give the serial loop's numbers, in order."""
    batch = eval_batch()
    fit = lambda steps: tune_gd_lr(batch, steps=steps)
    serial = [fit(k) for k in (1, 2, 3)]
    assert map_concurrently(fit, [1, 2, 3], workers=2) == serial  # bit for bit, in order
    assert map_concurrently(fit, [1, 2, 3], workers=1) == serial

    def fails(k):
        if k == 2:
            raise ValueError("two")
        return k

    with pytest.raises(ValueError, match="two"):
        map_concurrently(fails, [1, 2, 3], workers=2)
    with pytest.raises(ConfigError, match="workers"):
        map_concurrently(fit, [1], workers=0)


def test_concurrent_training_stops_the_others_on_failure_and_resumes(tmp_path):
    batch = eval_batch()
    trainer = small_trainer(steps=400)
    reference = trainer.fit(batch)

    class Boom(Exception):
        pass

    # Fix the order of events: "long" reaches step 20, then "bad" fails, then "long" goes on.
    reached, exploded = threading.Event(), threading.Event()

    def explode(step, metrics):
        reached.wait(timeout=30)
        exploded.set()
        raise Boom

    def wait_for_the_failure(step, metrics):
        if step == 20:
            reached.set()
            exploded.wait(timeout=30)
        return False

    run = RunDir.create(tmp_path, "unit", {})
    jobs = [FitJob(trainer, batch, tag="long", stop=wait_for_the_failure),
            FitJob(trainer, batch, tag="bad", stop=explode)]
    with pytest.raises(Boom):
        fit_concurrently(jobs, run=run, workers=2)
    stopped_at = run.checkpoint_step("checkpoint-long")
    assert 20 < stopped_at < 400  # cancelled after the failure, just after a checkpoint
    assert run.checkpoint_steps()["checkpoint-long"] == stopped_at
    assert run.finished_checkpoints({"checkpoint-long": 400}) == set()  # cancelled: not final
    resumed = fit_concurrently([FitJob(trainer, batch, tag="long")], run=run)
    assert tree_allclose(resumed[0].params, reference.params, rtol=0, atol=0)


def test_concurrent_training_refuses_bad_input(monkeypatch):
    batch = eval_batch()
    with pytest.raises(ValueError, match="unique"):
        fit_concurrently([FitJob(small_trainer(), batch, tag="a")] * 2)
    monkeypatch.setenv("ICLAB_WORKERS", "zero")
    with pytest.raises(ConfigError, match="ICLAB_WORKERS"):
        default_workers()
    monkeypatch.setenv("ICLAB_WORKERS", "3")
    assert default_workers() == 3


def test_fit_without_a_run_folder_keeps_the_metric_history():
    """Notebook use: the in-memory sink keeps every evaluation (train loss from the first
    chunk on), with seeds and steps, without a run folder."""
    trainer = small_trainer(steps=60, eval_every=20, seeds=2, seed=4)
    state = trainer.fit(eval_batch())
    history = trainer.history
    assert set(history.metric) == {"test_loss", "train_loss"}
    test = history[history.metric == "test_loss"]
    assert sorted(set(test.step)) == [0, 20, 40, 60] and sorted(set(test.seed)) == [4, 5]
    final = trainer.evaluate(state, eval_batch())["test_loss"]
    last = test[test.step == 60].sort_values("seed").value.to_numpy()
    np.testing.assert_allclose(last, final, rtol=1e-6)


@pytest.mark.parametrize("cooldown, shape", [
    ("linear", lambda u: 1 - u), ("sqrt", lambda u: 1 - np.sqrt(u)),
    ("cosine", lambda u: 0.5 * (1 + np.cos(np.pi * u)))])
def test_wsd_schedule_against_its_formula_and_inside_the_optimiser(cooldown, shape):
    """Warm-up to η_max over W steps, constant, then the cooldown over the last f·T steps;
    the optimiser's injected learning rate follows it step by step."""
    from iclab.engine import OptimConfig, make_optimizer, wsd_schedule

    total, warmup, fraction, peak = 50, 5, 0.3, 0.2
    lr = wsd_schedule(peak, total, warmup, fraction, cooldown)
    start = total - int(fraction * total)
    for t in range(total + 3):
        u = min(max((t - start) / (total - start), 0.0), 1.0)
        expected = peak * min(1.0, t / warmup) * (1.0 if t < start else shape(u))
        np.testing.assert_allclose(float(lr(t)), expected, rtol=1e-6, atol=1e-7)
    config = OptimConfig(name="adam", lr=peak, schedule="wsd", warmup_steps=warmup,
                         decay_fraction=fraction, cooldown=cooldown)
    optimizer = make_optimizer(config, total)
    params = {"w": np.ones(2, np.float32)}
    state = optimizer.init(params)
    for t in range(total):  # the state holds the rate the update of step t used
        _, state = optimizer.update({"w": np.ones(2, np.float32)}, state, params)
        assert float(state.hyperparams["learning_rate"]) == pytest.approx(float(lr(t)),
                                                                          abs=1e-7)


def _transformer_and_roles():
    import equinox as eqx

    from iclab.models import CausalTransformer, CausalTransformerConfig

    config = CausalTransformerConfig(layers=("softmax",) * 2, heads=2, key_size=4, dim_in=3,
                                     dim=8, dim_out=3, readout="linear", mlp=True,
                                     layer_norm=True, init_std=0.1)
    model = CausalTransformer(config, key=jax.random.key(0))
    params = eqx.filter(model, eqx.is_array)
    return model, params, (lambda p: p.parameter_roles())


def test_models_label_every_parameter_with_a_role():
    import equinox as eqx

    from iclab.instruments import parameter_names
    from iclab.models import GPT, ROLES, GPTConfig

    model, params, roles = _transformer_and_roles()
    labelled = dict(zip(parameter_names(params), jax.tree.leaves(roles(params)), strict=True))
    assert set(labelled.values()) <= set(ROLES)
    assert {n for n, r in labelled.items() if r == "attention"} == {
        f"layers.{i}.{w}" for i in range(2) for w in ("w_q", "w_k", "w_v", "w_p")}
    assert labelled["read_out.weight"] == "readout" and labelled["norms.0.bias"] == "norm"
    gpt = GPT(GPTConfig(dim_in=3, width=8, layers=2, heads=2, max_len=6),
              key=jax.random.key(1))
    g = dict(zip(parameter_names(eqx.filter(gpt, eqx.is_array)),
                 jax.tree.leaves(gpt.parameter_roles()), strict=True))
    assert {n for n, r in g.items() if r == "attention"} == {
        f"blocks.{i}.{w}.weight" for i in range(2) for w in ("qkv", "out")}


def test_separate_weight_decay_for_attention_and_the_rest():
    """With zero gradients Adam's step is 0, so the update is exactly −η λ_role θ."""
    from iclab.engine import OptimConfig, make_optimizer

    model, params, roles = _transformer_and_roles()
    config = OptimConfig(name="adamw", lr=0.1, weight_decay=0.01, attention_weight_decay=0.5)
    optimizer = make_optimizer(config, 10, roles=roles)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = optimizer.update(zeros, optimizer.init(params), params)
    for u, p, r in zip(jax.tree.leaves(updates), jax.tree.leaves(params),
                       jax.tree.leaves(roles(params)), strict=True):
        lam = 0.5 if r == "attention" else 0.01
        np.testing.assert_allclose(u, -0.1 * lam * p, rtol=1e-6, atol=1e-9)


def test_equal_decays_reproduce_optax_adamw_bit_for_bit():
    from iclab.engine import OptimConfig, make_optimizer

    model, params, roles = _transformer_and_roles()
    grads = jax.tree.map(lambda p: jnp.sin(3.0 * p) + 0.1, params)
    ours = make_optimizer(OptimConfig(name="adamw", lr=0.01, weight_decay=0.1,
                                      attention_weight_decay=0.1), 10, roles=roles)
    theirs = optax.inject_hyperparams(optax.adamw)(learning_rate=0.01, b1=0.9, b2=0.98,
                                                   weight_decay=0.1)  # the default path
    s1, s2 = ours.init(params), theirs.init(params)
    for _ in range(3):
        u1, s1 = ours.update(grads, s1, params)
        u2, s2 = theirs.update(grads, s2, params)
        assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(u1),
                                                         jax.tree.leaves(u2), strict=True))


def test_coupled_decay_is_l2_in_the_gradient():
    from iclab.engine import OptimConfig, make_optimizer

    model, params, roles = _transformer_and_roles()
    grads = jax.tree.map(lambda p: jnp.cos(p), params)
    sgd = make_optimizer(OptimConfig(name="sgd", lr=0.1, weight_decay=0.2,
                                     decay_mode="coupled"), 10, roles=roles)
    updates, _ = sgd.update(grads, sgd.init(params), params)
    for u, g, p in zip(jax.tree.leaves(updates), jax.tree.leaves(grads),
                       jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(u, -0.1 * (g + 0.2 * p), rtol=1e-6, atol=1e-9)
    adam = make_optimizer(OptimConfig(name="adam", lr=0.1, weight_decay=0.2,
                                      decay_mode="coupled"), 10, roles=roles)
    reference = optax.chain(optax.add_decayed_weights(0.2), optax.scale_by_adam(b2=0.98),
                            optax.scale_by_learning_rate(0.1))
    u1, _ = adam.update(grads, adam.init(params), params)
    u2, _ = reference.update(grads, reference.init(params), params)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_attention_decay_needs_a_model_that_labels_its_parameters():
    from iclab.engine import OptimConfig

    with pytest.raises(ConfigError, match="optim.attention_weight_decay"):
        small_trainer_with(OptimConfig(attention_weight_decay=0.1))


def small_trainer_with(optim):
    from helpers import small_problem
    from iclab.engine import TrainConfig, Trainer

    return Trainer(small_problem(), optim, TrainConfig(steps=10, batch_size=8, eval_every=5))


def test_init_scale_multiplies_the_weights_not_the_norms_or_biases():
    import dataclasses

    from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer

    model, params, roles = _transformer_and_roles()
    problem = Problem(init_model=lambda key: type(model)(model.config, key=key),
                      sample_batch=lambda key, b: jnp.zeros((b, 4, 3)),
                      loss=lambda m, x: jnp.mean(jax.vmap(m)(x) ** 2),
                      evaluate=lambda m, data: {})
    train = TrainConfig(steps=1, batch_size=2, eval_every=1)
    base = Trainer(problem, OptimConfig(), train).init().params
    scaled = Trainer(problem, OptimConfig(), dataclasses.replace(train, init_scale=0.1)
                     ).init().params
    for a, b, r in zip(jax.tree.leaves(base), jax.tree.leaves(scaled),
                       jax.tree.leaves(roles(params)), strict=True):
        factor = 0.1 if r in ("embedding", "attention", "mlp", "readout") else 1.0
        np.testing.assert_allclose(b, factor * np.asarray(a), rtol=1e-6)


def test_float64_runs_reach_what_float32_cannot():
    """GD on ½(w − 1/3)²: in float64 w reaches 1/3 to 1e-15 and the parameters, the data
    and the evaluation are float64; in float32 the same run stops at float32's spacing
    (|w − 1/3| ≈ 1e-8). A run's precision is its own: float32 is unchanged afterwards."""
    import equinox as eqx

    class Scalar(eqx.Module):
        w: jax.Array

    third = 1.0 / 3.0
    problem = Problem(init_model=lambda key: Scalar(jnp.zeros(())),
                      sample_batch=lambda key, b: jax.random.normal(key, (b,)),
                      loss=lambda m, batch: 0.5 * (m.w - third) ** 2 + 0.0 * batch.sum(),
                      evaluate=lambda m, data: {"w": m.w, "data": data.sum()})
    errors = {}
    for precision in ("float64", "float32"):
        trainer = Trainer(problem, OptimConfig(name="sgd", lr=0.5),
                          TrainConfig(steps=200, batch_size=2, eval_every=100,
                                      precision=precision))
        state = trainer.fit(np.float64(1.0) if precision == "float64" else np.float32(1.0))
        assert state.params.w.dtype == jnp.dtype(precision)
        errors[precision] = abs(float(trainer.models(state)[0].w) - third)
    assert errors["float64"] < 1e-15 < 1e-9 < errors["float32"]
    assert jnp.zeros(()).dtype == jnp.float32
    with pytest.raises(ConfigError, match="train.precision"):
        TrainConfig(precision="bfloat16")


def test_a_learning_rate_grid_is_one_program_equal_to_separate_runs():
    """train.lr_grid: member k = (lr_grid[k // seeds], seed + k % seeds) trains exactly as
    a separate run at that learning rate and seed, with a warm-up-cosine schedule scaled
    to each peak, and the grid compiles the same programs whatever its size."""
    from helpers import small_problem

    optim = OptimConfig(lr=1e-2, schedule="warmup_cosine", warmup_steps=10)
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    counts, batch = [], eval_batch()
    for grid in ((3e-3, 1e-2, 3e-2), (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)):
        start = len(compiles)
        train = TrainConfig(steps=40, batch_size=64, eval_every=20, seeds=2, seed=5,
                            lr_grid=grid)
        trainer = Trainer(small_problem(), optim, train)
        state = trainer.fit(batch)
        counts.append(len(compiles) - start)
        assert trainer.members == 2 * len(grid)
    assert counts[0] == counts[1]
    for k in (0, 3, 9):  # (lr 1e-3, seed 5), (lr 3e-3, seed 6), (lr 1e-1, seed 6)
        lr, seed = train.member_lr(k), train.member_seed(k)
        alone = Trainer(small_problem(), OptimConfig(lr=lr, schedule="warmup_cosine",
                                                     warmup_steps=10),
                        TrainConfig(steps=40, batch_size=64, eval_every=20, seeds=1,
                                    seed=seed)).fit(batch)
        one = jax.tree.map(lambda a, k=k: a[k:k + 1], state.params)
        assert tree_allclose(one, alone.params, rtol=2e-5, atol=1e-6), (k, lr, seed)
    history = trainer.history
    assert sorted(history.seed.unique()) == list(range(5, 5 + 10))
