"""``iclab list | config | run | sweep | report | runs | index | show`` (tyro subcommands).

Exit codes of ``iclab run``: 0 when the run completes and every claim passes, 1
when it completes with a failing claim or check (or fails: state "failed", the error
recorded), 2 on bad input (nothing written) or a damaged or busy run folder, 130 when
interrupted (state "interrupted"; ``--resume`` continues it). ``iclab report`` exits the
same way for the claims it re-evaluates (1 for an unfinished run).
"""

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from iclab._errors import ConfigError
from iclab.framework._executors import Executor
from iclab.store._sinks import Tracking


@dataclass(frozen=True)
class ListCmd:
    """List the recipes with a one-line description each."""


@dataclass(frozen=True)
class RunCmd:
    """Run a recipe (or resume an interrupted run) and check its claims.

    Every config key, with its type, default and meaning: iclab config RECIPE [--quick].
    """

    recipe: tyro.conf.Positional[str | None] = None
    """recipe name (see ``iclab list``); omit with --resume."""
    quick: bool = False
    """the reduced quick mode (minutes on 2 CPU cores)."""
    seeds: int | None = None
    """number of seeds trained together (one vmapped program)."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """override a config value, KEY=VALUE with a dotted key (repeatable), e.g. task.d=5;
    the keys: iclab config RECIPE."""
    out: Path = Path("runs")
    """root folder of the run folders."""
    resume: str | None = None
    """run id or run folder of an interrupted run to continue."""
    dry_run: bool = False
    """check the config, the store root and the memory needed, print the jobs, write
    nothing."""
    pack: bool = False
    """train the jobs of one pack group (same model, one per data setting, e.g. noise
    level) as one program each; float32-close to unpacked; kept by --resume."""
    executor: Annotated[Executor, tyro.conf.OmitArgPrefixes] = Executor()
    """where the jobs train: --executor local|process|slurm|ray and its options."""
    tracking: Annotated[Tracking, tyro.conf.OmitArgPrefixes] = Tracking()
    """tracker sinks: --track tensorboard|wandb (repeatable); logging only."""


@dataclass(frozen=True)
class ReportCmd:
    """Re-evaluate the claims and re-render the report of a run folder (no training)."""

    run: tyro.conf.Positional[str]
    """run id (or unique prefix) or run folder."""
    out: Path = Path("runs")
    """root folder of the run folders."""


@dataclass(frozen=True)
class SweepCmd:
    """Run a recipe at many points of its config; each point is a run folder keyed by a
    hash of its resolved config, so a finished point is reused.

    Example: iclab sweep lr-transfer --quick --grid optim.lr=0.01,0.03 --grid model.dim=16,32
    """

    recipe: tyro.conf.Positional[str]
    """recipe name (see ``iclab list``) or MODULE:ATTR."""
    grid: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """an axis KEY=V1,V2,... (repeatable; all combinations); ';' separates the values of a
    tuple-valued key."""
    zip: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """an axis KEY=V1,V2,... varied together with the other --zip axes (equal lengths)."""
    random: int | None = None
    """sample N points: of the grid (without replacement), or with --range N draws."""
    range: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """a drawn axis KEY=LOW:HIGH (uniform), KEY=LOW:HIGH:log or KEY=LOW:HIGH:int (needs
    --random)."""
    seed: int = 0
    """seed of the random draws."""
    quick: bool = False
    """the quick mode as base."""
    seeds: int | None = None
    """seeds per point."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """a KEY=VALUE every point gets (repeatable)."""
    out: Path = Path("runs")
    """root folder of the run folders."""
    mode: str = "cached"
    """cached (reuse finished points, resume interrupted ones), retry (also rerun failed
    ones), force (rerun every point), dry-run (print the plan, write nothing)."""
    pack: bool = False
    """train points that differ only in learning rates as one vmapped program per job
    (local executor; float32-close to, not bit for bit, separate runs)."""
    executor: Annotated[Executor, tyro.conf.OmitArgPrefixes] = Executor()
    """where each point's jobs train: --executor local|process|slurm|ray and its options."""


@dataclass(frozen=True)
class RunsCmd:
    """List the runs under the store root (or the points of one sweep)."""

    out: Path = Path("runs")
    """root folder of the run folders."""
    sweep: str | None = None
    """list the points of this sweep (an id or unique prefix) with their swept values."""


