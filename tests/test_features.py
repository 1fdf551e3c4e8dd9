import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.models import FeatureGD, FeatureLSA, LSATransformerConfig, gd_form
from iclab.solvers import gd_construction, gd_weights
from iclab.tasks import SineRegressionTask, to_tokens


def test_sine_task(key):
    batch = SineRegressionTask().sample_batch(key, 4000)
    amplitude, phase = np.asarray(batch.w).T
    assert batch.x.shape == (4000, 10, 1) and batch.x_query.shape == (4000, 1)
    assert np.abs(batch.x).max() <= 5.0
    assert amplitude.min() >= 0.1 and amplitude.max() <= 0.5
    np.testing.assert_allclose(phase, np.pi * (amplitude - 0.1) / 0.4, atol=1e-6)  # coupled
    np.testing.assert_allclose(batch.y, amplitude[:, None] * np.sin(batch.x[..., 0]
                                                                    + phase[:, None]), atol=1e-6)
    free = SineRegressionTask(coupled=False).sample_batch(key, 4000)
    a, p = np.asarray(free.w).T
    assert abs(np.corrcoef(a, p)[0, 1]) < 0.05


def test_feature_gd_is_one_gd_step_on_the_embedding(key):
    example = jax.tree.map(lambda a: a[0], SineRegressionTask().sample_batch(key, 1))
    model = FeatureGD(1, 8, lr=0.3, key=jax.random.key(1))
    phi = model.embed(example.x)
    w = gd_weights(phi, example.y, 0.3, 1)
    expected = w @ model.embed(example.x_query[None])[0]
    assert float(model(to_tokens(example))) == pytest.approx(float(expected), rel=1e-5)


def test_gd_form_of_a_gd_construction_is_the_same_model(key):
    """A FeatureLSA whose attention is the GD construction equals FeatureGD, and gd_form
    leaves it unchanged; on a random FeatureLSA gd_form keeps only the GD part."""
    m = 6
    model = FeatureLSA(1, m, LSATransformerConfig(), key=key)
    construction = gd_construction(m, 10, lr=0.4)
    model = eqx.tree_at(lambda f: f.lsa, model, construction)
    reference = FeatureGD(1, m, lr=0.4, key=key)
    reference = eqx.tree_at(lambda f: f.embed, reference, model.embed)
    tokens = to_tokens(jax.tree.map(lambda a: a[0],
                                    SineRegressionTask().sample_batch(jax.random.key(3), 1)))
    assert float(model(tokens)) == pytest.approx(float(reference(tokens)), rel=1e-4)
    assert float(gd_form(model)(tokens)) == pytest.approx(float(model(tokens)), rel=1e-4)
    random = FeatureLSA(1, m, LSATransformerConfig(init_scale=1.0), key=jax.random.key(4))
    attn = gd_form(random).lsa.blocks[0].attn
    assert np.all(np.asarray(attn.qk()[0])[-1] == 0) and np.all(np.asarray(attn.qk()[0])[:, -1]
                                                                 == 0)
    assert np.count_nonzero(np.asarray(attn.pv()[0])) == 1


def test_feature_models_learn_sine_regression(key):
    from iclab.engine import OptimConfig, TrainConfig, Trainer, regression_problem

    task = SineRegressionTask()
    batch = task.sample_batch(jax.random.key(9), 512)
    for init in (lambda k: FeatureLSA(1, 16, LSATransformerConfig(init_scale=0.002), key=k),
                 lambda k: FeatureGD(1, 16, key=k)):
        trainer = Trainer(regression_problem(task, init), OptimConfig(lr=3e-3, clip_norm=100.0),
                          TrainConfig(steps=300, batch_size=256, eval_every=300))
        before = trainer.evaluate(trainer.init(), batch)["test_loss"][0]
        after = trainer.evaluate(trainer.fit(batch), batch)["test_loss"][0]
        assert after < 0.5 * before
    assert jnp.isfinite(after)
