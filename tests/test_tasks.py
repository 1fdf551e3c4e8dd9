import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.tasks import LinearRegressionTask, to_tokens


def test_shapes_and_labels(key):
    task = LinearRegressionTask(d=7, n_context=5)
    batch = task.sample_batch(key, 64)
    assert batch.x.shape == (64, 5, 7) and batch.y.shape == (64, 5)
    assert batch.x_query.shape == (64, 7) and batch.y_query.shape == (64,)
    np.testing.assert_allclose(batch.y, np.einsum("bnd,bd->bn", batch.x, batch.w), atol=1e-6)
    np.testing.assert_allclose(batch.y_query, np.einsum("bd,bd->b", batch.x_query, batch.w),
                               atol=1e-6)


def test_single_sample_matches_batch_of_one(key):
    task = LinearRegressionTask(d=3, n_context=4)
    one = task.sample(key)
    assert one.x.shape == (4, 3)
    np.testing.assert_array_equal(one.x, task.sample_batch(key, 1).x[0])


def test_uniform_statistics(key):
    task = LinearRegressionTask(d=4, n_context=9, input_range=1.0)
    batch = task.sample_batch(key, 20_000)
    x = np.asarray(batch.x)
    assert x.min() >= -0.5 and x.max() <= 0.5
    assert abs(x.mean()) < 5e-3
    assert x.var() == pytest.approx(1 / 12, rel=0.01)
    assert np.asarray(batch.w).var() == pytest.approx(1.0, rel=0.03)
    assert abs(np.asarray(batch.w).mean()) < 0.02


def test_gaussian_inputs(key):
    task = LinearRegressionTask(d=4, input_dist="gaussian", input_std=0.5)
    x = np.asarray(task.sample_batch(key, 20_000).x)
    assert x.var() == pytest.approx(0.25, rel=0.01)
    assert task.input_variance == 0.25
    kurtosis = (x**4).mean() / x.var() ** 2
    assert kurtosis == pytest.approx(3.0, rel=0.03)  # Gaussian, not uniform (1.8)


def test_label_noise_variance(key):
    task = LinearRegressionTask(d=3, n_context=10, noise_std=0.5)
    batch = task.sample_batch(key, 20_000)
    residual = np.asarray(batch.y - jnp.einsum("bnd,bd->bn", batch.x, batch.w))
    assert residual.var() == pytest.approx(0.25, rel=0.02)


def test_uniform_noise_levels_per_task(key):
    """σ ~ U(0, σ_max) per task: E σ = σ_max/2, E σ² = σ_max²/3; residual variance E σ²."""
    task = LinearRegressionTask(d=3, n_context=40, noise_dist="uniform", noise_std=3.0,
                                query_noise=False)
    batch = task.sample_batch(key, 20_000)
    sigma = np.asarray(batch.noise_std)
    assert sigma.min() >= 0 and sigma.max() <= 3.0
    assert sigma.mean() == pytest.approx(1.5, rel=0.02)
    residual = np.asarray(batch.y - jnp.einsum("bnd,bd->bn", batch.x, batch.w))
    assert residual.var() == pytest.approx(task.mean_noise_variance, rel=0.03)
    assert task.mean_noise_variance == 3.0
    per_task = residual.var(axis=1, ddof=0)
    assert np.corrcoef(per_task, sigma**2)[0, 1] > 0.8  # noise follows the task's own σ
    np.testing.assert_allclose(batch.y_query, np.einsum("bd,bd->b", batch.x_query, batch.w),
                               atol=1e-5)  # the query is noise-free


def test_categorical_noise_levels(key):
    task = LinearRegressionTask(noise_dist="categorical", noise_levels=(1.0, 3.0))
    sigma = np.asarray(task.sample_batch(key, 4000).noise_std)
    assert set(np.unique(sigma)) == {1.0, 3.0}
    assert abs((sigma == 1.0).mean() - 0.5) < 0.03
    assert task.mean_noise_variance == 5.0
    with pytest.raises(ConfigError, match="noise_levels"):
        LinearRegressionTask(noise_dist="categorical")


def test_tokens_layout(key):
    example = LinearRegressionTask(d=3, n_context=4).sample(key)
    tokens = to_tokens(example)
    assert tokens.shape == (5, 4)
    np.testing.assert_array_equal(tokens[:4, :3], example.x)
    np.testing.assert_array_equal(tokens[:4, 3], example.y)
    np.testing.assert_array_equal(tokens[4, :3], example.x_query)
    assert tokens[4, 3] == 0.0


