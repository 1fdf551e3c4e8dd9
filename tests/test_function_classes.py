import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
    jac = jax.jacobian(model)(tokens)  # (T_out, T_in, D)
    influence = np.abs(np.asarray(jac)).sum(-1)
    assert np.all(np.triu(influence, k=1) == 0)  # no output sees a later token
    assert np.all(np.diag(influence) > 0)
    patterns = model.attention_patterns(tokens)
    assert patterns.shape == (2, 2, 7, 7)
    np.testing.assert_allclose(patterns.sum(-1), 1.0, rtol=1e-5)
    assert jnp.all(jnp.triu(patterns, k=1) == 0)


def test_function_classes_smoke_run(tmp_path):
    import json

    from iclab.cli import main

    code = main(["run", "function-classes", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "train.steps=40", "--set", "train.eval_every=20",
                 "--set", "eval.prompts=128", "--set", "eval.bootstrap=50",
                 "--set", "model.width=16", "--set", "model.layers=1"])
    assert code in (0, 1)
    (run,) = (tmp_path / "function-classes").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["near_least_squares", "beats_knn_and_averaging"]
    from iclab.store import load_metrics

    df = load_metrics(run)
    ls = df[df.metric == "error/least squares"].sort_values("step").value.to_numpy()
    assert ls.shape == (11,) and 0.5 < ls[0] < 2.0  # k = 0: the zero prediction, error ≈ 1
    assert np.all(ls[6:] < 1e-3)  # k > d: least squares is exact on noise-free tasks


def test_lasso_prefix_equals_lasso_on_the_seen_pairs(key):
    from iclab.recipes.function_classes import _lasso_prefix
    from iclab.solvers import lasso_weights

    example = LinearRegressionTask(d=4, n_context=9, input_dist="gaussian").sample(key)
    x, y = all_points(example)
    preds = _lasso_prefix(x, y, 0.05)
    assert float(preds[0]) == 0.0
    for i in (3, 7):
        w = lasso_weights(x[:i], y[:i], 0.05, 500)
        assert float(preds[i]) == pytest.approx(float(w @ x[i]), rel=1e-3, abs=1e-4)
