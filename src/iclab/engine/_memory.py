"""What a training program needs in memory at the least, and what the machine has.

The estimate is a lower bound, read from shapes alone (``jax.eval_shape``: nothing is
allocated): for every seed, the parameters, their gradient and update (two more copies),
the optimiser state, and one training batch. Activations come on top, so a run refused by
this bound could never have run; one it admits can still run out of memory in the
backward pass (it then fails with the error recorded in its run folder).
"""

import os
from dataclasses import dataclass

import jax
import numpy as np


def tree_bytes(tree) -> int:
    """Bytes of every array (or ``ShapeDtypeStruct``) leaf of a pytree."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shape, dtype = getattr(leaf, "shape", None), getattr(leaf, "dtype", None)
        if shape is None or dtype is None:
            continue
        try:
            itemsize = np.dtype(dtype).itemsize
        except TypeError:  # PRNG key arrays: two uint32 words per key
            itemsize = 8
        total += int(np.prod(shape, dtype=np.float64)) * itemsize
    return total


def size(n: float) -> str:
    """Bytes as text in the largest unit that keeps the number ≥ 1: "3.2 kB", "44 GB"."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Footprint:
    """Bytes of one training program, per seed and in all (``seeds`` seeds).

    Attributes:
        params: the model's parameters (one seed).
        opt_state: the optimiser state (one seed).
        batch: one training batch (one seed).
        seeds: seeds trained together.
    """

    params: int
    opt_state: int
    batch: int
    seeds: int

    @property
    def total(self) -> int:
        """seeds × (3 × parameters [+ gradient, update] + optimiser state + batch)."""
        return self.seeds * (3 * self.params + self.opt_state + self.batch)

    def describe(self) -> str:
        return (f"{self.seeds} seed(s) × (3 × parameters {size(self.params)} + optimiser "
                f"state {size(self.opt_state)} + batch {size(self.batch)})")


def footprint(problem, optim, train) -> Footprint:
    """The lower-bound footprint of training ``problem`` with ``optim`` and ``train``.

    Args:
        problem: an ``iclab.engine.Problem``.
        optim: its ``OptimConfig``.
        train: its ``TrainConfig``.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from iclab.engine import OptimConfig, Problem, TrainConfig, footprint
        >>> problem = Problem(init_model=lambda k: eqx.nn.Linear(10, 1, key=k),
        ...                   sample_batch=lambda k, b: jax.random.normal(k, (b, 10)),
        ...                   loss=lambda m, x: jnp.mean(jax.vmap(m)(x) ** 2),
        ...                   evaluate=lambda m, data: {})
        >>> fp = footprint(problem, OptimConfig(), TrainConfig(batch_size=100, seeds=2))
        >>> fp.params, fp.batch  # 11 float32 weights; 100 × 10 float32 inputs
        (44, 4000)
    """
    import equinox as eqx

    from iclab.engine._optim import make_optimizer
    from iclab.engine._train import roles_of

    key = jax.random.key(0)
    model = eqx.filter_eval_shape(problem.init_model, key)  # models may hold functions
    params = eqx.filter(model, lambda x: isinstance(x, jax.ShapeDtypeStruct))
    opt_state = jax.eval_shape(make_optimizer(optim, train.steps, roles_of(model),
                                              scaling=problem.scaling).init,
                               params)
    sample = problem.sample_batch
    batch = eqx.filter_eval_shape(lambda k: sample(k, train.batch_size), key)
    return Footprint(params=tree_bytes(params), opt_state=tree_bytes(opt_state),
                     batch=tree_bytes(batch), seeds=train.members)


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes the default JAX device can still allocate: on an accelerator, its memory
    limit less what is in use; on the CPU, the smaller of ``MemAvailable`` and the
    cgroup's limit less its usage. None when nothing tells."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    limit, usage = _read_int("/sys/fs/cgroup/memory.max"), _read_int(
        "/sys/fs/cgroup/memory.current")
    if limit is not None and usage is not None:
        found.append(limit - usage)
    if not found and hasattr(os, "sysconf"):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(found) if found else None