def test_sampling_is_deterministic_and_jittable(key):
    task = LinearRegressionTask()
    a = jax.jit(task.sample_batch, static_argnums=1)(key, 8)
    b = task.sample_batch(key, 8)
    np.testing.assert_array_equal(a.x, b.x)
    c = task.sample_batch(jax.random.key(99), 8)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("kwargs, bad_key", [
    ({"d": 0}, "task.d"), ({"n_context": -1}, "task.n_context"),
    ({"input_dist": "cauchy"}, "task.input_dist"), ({"noise_std": -0.1}, "task.noise_std"),
    ({"d": 2.5}, "task.d"),
])
def test_invalid_task_values_name_the_key(kwargs, bad_key):
    with pytest.raises(ConfigError) as err:
        LinearRegressionTask(**kwargs)
    assert err.value.key == bad_key


def test_every_task_follows_the_protocol(key):
    """Every task is a VmappedTask (batches are vmap of sample) or a declared
    BatchDrawnTask (sample is the batch of one); an undeclared option is refused."""
    import inspect

    import iclab.tasks as tasks

    classes = [c for _, c in inspect.getmembers(tasks, inspect.isclass)
               if issubclass(c, tasks.Task) and not inspect.isabstract(c)
               and c not in (tasks.VmappedTask, tasks.BatchDrawnTask)]
    assert len(classes) >= 8
    for cls in classes:
        task = cls()
        # compiled (eager sampling dispatches thousands of small ops): the two programs
        # may round differently, so floats agree to float32 precision, integers exactly
        batch = jax.jit(task.sample_batch, static_argnums=1)(key, 3)
        one = jax.jit(task.sample)(jax.random.split(key, 3)[1]) \
            if issubclass(cls, tasks.VmappedTask) else jax.jit(task.sample)(key)
        reference = jax.tree.map(lambda a: a[1], batch) if issubclass(cls, tasks.VmappedTask) \
            else jax.tree.map(lambda a: a[0], jax.jit(task.sample_batch,
                                                      static_argnums=1)(key, 1))
        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(reference), strict=True):
            a, b = np.asarray(a), np.asarray(b)
            assert a.dtype == b.dtype and a.shape == b.shape
            if np.issubdtype(a.dtype, np.floating):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
            else:
                np.testing.assert_array_equal(a, b)
        with pytest.raises(ConfigError, match="option"):
            task.sample_batch(key, 2, no_such_option=1) if issubclass(cls, tasks.VmappedTask) \
                else task.check_options({"no_such_option": 1})


def test_haar_orthogonal_is_the_sign_fixed_qr_without_lapack():
    """Gram–Schmidt's Q equals numpy's float64 QR of the same Gaussian matrix with
    diag(R) > 0, and the vmapped sampler lowers to no LAPACK custom call (batched LAPACK
    kernels deadlocked two programs side by side on CPU)."""
    from iclab.tasks import haar_orthogonal

    for seed, n in ((0, 3), (1, 10), (2, 40)):
        key = jax.random.key(seed)
        z = np.asarray(jax.random.normal(key, (n, n)), np.float64)
        q, r = np.linalg.qr(z)
        expected = q * np.sign(np.diag(r))[None, :]
        got = np.asarray(haar_orthogonal(key, n), np.float64)
        np.testing.assert_allclose(got, expected, atol=2e-5)
        np.testing.assert_allclose(got.T @ got, np.eye(n), atol=1e-5)
    keys = jax.random.split(jax.random.key(3), 4)
    lowered = jax.jit(jax.vmap(lambda k: haar_orthogonal(k, 6))).lower(keys).as_text()
    assert "custom_call" not in lowered


@pytest.mark.parametrize("dynamics", ["linear", "contracting", "nonlinear"])
def test_mesa_samplers_have_no_lapack_call(dynamics):
    """The batches mesa trains on (every kind of W*, and the few-shot pairs) lower to
    programs without a LAPACK custom call, the kernel that hung two of them side by side."""
    from iclab.tasks import DynamicsTask, FewShotRegressionTask

    for task in (DynamicsTask(dynamics=dynamics), FewShotRegressionTask()):
        text = jax.jit(lambda k, t=task: t.sample_batch(k, 4)).lower(jax.random.key(0)).as_text()
        assert "custom_call" not in text, type(task).__name__