@dataclass(frozen=True)
class IndexCmd:
    """Write ROOT/index.html: every run with its claims status and report link, the
    sweeps, and each recipe's runs side by side."""

    out: Path = Path("runs")
    """root folder of the run folders."""


@dataclass(frozen=True)
class ShowCmd:
    """Print a run's config, final metrics and claims."""

    run: tyro.conf.Positional[str]
    """run id (or unique prefix) or run folder."""
    out: Path = Path("runs")
    """root folder of the run folders."""


@dataclass(frozen=True)
class ConfigCmd:
    """Print every config key of a recipe: type, value in the mode, and what it means."""

    recipe: tyro.conf.Positional[str]
    """recipe name (see ``iclab list``)."""
    quick: bool = False
    """the quick mode's values (default: the full mode's)."""


def cmd_config(cmd: ConfigCmd, console: Console) -> int:
    from iclab.config import describe
    from iclab.framework import get_recipe

    try:
        recipe = get_recipe(cmd.recipe)
    except ConfigError as err:
        return _fail(console, str(err))
    mode = "quick" if cmd.quick else "full"
    config = recipe.quick() if cmd.quick else recipe.full()
    table = Table(title=f"{recipe.name} ({mode}): iclab run {recipe.name}"
                        f"{' --quick' if cmd.quick else ''} --set KEY=VALUE")
    for column in ("key", "type", mode, "meaning"):
        table.add_column(column, overflow="fold")
    for key, kind, value, doc in describe(config):
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        table.add_row(key, escape(kind), escape(shown), escape(doc))
    console.print(table)
    console.print("Settings that depend on others (0 = set by the recipe) are filled in after "
                  "--set; `iclab run ... --dry-run` checks a config without writing anything.",
                  highlight=False)
    return 0


