"""``iclab list | run | report | runs | show`` (tyro subcommands).

Exit codes of ``iclab run``: 0 when the run completes and every claim passes, 1
when it completes with a failing claim or check (or fails), 2 on bad input, 130 when
interrupted (the run folder stays "incomplete" and can be resumed). ``iclab report``
exits the same way for the claims it re-evaluates (1 for an incomplete run).
"""

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro
from rich.console import Console
from rich.table import Table

from iclab._errors import ConfigError


@dataclass(frozen=True)
class ListCmd:
    """List the recipes with a one-line description each."""


@dataclass(frozen=True)
class RunCmd:
    """Run a recipe (or resume an interrupted run) and check its claims."""

    recipe: tyro.conf.Positional[str | None] = None
    """recipe name (see ``iclab list``); omit with --resume."""
    quick: bool = False
    """the reduced quick mode (minutes on 2 CPU cores)."""
    seeds: int | None = None
    """number of seeds trained together (one vmapped program)."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """override a config value, KEY=VALUE with a dotted key (repeatable), e.g. task.d=5."""
    out: Path = Path("runs")
    """root folder of the run folders."""
    resume: str | None = None
    """run id or run folder of an interrupted run to continue."""


@dataclass(frozen=True)
class ReportCmd:
    """Re-evaluate the claims and re-render the report of a run folder (no training)."""

    run: tyro.conf.Positional[str]
    """run id (or unique prefix) or run folder."""
    out: Path = Path("runs")
    """root folder of the run folders."""


@dataclass(frozen=True)
class RunsCmd:
    """List the runs under the store root."""

    out: Path = Path("runs")
    """root folder of the run folders."""


@dataclass(frozen=True)
class ShowCmd:
    """Print a run's config, final metrics and claims."""

    run: tyro.conf.Positional[str]
    """run id (or unique prefix) or run folder."""
    out: Path = Path("runs")
    """root folder of the run folders."""


def _fail(console: Console, message: str) -> int:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
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


def cmd_run(cmd: RunCmd, console: Console) -> int:
    import jax

    # Claims compare float32 computations at ~1e-5: no TF32 / bf16 matmul passes on GPUs.
    jax.config.update("jax_default_matmul_precision", "highest")
    from iclab.config import from_dict, to_dict
    from iclab.framework import execute, get_recipe, make_config
    from iclab.store import RunDir, find_run

    try:
        if cmd.resume is not None:
            if cmd.recipe is not None or cmd.set or cmd.seeds is not None or cmd.quick:
                raise ConfigError("--resume", cmd.resume,
                                  "--resume alone: the run's own config is reused")
            try:
                run = RunDir(find_run(cmd.resume, cmd.out))
            except FileNotFoundError as err:
                raise ConfigError("--resume", cmd.resume, str(err)) from None
            saved = run.config()
            recipe = get_recipe(saved["recipe"])
            config = from_dict(recipe.config_type, saved["config"])
            mode = saved["mode"]
            if run.status()["status"] == "complete":
                console.print(f"run {run.run_id} is already complete")
                _summary(console, recipe.name, mode, run.claims(), run.checks())
                return _exit_code(run.claims(), run.checks())
            console.print(f"resuming {run.path} {_resume_point(run.checkpoint_steps())}")
        else:
            if cmd.recipe is None:
                from iclab.framework import recipes

                raise ConfigError("recipe", None, ", ".join(recipes()))
            recipe, config, mode = make_config(cmd.recipe, cmd.quick, cmd.seeds, cmd.set)
            run = RunDir.create(cmd.out, recipe.name,
                                {"recipe": recipe.name, "mode": mode, "config": to_dict(config)})
            console.print(f"run folder: {run.path}")
    except ConfigError as err:
        return _fail(console, str(err))

    try:
        claims, checks = execute(recipe, config, run, console=console)
    except KeyboardInterrupt:
        run.set_status("incomplete", note="interrupted")
        console.print(f"\ninterrupted: finished metrics are kept; continue with "
                      f"[bold]iclab run --resume {run.path}[/bold]")
        return 130
    except Exception as err:  # noqa: BLE001 - recorded in the run folder, then reported
        run.set_status("incomplete", error=f"{type(err).__name__}: {err}")
        traceback.print_exc()
        return 1
    _summary(console, recipe.name, mode, claims, checks)
    console.print(f"report: {run.path / 'report.html'}")
    return _exit_code(claims, checks)


def cmd_report(cmd: ReportCmd, console: Console) -> int:
    from iclab.framework import render
    from iclab.store import RunDir, find_run

    try:
        run = RunDir(find_run(cmd.run, cmd.out))
        if not (run.path / "config.json").exists():
            raise FileNotFoundError(f"{run.path} has no config.json")
        if run.status().get("status") == "complete" and not (run.path / "tables").is_dir():
            raise FileNotFoundError(f"{run.path} is a complete run without tables/ (written "
                                    "before the recipe framework v2): its report.html is kept")
    except FileNotFoundError as err:
        return _fail(console, str(err))
    claims, checks = render(run)
    mode = run.config().get("mode", "?")
    _summary(console, run.config().get("recipe", "?"), mode, claims, checks)
    complete = all(c["error"] is None for c in claims + checks)
    if not complete:
        console.print(f"run {run.run_id} is incomplete: claims not measured yet")
    console.print(f"report: {run.path / 'report.html'}")
    return _exit_code(claims, checks)


def cmd_runs(cmd: RunsCmd, console: Console) -> int:
    from iclab.store import list_runs

    runs = list_runs(cmd.out)
    if runs.empty:
        console.print(f"no runs under {cmd.out}/")
        return 0
    table = Table(title=f"runs under {cmd.out}/")
    for column in runs.columns:
        table.add_column(column)
    for row in runs.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)
    return 0


def cmd_show(cmd: ShowCmd, console: Console) -> int:
    import json

    from iclab._console import claims_table
    from iclab.store import RunDir, find_run

    try:
        run = RunDir(find_run(cmd.run, cmd.out))
    except FileNotFoundError as err:
        return _fail(console, str(err))
    status = run.status()
    console.print(f"[bold]{status.get('recipe')}[/bold] run {run.run_id}: {status['status']} "
                  f"({run.path})")
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
    if not console.is_terminal:  # logs and pipes: wide enough for the claims table
        console = Console(width=int(os.environ.get("COLUMNS", "0")) or 160)
    cmd = tyro.extras.subcommand_cli_from_dict(
        {"list": ListCmd, "run": RunCmd, "report": ReportCmd, "runs": RunsCmd,
         "show": ShowCmd},
        prog="iclab", args=argv,
        description="iclab: reproduce claims about how transformers learn, on a laptop CPU.")
    if isinstance(cmd, ListCmd):
        return cmd_list(console)
    if isinstance(cmd, RunCmd):
        return cmd_run(cmd, console)
    if isinstance(cmd, ReportCmd):
        return cmd_report(cmd, console)
    if isinstance(cmd, RunsCmd):
        return cmd_runs(cmd, console)
    return cmd_show(cmd, console)
