"""What a recipe is, and the registry of recipes."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iclab._errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    """A paper claim-set: configs for the full and quick modes, and a ``run`` function.

    ``run(config, run_dir, console)`` trains (resuming from ``run_dir``'s checkpoint
    if there is one), measures, writes metrics, figures and the report into
    ``run_dir`` and returns the list of ``Claim`` objects.

    ``resolve(config, mode, set_keys)``, if given, fills in settings that depend on
    other settings (e.g. a paper's per-class defaults) after the ``--set`` overrides,
    leaving the keys in ``set_keys`` (those the user set) alone; the run's saved config
    is the resolved one.
    """

    name: str
    description: str
    paper: str
    config_type: type
    full: Callable[[], Any]
    quick: Callable[[], Any]
    run: Callable[..., list]
    resolve: Callable[[Any, str, frozenset[str]], Any] | None = None


_REGISTRY: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    _REGISTRY[recipe.name] = recipe
    return recipe


def recipes() -> dict[str, Recipe]:
    import iclab.recipes.bursty_icl  # noqa: F401
    import iclab.recipes.function_classes  # noqa: F401  (each module registers itself)
    import iclab.recipes.icl_gd  # noqa: F401
    import iclab.recipes.icl_gd_deep  # noqa: F401
    import iclab.recipes.induction_heads  # noqa: F401
    import iclab.recipes.mesa  # noqa: F401
    import iclab.recipes.nonlinear_regression  # noqa: F401
    import iclab.recipes.versatile_lt  # noqa: F401

    return dict(sorted(_REGISTRY.items()))


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; a ``ConfigError`` listing the valid names otherwise."""
    available = recipes()
    if name not in available:
        raise ConfigError("recipe", name, ", ".join(available))
    return available[name]
