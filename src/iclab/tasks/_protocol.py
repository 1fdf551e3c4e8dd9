"""The task protocol: a pure sampler of one example from a PRNG key.

A task is a frozen, validated dataclass. It implements ``sample(key, **options)``, a pure
function (traceable inside ``jit``: the engine samples every training batch inside the
compiled step) that returns one example, a pytree of arrays. ``sample_batch(key, n,
**options)`` is ``vmap`` of ``sample`` over ``jax.random.split(key, n)``; every option is a
keyword argument, the same one for ``sample`` and ``sample_batch``, declared in
``OPTIONS`` (name → the allowed values, or ``None`` for any value, such as a traced
curriculum stage), and an option not declared there is refused with its name.

A task derives from ``VmappedTask`` (it implements ``sample``; batches are its ``vmap``)
or, declared, from ``BatchDrawnTask``: its reference code draws whole batches at once (von
Oswald et al.'s in-context regression), so it implements ``sample_batch`` to keep that
random stream, and its ``sample`` is the batch of one.

A task may declare ``ARRAY_FIELDS``: numeric fields its sampler reads only as arrays (no
Python branch on their value), so a traced value works. Tasks that differ only in those
fields can train as one vmapped program (``iclab.engine.Packable``); ``with_arrays``
sets them.
"""

import abc
import copy
from typing import Any, ClassVar

import jax
from jaxtyping import PRNGKeyArray

from iclab._errors import ConfigError


class Task(abc.ABC):
    """Base of every task (see the module docstring); use ``VmappedTask`` or
    ``BatchDrawnTask``."""

    OPTIONS: ClassVar[dict[str, tuple | None]] = {}
    ARRAY_FIELDS: ClassVar[tuple[str, ...]] = ()

    def array_fields(self) -> dict[str, float]:
        """The values of the ``ARRAY_FIELDS``."""
        return {name: getattr(self, name) for name in self.ARRAY_FIELDS}

    def with_arrays(self, **values) -> "Task":
        """A copy with some ``ARRAY_FIELDS`` set to ``values`` (arrays or tracers), without
        the dataclass's validation: the values are those of tasks that were validated, or
        tracers of them inside a packed program."""
        unknown = sorted(set(values) - set(self.ARRAY_FIELDS))
        if unknown:
            raise ConfigError(f"{type(self).__name__} array field", unknown[0],
                              "one of " + (", ".join(self.ARRAY_FIELDS) or "none"))
        task = copy.copy(self)
        for name, value in values.items():
            object.__setattr__(task, name, value)
        return task

    def check_options(self, options: dict[str, Any]) -> None:
        """Refuse an undeclared option or a value outside the declared ones."""
        for name, value in options.items():
            if name not in self.OPTIONS:
                allowed = ", ".join(self.OPTIONS) or "none"
                raise ConfigError(f"{type(self).__name__} option", name,
                                  f"the declared options: {allowed}")
            choices = self.OPTIONS[name]
            if choices is not None and value not in choices:
                raise ConfigError(name, value, "one of " + ", ".join(map(str, choices)))

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, **options):
        """One example: a pytree of arrays."""

    @abc.abstractmethod
    def sample_batch(self, key: PRNGKeyArray, batch_size: int, **options):
        """``batch_size`` examples stacked on a leading axis."""


class VmappedTask(Task):
    """A task that implements ``sample``; its batches are ``vmap`` of it."""

    def sample_batch(self, key: PRNGKeyArray, batch_size: int, **options):
        self.check_options(options)
        return jax.vmap(lambda k: self.sample(k, **options))(jax.random.split(key, batch_size))


class BatchDrawnTask(Task):
    """A task that draws whole batches (to keep its reference's random stream) and
    implements ``sample_batch``; ``sample`` is the batch of one."""

    def sample(self, key: PRNGKeyArray, **options):
        return jax.tree.map(lambda a: a[0], self.sample_batch(key, 1, **options))
