"""nonlinear-regression: the measurements on an exact GD construction, and a smoke run."""

import json

import equinox as eqx
import jax
import numpy as np
import pytest

from iclab.cli import main
from iclab.engine import regression_loss
from iclab.models import FeatureGD, FeatureLSA, LSATransformerConfig
from iclab.recipes.nonlinear_regression import (
    compare_with_gd,
    feature_example,
    full_config,
    quick_config,
)
from iclab.solvers import gd_construction, one_step_optimal_lr
from iclab.store import RunDir
from iclab.tasks import SineRegressionTask


def test_measure_on_a_feature_lsa_that_is_gd_on_its_features(key):
    """Attention set to the GD construction with the optimal η on its own features: GD
    from zero on those features is the same learner (no prediction difference), the
    fitted GD step from w₀ is at least as good, and MLP + GD with the same embedding and η
    has the same loss."""
    m = 6
    with jax.enable_x64(True):
        model = FeatureLSA(1, m, LSATransformerConfig(), key=key)
        batch = SineRegressionTask().sample_batch(jax.random.key(3), 256)
        eta = float(one_step_optimal_lr(feature_example(model, batch)))
        model = eqx.tree_at(lambda f: f.lsa, model, gd_construction(m, 10, lr=eta))
        mlp_gd = eqx.tree_at(lambda f: f.embed, FeatureGD(1, m, lr=eta, key=key), model.embed)
        out = {**compare_with_gd(model, batch), "loss_mlp_gd": regression_loss(mlp_gd, batch)}
        assert float(out["eta0"]) == pytest.approx(eta, rel=1e-9)
        assert float(out["pred_diff_gd0"]) < 1e-6
        assert float(out["loss_gd0_own_features"]) == pytest.approx(float(out["loss_tf"]),
                                                                    rel=1e-6)
        assert float(out["loss_gd_own_features"]) <= float(out["loss_tf"]) * (1 + 1e-9)
        assert float(out["loss_mlp_gd"]) == pytest.approx(float(out["loss_tf"]), rel=1e-6)
        # a GD step from zero is linear in the context labels: no other part
        assert float(out["label_linear_share"]) == pytest.approx(1.0, rel=1e-9)
        assert float(out["label_free_share"]) < 1e-9
        assert float(out["label_quadratic_share"]) < 1e-9
        assert float(out["loss_tf_without_quadratic"]) == pytest.approx(float(out["loss_tf"]),
                                                                        rel=1e-9)
        mean_square = float(np.mean(np.asarray(batch.y_query) ** 2))
        assert float(out["tf_relative_error"]) ** 2 * mean_square == pytest.approx(
            2 * float(out["loss_tf"]), rel=1e-9)


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
                                         "tracks_gd_predictions", "tracks_gd_sensitivities"]
    tracked = RunDir(run).metrics().query("metric == 'tf/label_quadratic_share'")
    assert sorted(tracked.step) == [0, 10, 20]  # measured at every evaluation
    report = (run / "report.html").read_text()
    assert report.count("<svg") == 2 and "Its parts in the context labels" in report
