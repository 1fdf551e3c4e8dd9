import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# A persistent compilation cache for this test process and the `iclab run` subprocesses it
# starts (they compile the same programs again: the kill-and-resume test runs one recipe
# three times). One fresh folder per process, so concurrent workers never share a file.
os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="iclab-jax-cache-")
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Exact float32 matmuls on every backend (GPUs default to TF32), as `iclab run` uses.
jax.config.update("jax_default_matmul_precision", "highest")


def pytest_unconfigure(config):
    """Remove this process's compilation cache (also in xdist workers, which end without
    running atexit handlers)."""
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def key():
    return jax.random.key(1234)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop JAX's compilation caches after each test module: a worker runs ~100 tests, and
    the cached executables otherwise accumulate (about 4 GB per worker)."""
    yield
    jax.clear_caches()
