"""Haar-random orthogonal matrices without LAPACK.

Q of the QR factorisation of a Gaussian matrix Z, with the columns signed so that
diag(R) > 0, is Haar-distributed on O(n) (Mezzadri 2007). That Q is unique, and
Gram–Schmidt on Z's columns computes it: each column's remainder after projecting out the
previous ones, normalised, has a positive coefficient r_jj = ‖remainder‖. Here each
projection is done twice ("twice is enough", Giraud et al. 2005), which keeps Q orthogonal
to float32 rounding.

Why not ``jnp.linalg.qr``: on CPU, jaxlib 0.10's batched LAPACK kernels
(``lapack_sgeqrf_ffi``) split the batch over XLA's intra-op thread pool and block until
the pieces finish. When two programs run side by side (``iclab.engine.fit_concurrently``)
and both reach such a kernel on the pool's threads, every thread waits for work queued
behind it: the ``mesa`` recipe's training hung this way, every thread asleep, both
intra-op threads in ``QrFactorization`` (``docs/performance.md``).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def haar_orthogonal(key: PRNGKeyArray, dim: int) -> Float[Array, "d d"]:
    """A Haar-random orthogonal matrix: Q of the QR of ``jax.random.normal(key, (dim, dim))``
    with diag(R) > 0, by Gram–Schmidt with reorthogonalisation (no LAPACK call).

    The same matrix as ``jax.random.orthogonal(key, dim)`` to float rounding.

    Args:
        key: PRNG key of the Gaussian matrix.
        dim: n, the matrix is (n, n).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> q = haar_orthogonal(jax.random.key(0), 4)
        >>> bool(jnp.allclose(q.T @ q, jnp.eye(4), atol=1e-5))
        True

    References:
        Mezzadri, "How to generate random matrices from the classical compact groups",
        Notices of the AMS 54(5), 2007 (arXiv math-ph/0609050).
    """
    z = jax.random.normal(key, (dim, dim))
    dot = lambda a, b: jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)

    def column(j, q):
        v = z[:, j]
        for _ in range(2):  # the columns of q from j on are still zero
            v = v - dot(q, dot(q.T, v))
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, dim, column, jnp.zeros((dim, dim), z.dtype))
