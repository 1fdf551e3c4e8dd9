"""Errors that the CLI turns into a one-line message and exit code 2."""


class ConfigError(ValueError):
    """A bad configuration value: names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, unknown_key: bool = False):
        self.key, self.value, self.allowed = key, value, allowed
        self.unknown_key = unknown_key
        if unknown_key:
            super().__init__(f"unknown config key '{key}' (allowed keys: {allowed})")
        else:
            super().__init__(f"invalid value for '{key}': {value!r} (allowed: {allowed})")


def check_positive_int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, value, "an integer > 0")


def check_nonnegative(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(key, value, "a number >= 0")


def check_positive(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(key, value, "a number > 0")


def check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))
