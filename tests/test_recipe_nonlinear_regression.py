"""nonlinear-regression: the measurements on an exact GD construction, and a smoke run."""

import json

import equinox as eqx
import jax
import numpy as np
import pytest

from iclab.cli import main
from iclab.models import FeatureGD, FeatureLSA, LSATransformerConfig
from iclab.recipes.nonlinear_regression import (
    compare_with_gd,
    controls,
    error_cosine,
    feature_example,
    full_config,
    quick_config,
)
from iclab.solvers import gd_construction, one_step_optimal_lr
from iclab.store import RunDir
from iclab.tasks import SineRegressionTask, to_tokens


def test_measure_on_a_feature_lsa_that_is_gd_on_its_features(key):
    """Attention set to the GD construction with the optimal η (on the fitting tasks) on
    its own features: GD from zero on those features is the same learner (no prediction
    difference), the fitted GD step from w₀ is at least as good on the tasks it is fitted
    on, and MLP + GD with the same embedding and η is the same learner (error cosine 1)."""
    m = 6
    with jax.enable_x64(True):
        model = FeatureLSA(1, m, LSATransformerConfig(), key=key)
        task = SineRegressionTask()
        batch, fit_batch = (task.sample_batch(jax.random.key(s), 256) for s in (3, 4))
        eta = float(one_step_optimal_lr(feature_example(model, fit_batch)))
        model = eqx.tree_at(lambda f: f.lsa, model, gd_construction(m, 10, lr=eta))
        mlp_gd = eqx.tree_at(lambda f: f.embed, FeatureGD(1, m, lr=eta, key=key), model.embed)
        out = compare_with_gd(model, batch, fit_batch)
        out.update(controls(model, mlp_gd, batch, fit_batch, out["preds_tf"]))
        assert float(out["eta0"]) == pytest.approx(eta, rel=1e-9)
        assert float(out["pred_diff_gd0"]) < 1e-6
        assert float(out["loss_gd0_own_features"]) == pytest.approx(float(out["loss_tf"]),
                                                                    rel=1e-6)
        in_sample = compare_with_gd(model, fit_batch, fit_batch)
        assert float(in_sample["loss_gd_own_features"]) <= float(in_sample["loss_tf"]) * (
            1 + 1e-9)
        assert float(out["loss_mlp_gd"]) == pytest.approx(float(out["loss_tf"]), rel=1e-6)
        assert out["error_cos_mlp_gd"] == pytest.approx(1.0, abs=1e-6)  # ε of the cosine
        assert out["pred_diff_mlp_gd"] < 1e-6
        # a GD step from zero is linear in the context labels: no other part
        assert float(out["label_linear_share"]) == pytest.approx(1.0, rel=1e-9)
        assert float(out["label_free_share"]) < 1e-9
        assert float(out["label_quadratic_share"]) < 1e-9
        assert float(out["loss_tf_without_quadratic"]) == pytest.approx(float(out["loss_tf"]),
                                                                        rel=1e-9)
        mean_square = float(np.mean(np.asarray(batch.y_query) ** 2))
        assert float(out["tf_relative_error"]) ** 2 * mean_square == pytest.approx(
            2 * float(out["loss_tf"]), rel=1e-9)


def test_ridge_control_and_error_cosine_against_numpy(key):
    """The ridge control's predictions are (ΦᵀΦ + λI)⁻¹Φᵀy on the TF's features, solved
    in numpy per task; the error cosine is that of the residuals."""
    with jax.enable_x64(True):
        model = FeatureLSA(1, 5, LSATransformerConfig(), key=key)
        task = SineRegressionTask()
        batch, fit_batch = (task.sample_batch(jax.random.key(s), 64) for s in (5, 6))
        preds_tf = jax.vmap(model)(jax.vmap(to_tokens)(batch))
        out = controls(model, FeatureGD(1, 5, key=key), batch, fit_batch, preds_tf)
        feats = feature_example(model, batch)
        x, y, q = (np.asarray(a) for a in (feats.x, feats.y, feats.x_query))
        lam = out["ridge_lambda"]
        ridge = np.array([q[b] @ np.linalg.solve(x[b].T @ x[b] + lam * np.eye(5), x[b].T @ y[b])
                          for b in range(len(y))])
        target = np.asarray(batch.y_query)
        assert 0.5 * np.mean((ridge - target) ** 2) == pytest.approx(
            out["loss_ridge_own_features"], rel=1e-8)
        e_tf, e_r = np.asarray(preds_tf) - target, ridge - target
        cos = e_tf @ e_r / (np.linalg.norm(e_tf) * np.linalg.norm(e_r))
        assert out["error_cos_ridge"] == pytest.approx(cos, rel=1e-6)
        assert float(error_cosine(preds_tf, preds_tf, batch.y_query)) == pytest.approx(1.0)


def test_quick_mode_keeps_the_references_task_model_and_batch():
    """The quick mode only cuts steps and seeds: the batch decides whether the layer learns
    a GD step or the label-energy regime (measured; module docstring)."""
    quick, full = quick_config(), full_config()
    assert quick.train.batch_size == full.train.batch_size == 2048
    assert (quick.task, quick.features, quick.optim, quick.mlp_gd_optim) == \
        (full.task, full.features, full.optim, full.mlp_gd_optim)
    assert quick.train.steps < full.train.steps and quick.train.seeds < full.train.seeds


@pytest.mark.slow  # an end-to-end quick run: make slow
def test_smoke_run(tmp_path):
    code = main(["run", "nonlinear-regression", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "train.steps=20", "--set", "train.eval_every=10",
                 "--set", "train.batch_size=64", "--set", "eval_tasks=128",
                 "--set", "features=8"])
    assert code in (0, 1)
    (run,) = (tmp_path / "nonlinear-regression").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["tf_at_least_mlp_gd", "gd_explains_loss",
                                         "errors_follow_own_gd", "tracks_gd_sensitivities",
                                         "linear_in_labels"]
    tracked = RunDir(run).metrics().query("metric == 'tf/label_quadratic_share'")
    assert sorted(tracked.step) == [0, 10, 20]  # measured at every evaluation
    report = (run / "report.html").read_text()
    assert report.count("<svg") == 2 and "Its parts in the context labels" in report
