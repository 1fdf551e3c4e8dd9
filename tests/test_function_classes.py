import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.instruments import bootstrap_mean_ci
from iclab.models import GPT, GPTConfig
from iclab.solvers import prefix_predictions
from iclab.tasks import LinearRegressionTask, all_points, to_interleaved_tokens


def test_interleaved_tokens(key):
    example = LinearRegressionTask(d=3, n_context=4).sample(key)
    tokens = to_interleaved_tokens(example)
    x, y = all_points(example)
    assert tokens.shape == (10, 3)
    np.testing.assert_array_equal(tokens[::2], x)
    np.testing.assert_array_equal(tokens[1::2, 0], y)
    assert np.all(np.asarray(tokens[1::2, 1:]) == 0)


def _numpy_prefix(learner, x, y, lam=0.1, k=3):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = np.zeros(len(y))
    for i in range(1, len(y)):
        xs, ys = x[:i], y[:i]
        if learner == "least_squares":
            w = np.linalg.lstsq(xs, ys, rcond=None)[0]
        elif learner == "ridge":
            w = np.linalg.solve(xs.T @ xs + lam * np.eye(x.shape[1]), xs.T @ ys)
        elif learner == "averaging":
            w = (ys[:, None] * xs).mean(0)
        else:
            nearest = np.argsort(((xs - x[i]) ** 2).sum(1))[:k]
            out[i] = ys[nearest].mean()
            continue
        out[i] = w @ x[i]
    return out


@pytest.mark.parametrize("learner", ["least_squares", "ridge", "averaging", "knn"])
def test_prefix_baselines_match_numpy(key, learner):
    example = LinearRegressionTask(d=4, n_context=9, input_dist="gaussian",
                                   noise_std=0.2).sample(key)
    x, y = all_points(example)
    np.testing.assert_allclose(prefix_predictions(learner, x, y), _numpy_prefix(learner, x, y),
                               rtol=2e-3, atol=2e-3)


def test_bootstrap_interval_covers_the_mean():
    values = np.random.default_rng(0).normal(1.0, 2.0, size=(4000, 2))
    mean, low, high = bootstrap_mean_ci(values, resamples=500)
    assert np.all(low < mean) and np.all(mean < high)
    half_width = (high - low) / 2
    np.testing.assert_allclose(half_width, 1.645 * 2.0 / np.sqrt(4000), rtol=0.15)


def test_gpt_is_causal(key):
    model = GPT(GPTConfig(width=16, layers=2, heads=2).resolve(3), key=key)
    tokens = jax.random.normal(jax.random.key(1), (7, 3))
    # compiled (an eager jacobian of the model takes ~15 s op by op)
    jac = eqx.filter_jit(lambda m, t: jax.jacobian(m)(t))(model, tokens)  # (T_out, T_in, D)
    influence = np.abs(np.asarray(jac)).sum(-1)
    assert np.all(np.triu(influence, k=1) == 0)  # no output sees a later token
    assert np.all(np.diag(influence) > 0)
    patterns = eqx.filter_jit(lambda m, t: m.attention_patterns(t))(model, tokens)
    assert patterns.shape == (2, 2, 7, 7)
    np.testing.assert_allclose(patterns.sum(-1), 1.0, rtol=1e-5)
    assert jnp.all(jnp.triu(patterns, k=1) == 0)


