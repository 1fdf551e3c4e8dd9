"""Errors that the CLI turns into a one-line message and exit code 2."""

import math


class ConfigError(ValueError):
    """A bad configuration value: names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, unknown_key: bool = False,
                 message: str | None = None):
        self.key, self.value, self.allowed = key, value, allowed
        self.unknown_key = unknown_key
        if message is not None:
            super().__init__(message)
        elif unknown_key:
            super().__init__(f"unknown config key '{key}' (allowed keys: {allowed})")
        else:
            super().__init__(f"invalid value for '{key}': {value!r} (allowed: {allowed})")


# Every comparison is written so that NaN fails it (``not value > 0``, never ``value <= 0``):
# NaN compares false with everything, so ``nan <= 0`` would let it through.


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and \
        math.isfinite(value)


def check_positive_int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not value > 0:
        raise ConfigError(key, value, "an integer > 0")


def check_nonnegative(key: str, value: object) -> None:
    if not _number(value) or not value >= 0:
        raise ConfigError(key, value, "a finite number >= 0")


def check_positive(key: str, value: object) -> None:
    if not _number(value) or not value > 0:
        raise ConfigError(key, value, "a finite number > 0")


def check_in_range(key: str, value: object, low: float, high: float,
                   closed_high: bool = False) -> None:
    """``low <= value < high`` (``<= high`` with ``closed_high``), NaN and ±inf refused."""
    inside = _number(value) and low <= value and (value <= high if closed_high
                                                  else value < high)
    if not inside:
        close = "]" if closed_high else ")"
        raise ConfigError(key, value, f"a number in [{low:g}, {high:g}{close}")


def check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))
