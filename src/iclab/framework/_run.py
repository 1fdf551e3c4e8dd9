"""One path from a recipe and a config to a finished run folder."""

import datetime as _dt
import platform
import time
from collections.abc import Callable
from typing import Any

from iclab.framework._recipe import Recipe, train_jobs
from iclab.framework._report import render, write_tables

COMPILE_CACHE_MAX_BYTES = 2 * 2**30


def compile_cache_dir():
    """Where ``iclab run`` keeps compiled programs between processes: ``$ICLAB_COMPILE_CACHE``
    (a folder; "off" or "0": none), else ``$XDG_CACHE_HOME/iclab/xla`` (default
    ``~/.cache/iclab/xla``). A ``Path``, or None when off."""
    import os
    from pathlib import Path

    value = os.environ.get("ICLAB_COMPILE_CACHE")
    if value is not None and value.strip().lower() in ("", "0", "off", "false", "no"):
        return None
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "iclab" / "xla"


def configure_jax() -> None:
    """JAX as every iclab process that trains uses it: exact float32 matmuls (no TF32 or
    bf16 passes on GPUs: claims compare float32 computations at ~1e-5), and JAX's
    persistent compilation cache in ``compile_cache_dir()`` (least recently used entries
    evicted beyond 2 GiB), so a resumed run, a repeated one, a worker process and sweep
    points that differ only in injected hyperparameters load their programs instead of
    compiling them again. A cached program is the compiled program itself: the numbers do
    not change. A cache set by the user (``JAX_COMPILATION_CACHE_DIR``) is left as it is;
    a folder that cannot be created means no cache. Call it before the first compilation."""
    import os

    import jax

    jax.config.update("jax_default_matmul_precision", "highest")
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return
    path = compile_cache_dir()
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_compilation_cache_max_size", COMPILE_CACHE_MAX_BYTES)


def machine() -> str:
    """``arch · CPU count · Python · jax backend`` of this process."""
    import os

    import jax

    return (f"{platform.machine()} · {os.cpu_count()} CPUs · Python "
            f"{platform.python_version()} · jax {jax.__version__} "
            f"({jax.default_backend()})")


