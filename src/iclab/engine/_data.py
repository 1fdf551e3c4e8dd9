"""Training on a finite dataset: minibatches drawn inside ``jit`` from a fixed training set.

Fresh-sample training (a task's sampler at every step) is the default; for the
grokking and slingshot studies the data are a fixed set of examples, visited in epochs.
``finite_sampler`` gives a ``Problem.sample_scheduled`` (a function of the traced step) so
the draw runs inside the compiled step and a resumed run sees the same batches.
"""

from typing import Any

import jax

MODES = ("epochs", "full", "replacement")


def finite_sampler(data: Any, batch_size: int, mode: str = "epochs", seed: int = 0):
    """``(key, batch_size, step) -> batch`` over a fixed dataset (a pytree of arrays with
    a leading example axis of size N).

    - ``"epochs"``: each epoch is a permutation of the N examples (seeded by ``seed`` and
      the epoch number, whatever the run's data key), cut into ⌊N / B⌋ batches of B; the
      last N mod B examples of an epoch are left out of it;
    - ``"full"``: every step sees all N examples (full-batch training; B must be N);
    - ``"replacement"``: B examples drawn uniformly with replacement from the step's key.

    Examples:
        >>> import jax.numpy as jnp
        >>> sample = finite_sampler(jnp.arange(6), 3)
        >>> sorted(sample(None, 3, 0).tolist() + sample(None, 3, 1).tolist())
        [0, 1, 2, 3, 4, 5]
    """
    from iclab._errors import ConfigError, check_choice

    check_choice("data mode", mode, MODES)
    n = jax.tree.leaves(data)[0].shape[0]
    if mode == "full" and batch_size != n:
        raise ConfigError("train.batch_size", batch_size,
                          f"the training set's size {n} for full-batch training")
    if mode == "epochs" and not 1 <= batch_size <= n:
        raise ConfigError("train.batch_size", batch_size, f"an integer in [1, {n}] "
                          "(the training set's size)")
    per_epoch = max(n // batch_size, 1)
    take = lambda idx: jax.tree.map(lambda a: a[idx], data)

    def sample(key, size, step):
        if mode == "full":
            return data
        if mode == "replacement":
            return take(jax.random.randint(key, (size,), 0, n))
        epoch, position = step // per_epoch, step % per_epoch
        order = jax.random.permutation(jax.random.fold_in(jax.random.key(seed), epoch), n)
        return take(jax.lax.dynamic_slice(order, (position * size,), (size,)))

    return sample
