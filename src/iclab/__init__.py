"""iclab: a laboratory for the science of how transformers learn, in context and in their
weights.

The main API:

- ``iclab.list_recipes()`` — every recipe by name; ``iclab.get_recipe(name)``.
- ``iclab.run(name, quick=True, set=[...], model=...)`` — run a recipe from Python (a run
  folder under ``out``), optionally with your own model; returns the loaded run.
- ``iclab.load_run(path_or_id)`` — a run folder as pandas (config, tables, metrics,
  claims, checks); ``iclab.list_runs(root)`` — every run under a store root.
- ``iclab.rebuild_report(path_or_id)`` — re-evaluate the claims and re-render a run's
  report from its folder alone (the CLI's ``iclab report RUN``).
- Subpackages: ``tasks``, ``models``, ``solvers``, ``instruments``, ``engine``,
  ``framework``, ``store``, ``report``.
"""

__version__ = "0.1.0"


def list_recipes():
    """Every recipe, by name (``iclab.framework.recipes``; ``iclab.recipes`` is the package
    of recipe modules)."""
    from iclab.framework import recipes as _recipes

    return _recipes()


def get_recipe(name: str):
    """The recipe called ``name`` (``iclab.framework.get_recipe``)."""
    from iclab.framework import get_recipe as _get

    return _get(name)


def run(name: str, **kwargs):
    """Run a recipe from Python; see ``iclab.framework.run`` for the arguments."""
    from iclab.framework._run import run as _run

    return _run(name, **kwargs)


def load_run(run, root="runs"):
    """One run folder as pandas (``iclab.store.load_run``)."""
    from iclab.store import load_run as _load

    return _load(run, root)


def list_runs(root="runs"):
    """Every run under a store root (``iclab.store.list_runs``)."""
    from iclab.store import list_runs as _list

    return _list(root)


def rebuild_report(run, root="runs", recipe=None):
    """Re-evaluate the claims and re-render the report of a run folder (no training);
    returns the evaluated (claims, checks). ``recipe``: for a recipe defined outside
    ``iclab.recipes``. Raises ``iclab.store.DamagedRun`` for an unreadable folder and
    ``iclab.store.RunBusy`` while another process writes it."""
    from iclab.framework import render
    from iclab.store import RunDir, check_run, find_run

    folder = RunDir(check_run(find_run(run, root)))
    with folder.hold():
        return render(folder, recipe)