def _git_commit() -> str | None:
    """The commit of the checkout iclab is imported from (with "+dirty" when it has
    uncommitted changes), or None outside a git checkout."""
    import subprocess
    from pathlib import Path

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance(argv: list[str] | None = None) -> dict:
    """What produced a run: iclab's version and git commit, the versions of Python, JAX,
    jaxlib, Equinox and Optax, the device, the host and the command line."""
    import socket
    import sys
    from importlib import metadata

    import jax

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    device = jax.devices()[0]
    return {"iclab": version("iclab"), "commit": _git_commit(),
            "python": platform.python_version(),
            **{p: version(p) for p in ("jax", "jaxlib", "equinox", "optax")},
            "device": f"{device.platform}: {getattr(device, 'device_kind', device)} "
                      f"× {jax.device_count()}",
            "machine": machine(), "host": socket.gethostname(),
            "command": list(sys.argv if argv is None else argv)}


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` (at most 500 characters)."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:500]


def execute(recipe: Recipe, config: Any, run, console=None,
            model: Callable | None = None, jobs: list | None = None, executor=None,
            tracking=None, trained: dict | None = None, prepared_s: float | None = None
            ) -> tuple[list[dict], list[dict]] | None:
    """Train the recipe's jobs (resuming each from its checkpoint in ``run``), write the
    measured tables, evaluate the spec and render the report; mark the run complete.

    With an ``executor`` other than local the unfinished jobs train there first (see
    ``iclab.framework.Executor``); one that does not wait leaves the run "interrupted"
    with its submitted jobs recorded, and returns None (``iclab run --resume`` measures).

    The run's lock is held throughout (``RunDir.hold``: a second writer gets
    ``RunBusy``). The run's state records the outcome: "complete"; "interrupted" on
    Ctrl-C; "failed" with the error (and ``traceback.txt``) on any other exception, which
    is then raised again.

    Args:
        recipe: the recipe.
        config: its config (already validated).
        run: the ``RunDir`` (created with this config).
        console: a rich Console for progress bars, or None.
        model: optional factory replacing the recipe's default model (see the recipe's
            docstring for the keywords it is called with).
        jobs: the recipe's jobs for this config, when ``prepare`` built them already.
        executor: where the jobs train (an ``Executor``; default: this process).
        tracking: tracker sinks for the metric rows (``iclab.store.Tracking``); the rows
            of jobs trained by another executor are sent once they finished.
        trained: the jobs already trained ({tag: TrainedJob}, e.g. packed with other runs'
            jobs, their metrics written): only measured here.
        prepared_s: seconds the caller spent before (checking the config and building
            ``jobs``), recorded in ``timing.json`` as ``prepare_s``.

    Returns:
        The evaluated claims and checks (rows of ``claims.json`` / ``checks.json``), or
        None when the jobs were submitted without waiting.
    """
    import traceback

    with run.hold():
        if run.status().get("status") != "running":
            run.set_status("running", resumed=_dt.datetime.now().isoformat(timespec="seconds"))
        if tracking is not None and tracking.track:
            run.sinks = tracking.open(run, warn=_warner(console))
        try:
            phases = {} if prepared_s is None else {"prepare_s": prepared_s}
            return _execute(recipe, config, run, console, model, jobs, executor, trained,
                            phases)
        except KeyboardInterrupt:
            run.set_status("interrupted")
            raise
        except Exception as err:
            run.write_text("traceback.txt", traceback.format_exc())
            run.set_status("failed", error=one_line(err))
            raise
        finally:
            if run.sinks is not None:
                run.sinks.close()
                run.sinks = None


def _warner(console):
    """A one-line warning on ``console`` (none without one)."""
    if console is None:
        return None

    def warn(message: str) -> None:
        from rich.markup import escape

        console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)

    return warn


def _execute(recipe, config, run, console, model, jobs, executor, trained, phases):
    if trained is not None:
        return _measure(recipe, config, run, console, trained, phases)
    began = time.perf_counter()
    if jobs is None:  # (``iclab run`` builds them before the run folder: not timed here)
        jobs = build_jobs(recipe, config, model, pack=bool(run.config().get("pack")))
        phases["build_s"] = time.perf_counter() - began
    built = time.perf_counter()
    if executor is not None and executor.kind != "local":
        from iclab.framework._executors import dispatch

        submitted = dispatch(executor, run, jobs, console)
        if submitted is not None:
            run.set_status("interrupted", submitted=submitted, executor=executor.kind,
                           note="jobs submitted; `iclab run --resume` measures once they "
                                "finished")
            return None
        if run.sinks is not None:  # the workers wrote their rows without the sinks
            rows = run.metrics()
            run.sinks.log({c: rows[c].tolist() for c in ("step", "seed", "metric", "value")})
    trained = train_jobs(jobs, run=run, console=console, workers=recipe.workers)
    phases["train_s"] = time.perf_counter() - built
    return _measure(recipe, config, run, console, trained, phases)


def _measure(recipe, config, run, console, trained, phases=None):
    if console is not None:
        console.print("measuring …")
    began = time.perf_counter()
    write_tables(run, recipe.measure(config, trained))
    measured = time.perf_counter()
    run.set_status("running", finished=_dt.datetime.now().isoformat(timespec="seconds"),
                   machine=machine())
    claims, checks = render(run, recipe)
    write_timing(run, trained, {**(phases or {}), "measure_s": measured - began,
                                "report_s": time.perf_counter() - measured})
    run.set_status("complete", claims_passed=sum(c["passed"] for c in claims),
                   claims_total=len(claims), checks_passed=sum(c["passed"] for c in checks),
                   checks_total=len(checks))
    return claims, checks


def write_timing(run, trained: dict, phases: dict) -> None:
    """``timing.json``: where this process's time went — the run's phases (preparing: the
    config checked and the jobs built before ``execute``; building the jobs when built in
    it; training them, measuring, the report) and each job's ``TrainedJob.timing``. Not a result:
    it differs from run to run, and a resumed run records only what it did itself."""
    run.write_json("timing.json", {
        "machine": machine(),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "jobs": {tag: t.timing for tag, t in trained.items() if t.timing is not None}})


def build_jobs(recipe: Recipe, config: Any, model: Callable | None = None,
               pack: bool = False) -> list:
    """The recipe's jobs for ``config`` (its evaluation data built), packed with
    ``pack_jobs`` if ``pack``; an allocation failure while building them is a
    ``ConfigError`` (the config is too large for this machine)."""
    from iclab._errors import ConfigError
    from iclab.framework._pack import pack_jobs
    from iclab.framework._preflight import memory_error

    try:
        jobs = list(recipe.experiment(config) if model is None
                    else recipe.experiment(config, model=model))
        return pack_jobs(jobs) if pack else jobs
    except Exception as err:
        if not memory_error(err):
            raise
        import re

        from iclab.engine import available_memory
        from iclab.engine._memory import size

        asked = re.search(r"allocating (\d+) bytes", str(err))
        what = f"an allocation of {size(int(asked.group(1)))}" if asked else "memory"
        free = available_memory()
        has = f"; the device has {size(free)} available" if free else ""
        raise ConfigError("memory", None, "", message=(
            f"too large for this machine: building {recipe.name}'s jobs (evaluation data, "
            f"baselines) failed on {what}{has}")) from None


def prepare(name: "str | Recipe", quick: bool = False, seeds: int | None = None,
            overrides: tuple[str, ...] | list[str] = (), out: str | None = None,
            model: Callable | None = None, pack: bool = False):
    """Everything checked before a run folder is created: the config (types, ranges,
    finiteness, the recipe's own rules), the store root ``out``, the environment, and the
    jobs' memory footprint against what the device has available.

    Returns:
        ``(recipe, config, mode, jobs)``, the jobs packed if ``pack`` (``pack_jobs``).

    Raises:
        ConfigError: the first problem found (nothing has been written).
    """
    recipe, config, mode = make_config(name, quick, seeds, overrides)
    return recipe, config, mode, preflight(recipe, config, overrides, out, model, pack)


def preflight(recipe: Recipe, config: Any, overrides=(), out: str | None = None,
              model: Callable | None = None, pack: bool = False) -> list:
    """The checks of ``prepare`` after the config: the store root, the environment, the
    jobs (built) and their memory; returns the jobs, packed if ``pack`` (``ConfigError``
    on a problem)."""
    from iclab.engine import check_training, default_workers
    from iclab.framework._pack import pack_jobs
    from iclab.framework._preflight import check_environment, check_memory, check_store_root

    if out is not None:
        check_store_root(out)
    check_environment()
    jobs = build_jobs(recipe, config, model)
    for job in jobs:
        check_training(job.problem, job.optim, job.train)
    check_memory(jobs, overrides, workers=recipe.workers or default_workers())
    return pack_jobs(jobs) if pack else jobs


def make_config(name: "str | Recipe", quick: bool = False, seeds: int | None = None,
                overrides: tuple[str, ...] | list[str] = ()) -> tuple[Recipe, Any, str]:
    """The recipe (by name, or a ``Recipe`` object) and its resolved config for a mode, a
    seed count and ``key=value`` overrides; raises ``ConfigError`` (nothing is written)."""
    import dataclasses

    from iclab._errors import check_positive_int
    from iclab.config import apply_overrides, validate
    from iclab.framework._recipe import get_recipe

    recipe = name if isinstance(name, Recipe) else get_recipe(name)
    config = recipe.quick() if quick else recipe.full()
    if seeds is not None:
        check_positive_int("--seeds", seeds)
        if not hasattr(config, "train"):
            from iclab._errors import ConfigError

            raise ConfigError("--seeds", seeds, f"no --seeds for {recipe.name}: it trains "
                              "nothing (its config has no train.seeds)")
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       seeds=seeds))
    config = apply_overrides(config, overrides)
    mode = "quick" if quick else "full"
    if recipe.resolve is not None:
        set_keys = frozenset(item.split("=", 1)[0].strip() for item in overrides)
        config = recipe.resolve(config, mode, set_keys)
    return recipe, validate(config), mode


def run_record(recipe: Recipe, config: Any, mode: str, overrides, seeds: int | None,
               model: Callable | None = None, executor=None, pack: bool = False) -> dict:
    """A run folder's ``config.json``: the recipe (and ``recipe_ref``, what imports a
    recipe of your own), mode, overrides, seeds, resolved config and whether its jobs are
    packed. With an executor other than local the recipe must be importable by other
    processes (``ConfigError``)."""
    from iclab._errors import ConfigError
    from iclab.config import to_dict
    from iclab.framework._recipe import recipe_reference

    try:
        ref = recipe_reference(recipe)
    except ConfigError:
        if executor is not None and executor.kind != "local":
            raise
        ref = None
    record = {"recipe": recipe.name, "mode": mode, "overrides": list(overrides),
              "seeds": seeds, "config": to_dict(config)}
    if ref is not None and ref != recipe.name:
        record["recipe_ref"] = ref
    if model is not None:
        record["model"] = getattr(model, "__qualname__", repr(model))
    if pack:
        record["pack"] = True
    return record


def accepts_model(recipe: Recipe) -> bool:
    """Whether the recipe's experiment takes a user model factory (``model=``)."""
    import inspect

    return "model" in inspect.signature(recipe.experiment).parameters


def run(name: "str | Recipe", quick: bool = False, seeds: int | None = None,
        set: tuple[str, ...] | list[str] = (), out: str = "runs", model: Callable | None = None,
        console=None, executor=None, tracking=None, pack: bool = False):
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
        executor: where the jobs train (``iclab.framework.Executor``; default: this
            process's threads). A recipe given as an object, or a model factory, trains in
            this process only.
        tracking: tracker sinks (``iclab.store.Tracking(track=("tensorboard",))``).
        pack: train the jobs that declare one ``Job.pack`` group as one program each
            (``iclab.framework.pack_jobs``; float32-close to unpacked, recorded in
            ``config.json``).

    Examples:
        >>> import iclab
        >>> run = iclab.run("icl-gd", quick=True, set=["train.steps=200"])  # doctest: +SKIP
        >>> run.claims[["id", "measured", "passed"]]  # doctest: +SKIP
    """
    from iclab._errors import ConfigError
    from iclab.store import RunDir, load_run

    recipe = name if isinstance(name, Recipe) else None
    if model is not None:
        from iclab.framework._recipe import get_recipe, recipes

        recipe = recipe or get_recipe(name)
        if not accepts_model(recipe):
            takes = ", ".join(n for n, r in recipes().items() if accepts_model(r))
            raise ConfigError("model", getattr(model, "__qualname__", model),
                              f"a recipe that takes a model factory ({takes}); "
                              f"{recipe.name} trains several kinds of model")
    if executor is not None and executor.kind != "local":
        if model is not None:
            raise ConfigError("executor", executor.kind, "local for a model factory (other "
                              "processes rebuild a run from its recipe and config)")
        executor.check()
    recipe, config, mode, jobs = prepare(name, quick, seeds, tuple(set), out, model, pack)
    folder = RunDir.create(out, recipe.name, run_record(recipe, config, mode, set, seeds,
                                                        model, executor, pack),
                           provenance=provenance())
    if tracking is not None:
        tracking.check()
    execute(recipe, config, folder, console=console, model=model, jobs=jobs,
            executor=executor, tracking=tracking)
    return load_run(folder.path)