@pytest.mark.slow  # end to end through the CLI (~15–60 s); `make slow`
def test_function_classes_smoke_run(tmp_path):
    import json

    from iclab.cli import main

    code = main(["run", "function-classes", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "train.steps=40", "--set", "train.eval_every=20",
                 "--set", "eval.prompts=64", "--set", "eval.bootstrap=50",
                 "--set", "model.width=16", "--set", "model.layers=1",
                 "--set", "ood.prompts=16", "--set", "capacity.sizes=8x1x2,32x2x4"])
    assert code in (0, 1)
    (run,) = (tmp_path / "function-classes").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["near_least_squares", "beats_knn_and_averaging",
                                         "capacity_helps"]
    from iclab.store import load_run

    tables = load_run(run).tables
    # each size is its own GPT: GPT-2's count (D+1)W + TW + L(12W² + 13W) + 3W + 1 (D = d = 5
    # read in, T = 128 learned positions)
    capacity = tables["capacity"]
    counts = capacity.groupby("model", sort=False).params.first().to_dict()
    gpt2 = lambda w, n: 6 * w + 128 * w + n * (12 * w * w + 13 * w) + 3 * w + 1  # noqa: E731
    assert counts == {"main": gpt2(16, 1), "8x1x2": gpt2(8, 1), "32x2x4": gpt2(32, 2)}
    main = capacity[capacity.model == "main"].sort_values("k")
    np.testing.assert_allclose(main.error, tables["transformer_seeds"].sort_values("k").error)
    assert len(capacity) == 3 * 11 and (run / "figures" / "capacity.svg").exists()
    largest, smallest = (capacity[(capacity.model == m) & (capacity.k == 10)].error.item()
                         for m in ("32x2x4", "8x1x2"))
    assert claims[2]["measured"] == pytest.approx(largest / smallest, rel=1e-6)
    curves = tables["curves"]
    ls = curves[curves.learner == "least squares"].sort_values("k")["mean"].to_numpy()
    assert ls.shape == (11,) and 0.5 < ls[0] < 2.0  # k = 0: the zero prediction, error ≈ 1
    assert np.all(ls[6:] < 1e-3)  # k > d: least squares is exact on noise-free tasks
    assert (curves.learner == "2-layer NN (Adam)").sum() == 11
    ood = tables["ood"]
    names = set(ood.prompts)
    assert {"standard", "random_quadrants", "orthogonal_query", "repeated_query",
            "half_subspace", "skewed", "noisy_labels", "scale_x×2", "scale_y×0.5"} <= names
    orth = ood[(ood.prompts == "orthogonal_query") & (ood.learner == "least squares")]
    assert len(orth) == 5  # min(K, d) points
    assert (run / "figures" / "ood_prompts.svg").exists()


@pytest.mark.slow  # an end-to-end run; the baselines' own tests are in test_tree.py
def test_decision_tree_run_has_the_tree_baselines(tmp_path):
    """Decision trees: the JAX depth-4 tree, scikit-learn's unbounded tree and XGBoost
    (the optional extra, installed with the test dependencies) are all reported."""
    import json

    from iclab.cli import main
    from iclab.store import load_run

    code = main(["run", "function-classes", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "task.kind=decision_tree", "--set", "train.steps=20",
                 "--set", "train.eval_every=20", "--set", "eval.prompts=32",
                 "--set", "eval.bootstrap=20", "--set", "eval.external_prompts=3",
                 "--set", "model.width=16", "--set", "model.layers=1",
                 "--set", "network_baseline=false"])
    assert code in (0, 1)
    (run,) = (tmp_path / "function-classes").iterdir()
    curves = load_run(run).tables["curves"]
    assert {"greedy tree (depth 4)", "tree, unbounded (sklearn, 3 prompts)",
            "XGBoost (3 prompts)"} <= set(curves.learner)
    unbounded = curves[curves.learner == "tree, unbounded (sklearn, 3 prompts)"]
    assert unbounded.sort_values("k")["mean"].iloc[0] > 0  # k = 0: predicts 0
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["tree_beats_greedy_tree", "tree_beats_xgboost"]


def test_lasso_prefix_equals_lasso_on_the_seen_pairs(key):
    from iclab.solvers import lasso_prefix_predictions, lasso_weights

    example = LinearRegressionTask(d=4, n_context=9, input_dist="gaussian").sample(key)
    x, y = all_points(example)
    preds = lasso_prefix_predictions(x, y, 0.05)
    assert float(preds[0]) == 0.0
    for i in (3, 7):
        w = lasso_weights(x[:i], y[:i], 0.05, 500)
        assert float(preds[i]) == pytest.approx(float(w @ x[i]), rel=1e-3, abs=1e-4)


