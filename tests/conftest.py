import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Exact float32 matmuls on every backend (GPUs default to TF32), as `iclab run` uses.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def key():
    return jax.random.key(1234)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop JAX's compilation caches after each test module: a worker runs ~100 tests, and
    the cached executables otherwise accumulate (about 4 GB per worker)."""
    yield
    jax.clear_caches()