def _fail(console: Console, message: str) -> int:
    """One line on stderr, exit code 2."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False,
                               soft_wrap=True)
    return 2


def cmd_list(console: Console) -> int:
    from iclab.framework import recipes

    table = Table(title="iclab recipes")
    table.add_column("recipe")
    table.add_column("description")
    for name, recipe in recipes().items():
        table.add_row(name, recipe.description)
    console.print(table)
    return 0


def _resume_point(steps: dict[str, int]) -> str:
    """"from step S", or for a run with several models "from N checkpoints (steps a–b)"."""
    if not steps:
        return "from the start (no checkpoint yet)"
    if len(steps) == 1:
        return f"from step {next(iter(steps.values()))}"
    low, high = min(steps.values()), max(steps.values())
    span = f"step {low}" if low == high else f"steps {low}–{high}"
    return f"from {len(steps)} checkpoints ({span})"


def _summary(console: Console, name: str, mode: str, claims: list[dict], checks: list[dict]
             ) -> None:
    from iclab._console import claims_table

    console.print(claims_table(claims, title=f"{name} ({mode}): claims"))
    if checks:
        console.print(claims_table(checks, title=f"{name} ({mode}): checks (by construction)"))


def _exit_code(claims: list[dict], checks: list[dict]) -> int:
    return 0 if all(c["passed"] for c in claims + checks) else 1


def _resume(cmd: "RunCmd"):
    """The run folder, recipe, config and mode of ``--resume``; ConfigError when the run
    is missing, damaged, or its config can no longer be rebuilt."""
    from iclab.store import DamagedRun, RunDir, check_run, find_run

    if cmd.recipe is not None or cmd.set or cmd.seeds is not None or cmd.quick or \
            cmd.dry_run or cmd.pack:
        raise ConfigError("--resume", cmd.resume,
                          "--resume with at most executor options: the run's own config is "
                          "reused")
    try:
        run = RunDir(check_run(find_run(cmd.resume, cmd.out)))
    except (FileNotFoundError, DamagedRun) as err:
        raise ConfigError("--resume", cmd.resume, "", message=str(err)) from None
    return (run, *_rebuild(run, "resumed"))


def _rebuild(run, purpose: str):
    """(recipe, config, mode) from a run folder's config.json; ConfigError when it names
    no known recipe or does not rebuild a valid config of this iclab."""
    from iclab.config import from_dict, validate
    from iclab.framework._recipe import saved_recipe

    saved = run.config()
    try:
        recipe = saved_recipe(saved)
        config = validate(from_dict(recipe.config_type, saved.get("config")))
    except ConfigError as err:
        raise ConfigError("run", str(run.path), "", message=(
            f"run {run.path} cannot be {purpose}: its config.json does not rebuild a "
            f"config of this iclab ({err})")) from None
    return recipe, config, saved.get("mode", "?")


def _terminate_like_ctrl_c():
    """SIGTERM (``kill``, a scheduler's preemption or time limit) stops a run as Ctrl-C
    does: finished metrics kept, state "interrupted", exit 130, ``--resume`` continues.
    Returns the previous handler (None off the main thread, where none is installed)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def _failed(run, err: BaseException) -> int:
    """Say in two lines that the run failed (``execute`` recorded state "failed", the
    error and ``traceback.txt``)."""
    from iclab.framework._run import one_line

    err_console = Console(stderr=True)
    err_console.print(f"[red]run failed:[/red] {escape(one_line(err))}", highlight=False,
                      soft_wrap=True)
    err_console.print(f"traceback: {run.path / 'traceback.txt'}", highlight=False,
                      soft_wrap=True)
    return 1


def cmd_run(cmd: RunCmd, console: Console, argv: list[str]) -> int:
    import time

    from iclab.framework._run import configure_jax

    began = time.perf_counter()
    configure_jax()
    from iclab.engine import default_workers
    from iclab.framework import execute, prepare
    from iclab.framework._preflight import check_environment, check_memory
    from iclab.framework._run import build_jobs, provenance, run_record
    from iclab.store import RunBusy, RunDir

    try:
        cmd.executor.check()
        cmd.tracking.check()
        if cmd.resume is not None:
            run, recipe, config, mode = _resume(cmd)
            if run.status().get("status") == "complete":
                console.print(f"run {run.run_id} is already complete")
                _summary(console, recipe.name, mode, run.claims(), run.checks())
                return _exit_code(run.claims(), run.checks())
            if run.busy() is not None:
                raise RunBusy(run.busy())
            check_environment()
            jobs = build_jobs(recipe, config)
            check_memory(jobs, workers=recipe.workers or default_workers())
            if run.config().get("pack"):
                from iclab.framework._pack import pack_jobs

                jobs = pack_jobs(jobs)
        else:
            if cmd.recipe is None:
                from iclab.framework import recipes

                raise ConfigError("recipe", None, ", ".join(recipes()))
            recipe, config, mode, jobs = prepare(cmd.recipe, cmd.quick, cmd.seeds, cmd.set,
                                                 out=cmd.out, pack=cmd.pack)
            if cmd.dry_run:
                _plan(console, recipe, config, mode, jobs)
                return 0
            run = RunDir.create(cmd.out, recipe.name,
                                run_record(recipe, config, mode, cmd.set, cmd.seeds,
                                           executor=cmd.executor, pack=cmd.pack),
                                provenance=provenance(["iclab", *argv]))
    except ConfigError as err:
        return _fail(console, str(err))
    except RunBusy as err:
        return _fail(console, str(err))

    if cmd.resume is not None:
        console.print(f"resuming {run.path} {_resume_point(run.checkpoint_steps())}")
    else:
        console.print(f"run folder: {run.path}")
    previous = _terminate_like_ctrl_c()
    try:
        outcome = execute(recipe, config, run, console=console, jobs=jobs,
                          executor=cmd.executor, tracking=cmd.tracking,
                          prepared_s=time.perf_counter() - began)
    except RunBusy as err:
        return _fail(console, str(err))
    except KeyboardInterrupt:
        console.print(f"\ninterrupted: finished metrics are kept; continue with "
                      f"[bold]iclab run --resume {run.path}[/bold]")
        if cmd.executor.kind in ("slurm", "ray"):
            console.print(f"(the {cmd.executor.kind} jobs already submitted go on)")
        return 130
    except Exception as err:  # noqa: BLE001 - recorded in the run folder (state "failed")
        return _failed(run, err)
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)
    if outcome is None:
        console.print(f"jobs submitted; once they finished: [bold]iclab run --resume "
                      f"{run.path}[/bold] measures and reports")
        return 0
    claims, checks = outcome
    _summary(console, recipe.name, mode, claims, checks)
    if (line := _time_line(run)) is not None:
        console.print(line, highlight=False)
    console.print(f"report: {run.path / 'report.html'}")
    return _exit_code(claims, checks)