def _numpy_adam_network(params, x, y, mask, steps, lr):
    """The same Adam loop with hand-written gradients of the masked MSE."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    x, y, mask = (np.asarray(a, np.float64) for a in (x, y, mask))
    for t in range(1, steps + 1):
        pre = x @ p["w"].T + p["b"]
        hidden = np.maximum(pre, 0.0)
        residual = hidden @ p["a"] + p["c"] - y
        dout = 2 * mask * residual / max(mask.sum(), 1.0)
        dpre = np.outer(dout, p["a"]) * (pre > 0)
        grads = {"a": hidden.T @ dout, "c": dout.sum(), "w": dpre.T @ x, "b": dpre.sum(0)}
        for k in p:
            m[k] = 0.9 * m[k] + 0.1 * grads[k]
            v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
            p[k] = p[k] - lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
    return p


def test_adam_network_matches_numpy_and_fits(key):
    from iclab.solvers import (
        init_network,
        network_forward,
        network_prefix_predictions,
        train_network,
    )

    with jax.enable_x64(True):
        kx, kp = jax.random.split(key)
        x = jax.random.normal(kx, (8, 3))
        y = jnp.sin(x[:, 0]) + x[:, 1]
        mask = jnp.array([1.0] * 6 + [0.0] * 2)
        params = init_network(kp, 3, hidden=16)
        assert float(jnp.abs(params["w"]).max()) <= 1 / np.sqrt(3)
        trained = train_network(params, x, y, mask, steps=25, lr=5e-3)
        expected = _numpy_adam_network(params, x, y, mask, 25, 5e-3)
        for name in params:
            np.testing.assert_allclose(trained[name], expected[name], rtol=1e-9, atol=1e-12)
        # many steps fit the six seen pairs
        fitted = train_network(params, x, y, mask, steps=2000, lr=5e-3)
        seen_error = jnp.mean((network_forward(fitted, x[:6]) - y[:6]) ** 2)
        assert float(seen_error) < 1e-3 * float(jnp.mean(y[:6] ** 2))
        preds = network_prefix_predictions(kp, x, y, hidden=16, steps=25)
        assert preds.shape == (8,) and float(preds[0]) == 0.0
        # ŷ_i uses only the pairs before i: changing y_i leaves ŷ_1..ŷ_i unchanged
        moved = network_prefix_predictions(kp, x, y.at[4].add(5.0), hidden=16, steps=25)
        np.testing.assert_allclose(moved[:5], preds[:5], rtol=1e-12)
        assert float(jnp.abs(moved[5:] - preds[5:]).max()) > 1e-3


def _lstsq_fit(x, y):
    return np.linalg.lstsq(np.asarray(x, np.float64), np.asarray(y, np.float64), rcond=None)[0]


def test_ood_prompts_follow_their_definitions(key):
    from iclab.tasks import FunctionClassTask, ood_prompts

    task = FunctionClassTask(kind="linear", d=4, n_context=9)
    for strategy in ("standard", "random_quadrants", "repeated_query", "half_subspace",
                     "skewed", "scale_x", "scale_y"):
        p = ood_prompts(task, key, 8, strategy, 2.0)
        assert p.x.shape == (8, 10, 4)
        for b in range(8):  # one linear function per prompt, queries included
            w = _lstsq_fit(p.x[b], p.y[b])
            np.testing.assert_allclose(np.asarray(p.x_query[b]) @ w, p.y_query[b], atol=1e-3)
    std = ood_prompts(task, key, 8, "standard")
    np.testing.assert_array_equal(std.x_query, std.x)
    quad = ood_prompts(task, key, 8, "random_quadrants")
    signs = np.sign(np.asarray(quad.x))
    assert np.all(signs == signs[:, :1, :])  # one orthant per prompt
    rep = ood_prompts(task, key, 8, "repeated_query")
    for b in range(8):
        for i in range(1, 10):
            assert np.min(np.abs(np.asarray(rep.x[b, :i]) - np.asarray(rep.x_query[b, i])).max(1)
                          ) == 0.0
    orth = ood_prompts(task, key, 8, "orthogonal_query")
    assert orth.x.shape == (8, 4, 4)  # min(K, d) points
    for b in range(8):
        for i in range(1, 4):
            np.testing.assert_allclose(np.asarray(orth.x[b, :i]) @ np.asarray(orth.x_query[b, i]),
                                       0.0, atol=1e-4)
            np.testing.assert_allclose(np.linalg.norm(orth.x_query[b, i]),
                                       np.linalg.norm(orth.x[b, i]), rtol=1e-4)
    half = ood_prompts(task, key, 64, "half_subspace")
    assert np.linalg.matrix_rank(np.asarray(half.x).reshape(-1, 4), tol=1e-4) == 2
    assert np.mean(np.sum(np.asarray(half.x) ** 2, -1)) == pytest.approx(4.0, rel=0.1)
    skew = ood_prompts(task, key, 2000, "skewed")
    eig = np.sort(np.linalg.eigvalsh(np.cov(np.asarray(skew.x).reshape(-1, 4).T)))[::-1]
    np.testing.assert_allclose(eig / eig[0], [1, 1 / 4, 1 / 9, 1 / 16], rtol=0.1, atol=0.005)
    scaled = ood_prompts(task, key, 8, "scale_x", 3.0)
    np.testing.assert_allclose(scaled.x, 3.0 * std.x, rtol=1e-6)
    noisy = ood_prompts(task, key, 4000, "noisy_labels")
    assert np.var(np.asarray(noisy.y)) == pytest.approx(4.0, rel=0.1)  # renormalised to d
    with pytest.raises(ConfigError, match="strategy"):
        ood_prompts(task, key, 8, "sideways")
    with pytest.raises(ConfigError, match="task.kind"):
        ood_prompts(FunctionClassTask(kind="quadratic", d=4), key, 8, "standard")


def test_query_prompt_predictions_use_one_query_at_a_time(key):
    from iclab.tasks import FunctionClassTask, ood_prompts, query_prompt_predictions

    task = FunctionClassTask(kind="linear", d=3, n_context=6)
    prompts = ood_prompts(task, key, 2, "repeated_query")
    one = jax.tree.map(lambda a: a[0], prompts)
    predict = lambda x, y: prefix_predictions("averaging", x, y)
    got = query_prompt_predictions(predict, one)
    for i in range(7):
        x = np.asarray(one.x).copy()
        x[i] = one.x_query[i]
        y = np.asarray(one.y).copy()
        y[i] = one.y_query[i]
        expected = (x[:i].T @ y[:i] / max(i, 1)) @ x[i]
        assert float(got[i]) == pytest.approx(float(expected), rel=1e-4, abs=1e-6)
    std = jax.tree.map(lambda a: a[0], ood_prompts(task, key, 2, "standard"))
    np.testing.assert_allclose(query_prompt_predictions(predict, std, queries_differ=True),
                               query_prompt_predictions(predict, std, queries_differ=False),
                               rtol=1e-5)


def test_curriculum_schedule_and_truncated_sampling(key):
    from iclab.tasks import CurriculumConfig, FunctionClassTask

    c = CurriculumConfig(enabled=True)
    assert [tuple(int(v) for v in c.at(s, 20, 41)) for s in (0, 1999, 2000, 4000, 10**6)] == [
        (5, 11), (5, 11), (6, 13), (7, 15), (20, 41)]
    task = FunctionClassTask(kind="linear", d=6, n_context=5)
    ex = task.sample(key, active_dims=3)
    assert np.all(np.asarray(ex.x)[:, 3:] == 0)
    np.testing.assert_allclose(ex.x @ ex.w, ex.y, rtol=1e-5)
    sparse = FunctionClassTask(kind="sparse_linear", d=8, n_context=5, sparsity=2)
    for i in range(5):
        w = np.asarray(sparse.sample(jax.random.fold_in(key, i), active_dims=4).w)
        assert np.count_nonzero(w) == 2 and np.all(w[4:] == 0)


def test_masked_loss_equals_the_truncated_prompt_loss(key):
    from iclab.engine import MaskedPrompts, prompt_loss
    from iclab.tasks import FunctionClassTask, interleave

    task = FunctionClassTask(kind="linear", d=3, n_context=6)
    batch = task.sample_batch(key, 4)
    model = GPT(GPTConfig(width=16, layers=1, heads=2).resolve(3), key=jax.random.key(1))
    masked = prompt_loss(model, MaskedPrompts(batch, jnp.full((4,), 4)))
    x, y = jax.vmap(all_points)(batch)
    errors = [(model(interleave(x[b, :4], y[b, :4]))[::2] - y[b, :4]) ** 2 for b in range(4)]
    assert float(masked) == pytest.approx(float(jnp.mean(jnp.stack(errors))), rel=1e-5)
    assert float(prompt_loss(model, MaskedPrompts(batch, jnp.full((4,), 7)))) == pytest.approx(
        float(prompt_loss(model, batch)), rel=1e-6)


def _class_rows(kind: str, curves: dict, tf_errors=None, external_prompts: int = 0) -> list:
    """Garg et al.'s claims for a class, evaluated on tables built from error curves."""
    import pandas as pd

    from iclab.config import apply_overrides
    from iclab.framework import Results, evaluate_rows
    from iclab.recipes.function_classes import claims, quick_config, xgboost_name

    config = apply_overrides(quick_config(), [f"task.kind={kind}", "task.d=5",
                                              "task.n_context=10"])
    tables = {"curves": pd.concat([pd.DataFrame({"learner": name, "k": np.arange(len(c)),
                                                 "mean": c}) for name, c in curves.items()]),
              "transformer_seeds": pd.DataFrame({"seed": 0, "k": np.arange(11),
                                                 "error": curves["transformer"]})}
    if xgboost_name(external_prompts) in curves:
        tables["xgboost_subset"] = pd.DataFrame({
            "seed": [0], "prompts": [external_prompts],
            "transformer_error_last_k": [tf_errors[:external_prompts, -1].mean()]})
    from types import SimpleNamespace

    rows = evaluate_rows(claims(config), Results(config, tables, pd.DataFrame()))
    return [SimpleNamespace(**r) for r in rows]


