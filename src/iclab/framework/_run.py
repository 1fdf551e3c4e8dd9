"""One path from a recipe and a config to a finished run folder."""

import datetime as _dt
import platform
from collections.abc import Callable
from typing import Any

from iclab.framework._recipe import Recipe, train_jobs
from iclab.framework._report import render, write_tables


def machine() -> str:
    """``arch · CPU count · Python · jax backend`` of this process."""
    import os

    import jax

    return (f"{platform.machine()} · {os.cpu_count()} CPUs · Python "
            f"{platform.python_version()} · jax {jax.__version__} "
            f"({jax.default_backend()})")


def execute(recipe: Recipe, config: Any, run, console=None,
            model: Callable | None = None) -> tuple[list[dict], list[dict]]:
    """Train the recipe's jobs (resuming each from its checkpoint in ``run``), write the
    measured tables, evaluate the spec and render the report; mark the run complete.

    Args:
        recipe: the recipe.
        config: its config (already validated).
        run: the ``RunDir`` (created with this config).
        console: a rich Console for progress bars, or None.
        model: optional factory replacing the recipe's default model (see the recipe's
            docstring for the keywords it is called with).

    Returns:
        The evaluated claims and checks (rows of ``claims.json`` / ``checks.json``).
    """
    jobs = recipe.experiment(config) if model is None else recipe.experiment(config,
                                                                              model=model)
    trained = train_jobs(jobs, run=run, console=console, workers=recipe.workers)
    if console is not None:
        console.print("measuring …")
    write_tables(run, recipe.measure(config, trained))
    run.set_status("incomplete", finished=_dt.datetime.now().isoformat(timespec="seconds"),
                   machine=machine())
    claims, checks = render(run, recipe)
    run.set_status("complete", claims_passed=sum(c["passed"] for c in claims),
                   claims_total=len(claims), checks_passed=sum(c["passed"] for c in checks),
                   checks_total=len(checks))
    return claims, checks


def make_config(name: "str | Recipe", quick: bool = False, seeds: int | None = None,
                overrides: tuple[str, ...] | list[str] = ()) -> tuple[Recipe, Any, str]:
    """The recipe (by name, or a ``Recipe`` object) and its resolved config for a mode, a
    seed count and ``key=value`` overrides; raises ``ConfigError`` (nothing is written)."""
    import dataclasses

    from iclab._errors import check_positive_int
    from iclab.config import apply_overrides
    from iclab.framework._recipe import get_recipe

    recipe = name if isinstance(name, Recipe) else get_recipe(name)
    config = recipe.quick() if quick else recipe.full()
    if seeds is not None:
        check_positive_int("--seeds", seeds)
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       seeds=seeds))
    config = apply_overrides(config, overrides)
    mode = "quick" if quick else "full"
    if recipe.resolve is not None:
        set_keys = frozenset(item.split("=", 1)[0].strip() for item in overrides)
        config = recipe.resolve(config, mode, set_keys)
    return recipe, config, mode


def accepts_model(recipe: Recipe) -> bool:
    """Whether the recipe's experiment takes a user model factory (``model=``)."""
    import inspect

    return "model" in inspect.signature(recipe.experiment).parameters


def run(name: "str | Recipe", quick: bool = False, seeds: int | None = None,
        set: tuple[str, ...] | list[str] = (), out: str = "runs", model: Callable | None = None,
        console=None):
    """Run a recipe from Python and return its loaded run (``iclab.load_run``).

    Args:
        name: the recipe (``iclab.list_recipes()`` lists them), or a ``Recipe`` of your own.
        quick: the quick mode.
        seeds: number of seeds (default: the mode's).
        set: ``key=value`` overrides, as ``--set`` on the command line.
        out: the store root.
        model: a factory in place of the recipe's default model, called as
            ``model(key, **context)`` with the keywords the recipe documents.
        console: a rich Console for progress (default: none).

    Example:
        >>> import iclab
        >>> run = iclab.run("icl-gd", quick=True, set=["train.steps=200"])  # doctest: +SKIP
        >>> run.claims[["id", "measured", "passed"]]  # doctest: +SKIP
    """
    from iclab._errors import ConfigError
    from iclab.config import to_dict
    from iclab.store import RunDir, load_run

    recipe, config, mode = make_config(name, quick, seeds, tuple(set))
    if model is not None and not accepts_model(recipe):
        from iclab.framework._recipe import recipes

        takes = ", ".join(n for n, r in recipes().items() if accepts_model(r))
        raise ConfigError("model", getattr(model, "__qualname__", model),
                          f"a recipe that takes a model factory ({takes}); "
                          f"{recipe.name} trains several kinds of model")
    folder = RunDir.create(out, recipe.name, {"recipe": recipe.name, "mode": mode,
                                              "config": to_dict(config),
                                              "model": None if model is None else
                                              getattr(model, "__qualname__", repr(model))})
    execute(recipe, config, folder, console=console, model=model)
    return load_run(folder.path)
