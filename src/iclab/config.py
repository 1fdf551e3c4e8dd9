"""Typed, frozen configs: JSON round-trip and ``--set key=value`` overrides.

A recipe's config is a frozen dataclass whose fields are scalars or other
frozen dataclasses (``task``, ``model``, ``optim``, ``train``, ...). Each
dataclass validates itself in ``__post_init__`` and raises ``ConfigError``.
"""

import dataclasses
import types
import typing
from typing import Any

from iclab._errors import ConfigError as ConfigError
from iclab._errors import check_choice as check_choice
from iclab._errors import check_nonnegative as check_nonnegative
from iclab._errors import check_positive as check_positive
from iclab._errors import check_positive_int as check_positive_int


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a nested frozen dataclass from ``to_dict``'s output."""
    hints = _field_types(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value, hint = data[field.name], hints[field.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif hint is tuple or typing.get_origin(hint) is tuple:
            value = tuple(value)
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
            return int(text)
        except ValueError:
            raise ConfigError(key, text, "an integer") from None
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(key, text, "a number") from None
    if hint is str:
        return text
    if hint is tuple or typing.get_origin(hint) is tuple:
        (item,) = typing.get_args(hint)[:1] or (str,)
        return tuple(_parse_scalar(key, t.strip(), item) for t in text.split(",") if t.strip())
    raise ConfigError(key, text, f"a value of type {hint}")


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """All dotted keys that ``--set`` accepts for a config class."""
    keys = []
    for name, hint in _field_types(cls).items():
        if dataclasses.is_dataclass(hint):
            keys += leaf_keys(hint, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
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
            if err.key.rsplit(".", 1)[-1] == name and not err.unknown_key:
                raise ConfigError(full_key, err.value, err.allowed) from None
            raise
    return dataclasses.replace(config, **{name: value})