def test_class_claims_follow_the_task_class():
    """Each class gets Garg et al.'s claim for it, computed from the error curves."""
    k = 11
    ramp = np.linspace(1.0, 0.1, k)
    curves = {"transformer": 0.5 * ramp, "least squares": ramp, "3-NN": np.full(k, 0.6),
              "averaging": np.full(k, 0.55), "Lasso (α=0.1)": 0.45 * ramp,
              "Lasso (α=0.01)": 0.8 * ramp, "greedy tree (depth 4)": np.full(k, 0.25),
              "2-layer NN (Adam)": np.full(k, 0.2)}
    tf_errors = np.tile(curves["transformer"], (8, 1))
    tf_errors[:3, -1] = 0.9  # the first 3 prompts are the transformer's worst

    linear = _class_rows("linear", curves)
    assert [c.id for c in linear] == ["near_least_squares", "beats_knn_and_averaging"]
    assert linear[0].measured == pytest.approx(0.05) and linear[0].passed
    assert linear[1].measured == pytest.approx(0.05 / 0.55) and linear[1].passed

    sparse = _class_rows("sparse_linear", curves)
    assert [c.id for c in sparse] == ["sparse_beats_least_squares", "sparse_matches_lasso"]
    assert sparse[0].measured == pytest.approx(0.5) and sparse[0].passed
    assert sparse[1].measured == pytest.approx(0.5 / 0.45) and sparse[1].passed
    curves_worse = {**curves, "transformer": 0.6 * ramp}
    assert not _class_rows("sparse_linear", curves_worse)[1].passed  # 1.33 > 1.25

    tree_curves = {**curves, "transformer": np.full(k, 0.3), "XGBoost (3 prompts)": np.full(k, 0.5)}
    tree = _class_rows("decision_tree", tree_curves, tf_errors, external_prompts=3)
    assert [c.id for c in tree] == ["tree_beats_greedy_tree", "tree_beats_xgboost"]
    assert tree[0].measured == pytest.approx(0.3 / 0.25) and not tree[0].passed
    assert tree[1].measured == pytest.approx(0.9 / 0.5)  # TF on the same 3 prompts
    assert [c.id for c in _class_rows("decision_tree", tree_curves)] == ["tree_beats_greedy_tree"]

    relu = _class_rows("relu_net", {**curves, "transformer": np.full(k, 0.22)})
    assert [c.id for c in relu] == ["relu_matches_network", "relu_beats_least_squares"]
    assert relu[0].measured == pytest.approx(1.1) and relu[0].passed
    assert relu[1].measured == pytest.approx(2.2) and not relu[1].passed
    no_network = {n: c for n, c in curves.items() if n != "2-layer NN (Adam)"}
    assert [c.id for c in _class_rows("relu_net", no_network)] == ["relu_beats_least_squares"]
    assert _class_rows("quadratic", curves) == []


