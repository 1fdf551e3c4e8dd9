"""Typed, frozen configs: JSON round-trip and ``--set key=value`` overrides.

A recipe's config is a frozen dataclass whose fields are scalars or other
frozen dataclasses (``task``, ``model``, ``optim``, ``train``, ...). Each
dataclass validates itself in ``__post_init__`` and raises ``ConfigError``;
``validate`` adds what holds for every key: the value has the field's type, no float
is NaN or ±inf (no key gives inf a meaning), and no integer leaves JAX's int32 range
(step counters, sizes and seeds are int32 on the device).
"""

import dataclasses
import math
import types
import typing
from typing import Any

from iclab._errors import ConfigError as ConfigError
from iclab._errors import check_choice as check_choice
from iclab._errors import check_nonnegative as check_nonnegative
from iclab._errors import check_positive as check_positive
from iclab._errors import check_positive_int as check_positive_int

INT_MAX = 2**31 - 1
"""The largest integer any config key takes (int32: the step counter, sizes, seeds)."""


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Rebuild a nested frozen dataclass from ``to_dict``'s output, validated.

    Raises:
        ConfigError: a section that is not a mapping, or a value ``validate`` or the
            config's own checks refuse (a damaged or hand-edited ``config.json``).
    """
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip(".") or "config", data, "a JSON object of config keys")
    hints = _field_types(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value, hint = data[field.name], hints[field.name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{prefix}{field.name}.")
        else:
            if (hint is tuple or typing.get_origin(hint) is tuple) and isinstance(value, list):
                value = tuple(value)
            _check_leaf(prefix + field.name, value, hint)
        kwargs[field.name] = value
    return cls(**kwargs)


def _parse_scalar(key: str, text: str, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        hint = args[0]
    if hint is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(key, text, "true or false")
    if hint is int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(key, text, "an integer") from None
        _check_leaf(key, value, int)
        return value
    if hint is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(key, text, "a number") from None
        _check_leaf(key, value, float)
        return value
    if hint is str:
        return text
    if hint is tuple or typing.get_origin(hint) is tuple:
        (item,) = typing.get_args(hint)[:1] or (str,)
        return tuple(_parse_scalar(key, t.strip(), item) for t in text.split(",") if t.strip())
    raise ConfigError(key, text, f"a value of type {hint}")


def _check_leaf(key: str, value: Any, hint: Any) -> None:
    """The checks every key gets, whatever its config class says."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "an integer")
        if not -INT_MAX <= value <= INT_MAX:
            raise ConfigError(key, value, f"an integer of magnitude <= {INT_MAX} (int32)")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, value, "a number")
        if not math.isfinite(value):
            raise ConfigError(key, value, "a finite number (NaN and ±inf are refused)")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, value, "a string")
    elif hint is tuple or origin is tuple:
        if not isinstance(value, tuple):
            raise ConfigError(key, value, "a comma-separated list")
        item = (typing.get_args(hint) or (Any,))[0]
        for v in value:
            if item is not Any:
                _check_leaf(key, v, item)


def validate(config: Any, prefix: str = "") -> Any:
    """Check every leaf of a (nested) config: its type, finiteness and int32 range.

    Raises:
        ConfigError: naming the dotted key, the value and what is allowed.

    Returns:
        ``config`` unchanged.
    """
    hints = _field_types(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        if dataclasses.is_dataclass(hint):
            if not dataclasses.is_dataclass(value):
                raise ConfigError(prefix + field.name, value, f"a {hint.__name__} section")
            validate(value, f"{prefix}{field.name}.")
        else:
            _check_leaf(prefix + field.name, value, hint)
    return config


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """All dotted keys that ``--set`` accepts for a config class (its dataclass fields;
    class variables such as a task's ``OPTIONS`` are not keys)."""
    keys = []
    hints = _field_types(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            keys += leaf_keys(hint, f"{prefix}{field.name}.")
        else:
            keys.append(prefix + field.name)
    return keys


def apply_overrides(config: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """Return ``config`` with each ``key=value`` applied (dotted keys into nested configs).

    Raises:
        ConfigError: malformed item, unknown key (lists the valid ones), wrong type,
            or a value the config's own validation rejects.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError("--set", item, "key=value, e.g. task.d=5")
        key, text = item.split("=", 1)
        key = key.strip()
        valid = leaf_keys(type(config))
        if key not in valid:
            raise ConfigError(key, text, ", ".join(valid), unknown_key=True)
        config = _set(config, key.split("."), text.strip(), key)
    return config


def _set(config: Any, path: list[str], text: str, full_key: str) -> Any:
    name = path[0]
    if len(path) > 1:
        value = _set(getattr(config, name), path[1:], text, full_key)
    else:
        value = _parse_scalar(full_key, text, _field_types(type(config))[name])
        try:
            return dataclasses.replace(config, **{name: value})
        except ConfigError as err:
            # a nested config validates under its usual name ("optim.lr"); report the key
            # as typed when the same config type sits elsewhere ("mlp_gd_optim.lr")
            field = err.key.rsplit(".", 1)[-1]
            if field == name and not err.unknown_key:
                raise ConfigError(full_key, err.value, err.allowed) from None
            if field in _field_types(type(config)) and not err.unknown_key:
                # another field of the same config refuses the new value (a cross-field
                # check): name it where it sits, and the --set that broke it
                other = ".".join([*full_key.split(".")[:-1], field])
                plain = ConfigError(other, err.value, err.allowed)
                raise ConfigError(other, err.value, err.allowed,
                                  message=f"{plain} (after --set {full_key}={text})") from None
            raise
    return dataclasses.replace(config, **{name: value})


def field_docs(cls: type) -> dict[str, str]:
    """One-line docs of a config dataclass's fields, from its docstring's ``Args:`` (or
    ``Attributes:``) section; an entry ``a, b: text`` documents both fields."""
    import inspect
    import re

    lines = (inspect.getdoc(cls) or "").splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip() in ("Args:", "Attributes:")]
    docs: dict[str, str] = {}
    if not heads:
        return docs
    body = [line for line in lines[heads[0] + 1:]]
    indents = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    if not indents:
        return docs
    indent, names = indents[0], []
    for line in body:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        entry = re.match(r"^(\w+(?:, *\w+)*)(?: \([^)]*\))?: (.*)", line.strip())
        if depth == indent and entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            for name in names:
                docs[name] = entry.group(2).strip()
        elif depth > indent and names:
            for name in names:
                docs[name] += " " + line.strip()
        else:
            break
    return docs


def _type_name(hint: Any) -> str:
    if hint in (int, float, bool, str):
        return hint.__name__
    return str(hint).replace("typing.", "")


def describe(config: Any, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """Every ``--set`` key of a config: (dotted key, type, value, one-line doc).

    Examples:
        >>> from iclab.engine import TrainConfig
        >>> describe(TrainConfig())[0]
        ('steps', 'int', 5000, 'optimizer steps.')
    """
    rows = []
    hints, docs = _field_types(type(config)), field_docs(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        if dataclasses.is_dataclass(hint):
            rows += describe(value, f"{prefix}{field.name}.")
        else:
            rows.append((prefix + field.name, _type_name(hint), value,
                         docs.get(field.name, "")))
    return rows
