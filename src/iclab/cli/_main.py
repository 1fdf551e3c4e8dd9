"""``iclab list | run | runs | show`` (tyro subcommands).

Exit codes of ``iclab run``: 0 when the run completes and every claim passes, 1
when it completes with a failing claim (or fails), 2 on bad input, 130 when
interrupted (the run folder stays "incomplete" and can be resumed).
"""

import dataclasses
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro
from rich.console import Console
from rich.table import Table

from iclab._errors import ConfigError, check_positive_int


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
    from iclab.recipes import recipes

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


def _prepare(cmd: RunCmd):
    """Resolve recipe and config, or raise ConfigError: nothing is written before this passes."""
    from iclab.config import apply_overrides
    from iclab.recipes import get_recipe

    if cmd.recipe is None:
        from iclab.recipes import recipes

        raise ConfigError("recipe", None, ", ".join(recipes()))
    recipe = get_recipe(cmd.recipe)
    config = recipe.quick() if cmd.quick else recipe.full()
    if cmd.seeds is not None:
        check_positive_int("--seeds", cmd.seeds)
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       seeds=cmd.seeds))
    config = apply_overrides(config, cmd.set)
    mode = "quick" if cmd.quick else "full"
    if recipe.resolve is not None:
        set_keys = frozenset(item.split("=", 1)[0].strip() for item in cmd.set)
        config = recipe.resolve(config, mode, set_keys)
    return recipe, config, mode


def cmd_run(cmd: RunCmd, console: Console) -> int:
    import jax

    # Claims compare float32 computations at ~1e-5: no TF32 / bf16 matmul passes on GPUs.
    jax.config.update("jax_default_matmul_precision", "highest")
    from iclab._console import claims_table
    from iclab.config import from_dict, to_dict
    from iclab.recipes import get_recipe
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
                console.print(claims_table(run.claims()))
                return 0 if all(c["passed"] for c in run.claims()) else 1
            console.print(f"resuming {run.path} {_resume_point(run.checkpoint_steps())}")
        else:
            recipe, config, mode = _prepare(cmd)
            run = RunDir.create(cmd.out, recipe.name,
                                {"recipe": recipe.name, "mode": mode, "config": to_dict(config)})
            console.print(f"run folder: {run.path}")
    except ConfigError as err:
        return _fail(console, str(err))

    try:
        claims = [c.to_json() for c in recipe.run(config, run, console, mode=mode)]
    except KeyboardInterrupt:
        run.set_status("incomplete", note="interrupted")
        console.print(f"\ninterrupted: finished metrics are kept; continue with "
                      f"[bold]iclab run --resume {run.path}[/bold]")
        return 130
    except Exception as err:  # noqa: BLE001 - recorded in the run folder, then reported
        run.set_status("incomplete", error=f"{type(err).__name__}: {err}")
        traceback.print_exc()
        return 1
    run.write_claims(claims)
    passed = all(c["passed"] for c in claims)
    run.set_status("complete", claims_passed=sum(c["passed"] for c in claims),
                   claims_total=len(claims))
    console.print(claims_table(claims, title=f"{recipe.name} ({mode}): claims"))
    console.print(f"report: {run.path / 'report.html'}")
    return 0 if passed else 1


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
    if run.claims():
        console.print(claims_table(run.claims()))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough for the claims table
        console = Console(width=int(os.environ.get("COLUMNS", "0")) or 160)
    cmd = tyro.extras.subcommand_cli_from_dict(
        {"list": ListCmd, "run": RunCmd, "runs": RunsCmd, "show": ShowCmd},
        prog="iclab", args=argv,
        description="iclab: reproduce claims about how transformers learn, on a laptop CPU.")
    if isinstance(cmd, ListCmd):
        return cmd_list(console)
    if isinstance(cmd, RunCmd):
        return cmd_run(cmd, console)
    if isinstance(cmd, RunsCmd):
        return cmd_runs(cmd, console)
    return cmd_show(cmd, console)
