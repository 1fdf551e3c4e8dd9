"""Validation of a width × depth sweep against a base shape (one-line ``ConfigError``s)."""

from collections.abc import Mapping, Sequence

from iclab._errors import ConfigError, check_choice, check_positive_int
from iclab.parametrisation._scheme import SCHEMES


def check_sweep(widths: Sequence[int], depths: Sequence[int], base_width: int,
                base_layers: int, depth_width: int, heads: int,
                schemes: Mapping[str, Sequence[str]] | None = None) -> None:
    """Raise the ``ConfigError`` of the first bad value of a sweep over ``widths`` (at
    ``base_layers``) and ``depths`` (at ``depth_width``) against the base shape
    (``base_width``, ``base_layers``): at least two positive sizes each, the base among
    them, widths divisible by the heads, and known schemes (``schemes``: config key → the
    schemes it lists).

    Examples:
        >>> check_sweep((32, 64), (2, 4), 32, 2, 32, heads=4,
        ...             schemes={"width_schemes": ("sp", "mup")})
        >>> check_sweep((32, 64), (2, 4), 48, 2, 32, heads=4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        iclab._errors.ConfigError: invalid value for 'base_width': 48 ...
    """
    for key, value in (("base_width", base_width), ("base_layers", base_layers),
                       ("depth_width", depth_width)):
        check_positive_int(key, value)
    for key, values in (("widths", widths), ("depths", depths)):
        if len(values) < 2 or any(not isinstance(v, int) or v < 1 for v in values):
            raise ConfigError(key, values, "at least two positive integers")
    for key, sizes in (("widths", widths), ("depth_width", (depth_width,)),
                       ("base_width", (base_width,))):
        bad = [w for w in sizes if w % heads]
        if bad:
            raise ConfigError(key, bad[0], f"a multiple of model.heads ({heads})")
    for key, listed in (schemes or {}).items():
        for scheme in listed:
            check_choice(key, scheme, SCHEMES)
    if base_width not in widths:
        raise ConfigError("base_width", base_width, f"one of widths {tuple(widths)}")
    if base_layers not in depths:
        raise ConfigError("base_layers", base_layers, f"one of depths {tuple(depths)}")
