"""Console helpers: a rich progress bar for training, and the claims table."""

import contextlib
import datetime
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


def log_line(description: str, step: int, total: int, loss: float, rate: float,
             now: "datetime.datetime | None" = None) -> str:
    """A progress line for logs and pipes: time, step, loss, steps/s (compilation
    excluded: ``Trainer`` compiles before it starts the clock) and the time left at that
    rate."""
    now = now or datetime.datetime.now()
    left = (total - step) / rate if rate > 0 else float("inf")
    eta = "?" if left == float("inf") else (
        f"{int(left // 3600)}h{int(left % 3600 // 60):02d}m" if left >= 3600
        else f"{int(left // 60)}m{int(left % 60):02d}s")
    return (f"{now:%H:%M:%S}  {description}: step {step}/{total}  loss {loss:.4g}  "
            f"{rate:.0f} steps/s  ETA {eta}")


@contextlib.contextmanager
def training_progress_group(console: Console
                            ) -> Iterator[Callable[[str, int, int], Callable[..., None]]]:
    """One live display for several models trained at once (possibly from several
    threads). Yields ``add(description, total, start)``, which adds a bar and returns its
    Trainer callback ``(step, total, train_loss, steps_per_s)``."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} steps/s"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False,
                  disable=not console.is_terminal) as progress:

        def add(description: str, total: int, start: int = 0) -> Callable[..., None]:
            task = progress.add_task(description, total=total, completed=start, loss="–",
                                     rate="–")

            def update(step: int, total: int, loss: float, rate: float) -> None:
                progress.update(task, completed=step, loss=f"{loss:.4g}", rate=f"{rate:.0f}")
                if not console.is_terminal:
                    console.print(log_line(description, step, total, loss, rate),
                                  highlight=False)

            return update

        yield add


@contextlib.contextmanager
def training_progress(console: Console, description: str, total: int, start: int = 0
                      ) -> Iterator[Callable[[int, int, float, float], None]]:
    """A progress bar showing step, train loss and steps/s; yields the Trainer callback."""
    with training_progress_group(console) as add:
        yield add(description, total, start)


def _source(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        text = _source(value.get("value"))
        return f"{text} ({value['where']})" if value.get("where") else text
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def claims_table(claims: list[dict], title: str = "Claims") -> Table:
    """Claims (or checks) as rows of ``claims.json``: measured, criterion, paper and
    reference-code values, result (``fragile`` when the interval straddles the threshold)."""
    table = Table(title=title)
    for column in ("id", "claim", "measured", "criterion", "paper", "reference", "result"):
        table.add_column(column, justify="right" if column == "measured" else "left",
                         no_wrap=column not in ("claim", "paper", "reference"))
    from iclab.framework._spec import measured_text

    for c in claims:
        measured = measured_text(c)
        if c.get("interval"):
            measured += f" [{c['interval'][0]:.3g}, {c['interval'][1]:.3g}]"
        result = "[green]pass[/green]" if c["passed"] else "[red]FAIL[/red]"
        if c.get("fragile"):
            result += " [yellow]fragile[/yellow]"
        table.add_row(c["id"], c["claim"], measured, c["criterion"], _source(c.get("paper")),
                      _source(c.get("reference")), result)
    return table