def _time_line(run) -> str | None:
    """One line from the run's ``timing.json``: the phases, and the training's compile
    share (summed over jobs, which may train side by side)."""
    try:
        timing = json.loads((run.path / "timing.json").read_text())
        phases, jobs = timing["phases"], timing["jobs"].values()
        compiling = sum(t["compile_s"] for t in jobs)
        stepping = sum(t["steps_s"] for t in jobs)
        parts = [f"{name} {phases[key]:.0f} s" for key, name in
                 (("prepare_s", "preparing"), ("build_s", "building")) if key in phases]
        if "train_s" in phases:
            parts.append(f"training {phases['train_s']:.0f} s (jobs: compiling "
                         f"{compiling:.0f} s, stepping {stepping:.0f} s)")
        parts += [f"measuring {phases['measure_s']:.0f} s",
                  f"report {phases['report_s']:.0f} s"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return "time: " + ", ".join(parts) + " (timing.json)"


def _plan(console: Console, recipe, config, mode: str, jobs: list) -> None:
    """``--dry-run``: the jobs, their shapes' memory at the least, and nothing written."""
    from iclab.engine import available_memory, footprint
    from iclab.engine._memory import size

    table = Table(title=f"{recipe.name} ({mode}): {len(jobs)} job(s), nothing written")
    for column in ("job", "steps", "batch", "seeds", "memory at least"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        groups = len(job.packed) or 1  # a packed job's members: seeds × its jobs
        try:
            need = size(footprint(job.problem, job.optim, dataclasses.replace(
                job.train, seeds=job.train.seeds * groups)).total)
        except Exception:  # noqa: BLE001 - not traceable abstractly
            need = "?"
        table.add_row(job.tag or "(model)", str(job.train.steps), str(job.train.batch_size),
                      str(job.train.seeds) + (f" × {groups} jobs" if job.packed else ""),
                      need)
    console.print(table)
    available = available_memory()
    if available is not None:
        console.print(f"available memory: {size(available)}")


def cmd_report(cmd: ReportCmd, console: Console) -> int:
    from iclab.framework import render
    from iclab.store import DamagedRun, RunBusy, RunDir, check_run, find_run

    try:
        run = RunDir(check_run(find_run(cmd.run, cmd.out)))
        if run.status().get("status") == "complete" and not (run.path / "tables").is_dir():
            raise FileNotFoundError(f"{run.path} is a complete run without tables/ (written "
                                    "before the recipe framework v2): its report.html is kept")
        _rebuild(run, "reported")
    except (FileNotFoundError, DamagedRun, ConfigError) as err:
        return _fail(console, str(err))
    try:
        with run.hold():  # report.html and claims.json are written: one writer at a time
            claims, checks = render(run)
    except RunBusy as err:
        return _fail(console, str(err))
    mode = run.config().get("mode", "?")
    _summary(console, run.config().get("recipe", "?"), mode, claims, checks)
    complete = all(c["status"] != "not measured" for c in claims + checks)
    if not complete:
        console.print(f"run {run.run_id} is incomplete: claims not measured yet")
    console.print(f"report: {run.path / 'report.html'}")
    return _exit_code(claims, checks)


_COLOUR = {"complete": "green", "running": "cyan", "interrupted": "yellow",
           "failed": "red", "damaged": "red", "missing": "red"}


def _warned(read):
    """``read()``, each ``DamagedRunWarning`` it raises printed as one line on stderr."""
    import warnings

    from iclab.store import DamagedRunWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedRunWarning)
        value = read()
    err = Console(stderr=True)
    for warning in caught:
        if issubclass(warning.category, DamagedRunWarning):
            err.print(f"[yellow]warning:[/yellow] {escape(str(warning.message))}",
                      highlight=False, soft_wrap=True)
    return value


def _sweep_table(console: Console, root: Path, sweep_id: str) -> "object":
    """Print a sweep's points (swept values, run id, state, claims) and return them."""
    from iclab.store._sweeps import load_sweep

    record, points = _warned(lambda: load_sweep(sweep_id, root))
    table = Table(title=f"sweep {record['id']} of {record['recipe']} ({record['mode']}): "
                        f"{len(points)} points")
    columns = [a for a in record["axes"] if a in points.columns]
    for column in [*columns, "run id", "state", "claims"]:
        table.add_column(column, no_wrap=column in ("run id", "state"))
    for row in points.to_dict("records"):
        cells = [escape(str(row[c])) for c in columns]
        colour = _COLOUR.get(row["state"], "white")
        table.add_row(*cells, escape(row["run_id"]), f"[{colour}]{row['state']}[/]",
                      escape(str(row["claims"])))
    console.print(table)
    for row in points.to_dict("records"):
        if row["state"] == "failed" and row.get("error"):
            console.print(f"failed {row['run_id']}: {escape(str(row['error']))}",
                          highlight=False, soft_wrap=True)
    return points


def cmd_sweep(cmd: SweepCmd, console: Console, argv: list[str]) -> int:
    from iclab.framework._run import configure_jax

    configure_jax()  # as iclab run
    from iclab.framework._sweep import Sweep, resolve, run_sweep

    sweep = Sweep(cmd.recipe, quick=cmd.quick, seeds=cmd.seeds, base=cmd.set, grid=cmd.grid,
                  zip=cmd.zip, random=cmd.random, ranges=cmd.range, seed=cmd.seed)
    try:
        if cmd.mode == "dry-run":
            cmd.executor.check()
            return _sweep_plan(console, sweep, cmd.out)
        sweep_id, states = run_sweep(sweep, cmd.out, cmd.mode, cmd.executor, console,
                                     ["iclab", *argv], pack=cmd.pack)
    except ConfigError as err:
        return _fail(console, str(err))
    except KeyboardInterrupt:
        sweep_id, _ = resolve(sweep, cmd.out)
        console.print(f"\ninterrupted: finished points are kept; the same command "
                      f"continues sweep {sweep_id}")
        return 130
    _sweep_table(console, cmd.out, sweep_id)
    for state in states:
        if state.startswith("refused"):
            console.print(f"[red]{escape(state)}[/red]", highlight=False, soft_wrap=True)
    console.print(f"sweep report: {cmd.out / '_sweeps' / (sweep_id + '.html')}")
    return 0 if all(s == "complete" for s in states) else 1


def _sweep_plan(console: Console, sweep, root: Path) -> int:
    """``--mode dry-run``: every point, its state and what the sweep would do; its jobs and
    their static shapes (jobs of one shape compile to one program); nothing written."""
    from iclab.framework._run import build_jobs
    from iclab.framework._sweep import job_shape, plan, resolve

    sweep_id, points = resolve(sweep, root)
    states, todo = plan(points, "cached")
    table = Table(title=f"sweep {sweep_id} of {points[0].recipe.name} ({points[0].mode}): "
                        f"{len(points)} points, nothing written")
    for column in [*sweep.axes(), "run id", "state", "would", "jobs"]:
        table.add_column(column, no_wrap=column in ("run id", "state"))
    shapes, jobs_total = {}, 0
    for point, state, what in zip(points, states, todo, strict=True):
        jobs = build_jobs(point.recipe, point.config)
        jobs_total += len(jobs)
        for job in jobs:
            shapes.setdefault(job_shape(job), []).append(job.tag)
        table.add_row(*[escape(point.values.get(k, "")) for k in sweep.axes()],
                      point.run_id, state, what, str(len(jobs)))
    console.print(table)
    from iclab.framework._pack import pack_key

    groups: dict[str, int] = {}
    for point, what in zip(points, todo, strict=True):
        if what in ("run", "rerun"):
            groups[pack_key(point)] = groups.get(pack_key(point), 0) + 1
    packed = [n for n in groups.values() if n > 1]
    console.print(f"{jobs_total} job(s) in {len(shapes)} static shape(s); with --pack, "
                  f"{sum(packed)} point(s) that differ only in learning rates would train "
                  f"as {len(packed)} packed group(s) (one program per job)", highlight=False,
                  soft_wrap=True)
    return 0


def cmd_runs(cmd: RunsCmd, console: Console) -> int:
    from iclab.store import list_runs

    if cmd.sweep is not None:
        try:
            _sweep_table(console, cmd.out, cmd.sweep)
        except FileNotFoundError as err:
            return _fail(console, str(err))
        return 0
    runs = _warned(lambda: list_runs(cmd.out))
    if runs.empty:
        console.print(f"no runs under {cmd.out}/")
        return 0
    table = Table(title=f"runs under {cmd.out}/")
    widest = int(runs.run_id.str.len().max())
    for column in ("recipe", "run id", "state", "mode", "overrides", "claims", "started",
                   "duration"):
        keep = column in ("run id", "state", "mode", "claims", "duration")
        table.add_column(column, overflow="fold", no_wrap=keep,
                         min_width=widest if column == "run id" else None)
    for row in runs.to_dict("records"):
        started = str(row["started"]).replace("T", " ")[:16]
        cells = [escape(str(row[c])) for c in ("recipe", "run_id", "state", "mode",
                                                "overrides", "claims")]
        cells[2] = f"[{_COLOUR.get(row['state'], 'white')}]{cells[2]}[/]"
        table.add_row(*cells, escape(started), escape(str(row["duration"])))
    console.print(table)
    for row in runs.to_dict("records"):
        if row["state"] == "failed" and row["problem"]:
            console.print(f"failed {row['run_id']}: {escape(str(row['problem']))}",
                          highlight=False, soft_wrap=True)
    return 0


def cmd_show(cmd: ShowCmd, console: Console) -> int:

    from iclab._console import claims_table
    from iclab.store import DamagedRun, RunDir, check_run, find_run, state

    try:
        run = RunDir(check_run(find_run(cmd.run, cmd.out)))
    except (FileNotFoundError, DamagedRun) as err:
        return _fail(console, str(err))
    status = run.status()
    console.print(f"[bold]{escape(str(status.get('recipe')))}[/bold] run {run.run_id}: "
                  f"{state(run.path, status)} ({escape(str(run.path))})")
    if status.get("error"):
        console.print(f"error: {escape(str(status['error']))}", highlight=False)
    if run.provenance():
        console.print(json.dumps(run.provenance(), indent=2), highlight=False)
    console.print(json.dumps(run.config(), indent=2))
    metrics = run.metrics()
    if not metrics.empty:
        last = metrics[metrics.step == metrics.groupby("metric").step.transform("max")]
        summary = last.groupby("metric").agg(step=("step", "max"), mean=("value", "mean"),
                                             std=("value", "std"), seeds=("seed", "nunique"))
        table = Table(title="final metrics (mean over seeds)")
        for column in ("metric", "step", "mean", "std", "seeds"):
            table.add_column(column)
        for name, row in summary.iterrows():
            std = "–" if row["std"] != row["std"] else f"{row['std']:.3g}"
            table.add_row(name, str(int(row["step"])), f"{row['mean']:.6g}", std,
                          str(int(row["seeds"])))
        console.print(table)
    from iclab.framework import read_tables

    for name, frame in read_tables(run.path).items():
        table = Table(title=f"table {name} ({len(frame)} rows; first 8)")
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.head(8).itertuples(index=False):
            table.add_row(*[f"{v:.5g}" if isinstance(v, float) else str(v) for v in row])
        console.print(table)
    if run.claims():
        console.print(claims_table(run.claims()))
    if run.checks():
        console.print(claims_table(run.checks(), title="Checks (by construction)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    console = Console()
    if not console.is_terminal or not sys.stdout.isatty():
        # logs and pipes (also where FORCE_COLOR makes rich think it is a terminal): wide
        # enough for the claims table
        console = Console(width=int(os.environ.get("COLUMNS", "0")) or 160)
    try:
        cmd = tyro.extras.subcommand_cli_from_dict(
            {"list": ListCmd, "config": ConfigCmd, "run": RunCmd, "sweep": SweepCmd,
             "report": ReportCmd, "runs": RunsCmd, "index": IndexCmd, "show": ShowCmd},
            prog="iclab", args=argv,
            description="iclab: reproduce claims about how transformers learn, on a laptop "
                        "CPU.")
    except ConfigError as err:  # an option's own check (e.g. --executor)
        return _fail(console, str(err))
    if isinstance(cmd, ListCmd):
        return cmd_list(console)
    if isinstance(cmd, ConfigCmd):
        return cmd_config(cmd, console)
    if isinstance(cmd, RunCmd):
        return cmd_run(cmd, console, argv)
    if isinstance(cmd, SweepCmd):
        return cmd_sweep(cmd, console, argv)
    if isinstance(cmd, ReportCmd):
        return cmd_report(cmd, console)
    if isinstance(cmd, RunsCmd):
        return cmd_runs(cmd, console)
    if isinstance(cmd, IndexCmd):
        from iclab.framework._index import write_index

        console.print(f"index: {_warned(lambda: write_index(cmd.out))}")
        return 0
    return cmd_show(cmd, console)