def test_model_sizes_are_gargs_or_width_layers_heads():
    from iclab.recipes.function_classes import CapacityConfig, full_config, model_size

    assert model_size("tiny") == (64, 3, 2) and model_size("standard") == (256, 12, 8)
    assert model_size("48x2x4") == (48, 2, 4)
    for bad in ("huge", "32x2", "0x1x1", "33x1x2", "32x-1x1", "32x1x1x1"):
        with pytest.raises(ConfigError, match="capacity.sizes"):
            CapacityConfig(sizes=(bad,))
    with pytest.raises(ConfigError, match="distinct"):
        CapacityConfig(sizes=("tiny", "tiny"))
    assert full_config().capacity.sizes == ("tiny", "small")  # the full mode: standard too


def test_capacity_claim_compares_the_largest_and_smallest_models_per_seed():
    import pandas as pd

    from iclab.config import apply_overrides
    from iclab.framework import Results, evaluate_rows
    from iclab.recipes.analysis.function_classes import capacity_table
    from iclab.recipes.function_classes import claims, quick_config

    config = apply_overrides(quick_config(), ["capacity.sizes=16x1x2,128x1x2"])
    rng = np.random.default_rng(0)
    error = {(m, s): rng.uniform(0.1, 1.0, 11) for m in ("main", "16x1x2", "128x1x2")
             for s in (0, 1)}
    params = {"main": 500, "16x1x2": 100, "128x1x2": 900}
    rows = pd.DataFrame([{"model": m, "params": params[m], "seed": s, "k": k, "error": e[k]}
                         for (m, s), e in error.items() for k in range(11)])
    curves = pd.DataFrame({"learner": "least squares", "k": np.arange(11), "mean": 0.0})
    results = Results(config, {"capacity": rows, "curves": curves,
                               "transformer_seeds": rows[rows.model == "main"]}, pd.DataFrame())
    (claim,) = [r for r in evaluate_rows(claims(config), results) if r["id"] == "capacity_helps"]
    expected = np.mean([error["128x1x2", s][10] / error["16x1x2", s][10] for s in (0, 1)])
    assert claim["measured"] == pytest.approx(expected)
    assert claim["passed"] == (expected < 1)
    table = capacity_table(results)
    assert list(table.model) == ["16x1x2", "main", "128x1x2"]  # by parameter count
    assert table["error at k = 5"].iloc[1] == pytest.approx(
        np.mean([error["main", s][5] for s in (0, 1)]))


def test_full_mode_uses_gargs_points_per_class_unless_set():
    """Trees and ReLU networks get 101 points (curriculum 26 → 101 by 5) in the full mode;
    keys set on the command line, the quick mode and the other classes are left alone."""
    from iclab.framework import make_config

    def prepared(*overrides, quick=False):
        return make_config("function-classes", quick, overrides=list(overrides))[1]

    for kind in ("decision_tree", "relu_net"):
        config = prepared(f"task.kind={kind}")
        assert (config.task.n_context, config.curriculum.points_start,
                config.curriculum.points_inc) == (100, 26, 5)
    kept = prepared("task.kind=relu_net", "task.n_context=60")
    assert kept.task.n_context == 60 and kept.curriculum.points_start == 26
    linear = prepared("task.kind=linear")
    assert (linear.task.n_context, linear.curriculum.points_start) == (40, 11)
    assert prepared("task.kind=decision_tree", quick=True).task.n_context == 10
