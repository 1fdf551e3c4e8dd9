"""Checks made before a run folder is created: the store root, the environment, and
whether the recipe's jobs can fit in memory at all. Each failure is a ``ConfigError``
(one line, exit 2 on the command line) and nothing is left behind."""

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from iclab._errors import ConfigError


def check_store_root(out: str | os.PathLike) -> None:
    """``out`` is (or can be made) a folder this process can write run folders into.

    The probe writes one temporary file and removes it; a root it had to create for the
    probe is removed again, so a refused run leaves nothing.

    Raises:
        ConfigError: ``out`` is a file, under a file, read-only, or not writable.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError("--out", str(out), "a folder (this path is a file)")
    created = []
    try:
        missing = []
        parent = root
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError("--out", str(out), f"a folder ({parent} is a file)")
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        fd, probe = tempfile.mkstemp(dir=root, prefix=".iclab-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError("--out", str(out), f"a writable folder ({reason})") from None
    finally:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass


def check_environment() -> None:
    """The environment variables iclab reads have values it can use
    (``ICLAB_WORKERS``: a positive integer)."""
    from iclab.engine import default_workers

    default_workers()


def check_memory(jobs: Sequence, overrides: Sequence[str] = (), workers: int = 1) -> None:
    """Refuse jobs whose lower-bound footprint (``iclab.engine.footprint``) exceeds the
    memory the device has available; with ``workers`` > 1 the largest ``workers`` jobs
    may run at once, so their footprints add up.

    Raises:
        ConfigError: naming the job, the bytes it needs at the least, the bytes available
            and the overrides given (the usual cause).
    """
    from iclab.engine import available_memory, footprint
    from iclab.engine._memory import size

    available = available_memory()
    if available is None or not jobs:
        return
    prints = []
    for job in jobs:
        try:
            prints.append((footprint(job.problem, job.optim, job.train), job))
        except Exception:  # noqa: BLE001 - a model that cannot be traced abstractly: unknown
            continue
    prints.sort(key=lambda p: -p[0].total)
    together = prints[:max(1, min(workers, len(prints)))]
    need = sum(fp.total for fp, _ in together)
    if need <= available:
        return
    fp, job = prints[0]
    name = f"job '{job.tag}'" if job.tag else "the model"
    given = f"; set here: {' '.join(overrides)}" if overrides else ""
    concurrent = f" ({len(together)} jobs at once)" if len(together) > 1 else ""
    raise ConfigError("memory", need, f"<= {available} bytes", message=(
        f"too large for this machine: {name} needs at least {size(need)} "
        f"[{fp.describe()}]{concurrent}, the device has {size(available)} available"
        f"{given}"))


def memory_error(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure (XLA's RESOURCE_EXHAUSTED or MemoryError)."""
    return isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in str(err) or \
        "Out of memory" in str(err)
